/* mod_authnz_tailscale: whois answers shared by every process of the server
 * through mod_socache (AuthTailscaleCache), so that tailscaled is asked
 * about a node about once per cache timeout for the whole host.
 *
 * The level behind each process's own cache (azt_cache.c decides when it
 * is asked).  A process that finds nothing leaves a pending marker while it
 * asks tailscaled; others that find the marker wait a bounded time for the
 * answer before asking themselves.  Entries are checked on read
 * (azt_entry.c): an unreadable one is a miss.
 */
#ifndef AZT_SHARED_H
#define AZT_SHARED_H

#include <httpd.h>
#include <http_config.h>
#include "tsl_identity.h"
#include "azt_outcome.h"

typedef struct azt_shared azt_shared;

/* The AuthTailscaleCache directive: "none" or provider[:args]. */
const char *azt_shared_set_cache(cmd_parms *cmd, void *dummy, const char *arg);

/* Hooks: pre_config (forget the last generation's choice, register the
 * mutex), post_config (create the cache, after the config pass) and
 * child_init (attach to its mutex). */
int azt_shared_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp);
int azt_shared_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                           server_rec *s);
void azt_shared_child_init(apr_pool_t *pchild, server_rec *s);

/* This generation's shared cache; NULL when answers stay in each process. */
azt_shared *azt_shared_get(void);

/* Is an answer tailscaled gave at fetched still good at now for the caller's
 * timeouts (ttl for an identity, negative_ttl for "not a peer")? */
typedef int azt_shared_fresh_fn(azt_outcome code, apr_time_t fetched, apr_time_t now,
                                apr_interval_time_t ttl, apr_interval_time_t negative_ttl);

/* Look key up at now for a process that has no answer.  1: a fresh answer
 * (*code, *id from p, *fetched).  0: none; the caller asks tailscaled and
 * must call azt_shared_put() or azt_shared_release().  While another
 * process's marker says it is asking, poll for its answer for at most a
 * quarter of wait_max (the whois timeout). */
int azt_shared_lookup(azt_shared *sh, const char *key, apr_time_t now,
                      apr_interval_time_t wait_max, azt_shared_fresh_fn *fresh,
                      apr_interval_time_t ttl, apr_interval_time_t negative_ttl,
                      apr_pool_t *p, azt_outcome *code, tsl_identity **id,
                      apr_time_t *fetched);

/* Publish tailscaled's definite answer for key (id NULL for not a peer). */
void azt_shared_put(azt_shared *sh, const char *key, azt_outcome code,
                    const tsl_identity *id, apr_time_t fetched);

/* No answer to publish (tailscaled unavailable): drop this process's
 * pending marker so that nobody waits for it. */
void azt_shared_release(azt_shared *sh, const char *key);

/* Answers held now (pending markers and expired entries not counted), or -1
 * when the provider cannot list its entries. */
int azt_shared_entries(azt_shared *sh, apr_pool_t *p);

/* The provider and its arguments as configured, e.g. "shmcb". */
const char *azt_shared_name(const azt_shared *sh);

#endif
