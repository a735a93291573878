/* mod_authnz_tailscale: the per-process identity cache.
 *
 * Bounded (LRU eviction), entries expire after their TTL, definite answers
 * only (an identity, or "not a tailnet peer").  Concurrent misses for one key
 * are collapsed: one thread asks tailscaled, the others wait for its answer.
 * Thread-safe; memory lives in a private pool with its own allocator.
 * A hit hands out the entry's identity itself (read-only, shared between
 * threads) and keeps it alive for the caller's pool, so hits never copy.
 */
#ifndef AZT_CACHE_H
#define AZT_CACHE_H

#include <apr_pools.h>
#include <apr_time.h>
#include "tsl_identity.h"
#include "tsl_result.h"

typedef struct azt_cache azt_cache;

typedef enum {
    AZT_CACHE_HIT,     /* *code (TSL_OK or TSL_ERR_NOT_FOUND), *id and *fetched filled */
    AZT_CACHE_MISS,    /* caller owns the lookup: must call put() or abandon() */
    AZT_CACHE_BYPASS   /* another thread's lookup did not finish in time: ask
                        * tailscaled yourself, without put()/abandon() */
} azt_cache_outcome;

/* Create a cache of at most max_entries (0: every get() misses). Closed with
 * p; its memory goes when the last identity handed out is released. */
azt_cache *azt_cache_create(apr_pool_t *p, int max_entries);

/* Look key up at time now. An entry counts only while it is younger than
 * ttl (an identity) or negative_ttl (not a peer): the caller's timeouts, so
 * each vhost's apply to every hit; an older one is dropped (a MISS). On a
 * hit *id is the cached identity, valid until p is cleared or destroyed
 * (never modify it), and *fetched when tailscaled gave it, so that copies
 * kept elsewhere age with it. When the key is being looked up by another
 * thread, wait up to wait_max for it. */
azt_cache_outcome azt_cache_get(azt_cache *c, const char *key, apr_time_t now,
                                apr_interval_time_t wait_max, apr_interval_time_t ttl,
                                apr_interval_time_t negative_ttl, apr_pool_t *p,
                                tsl_code *code, tsl_identity **id, apr_time_t *fetched);

/* Store the answer tailscaled gave at time fetched for a key obtained by a
 * MISS (id NULL for NOT_FOUND). */
void azt_cache_put(azt_cache *c, const char *key, tsl_code code,
                   const tsl_identity *id, apr_time_t fetched);

/* Give up a MISS without an answer to store (tailscaled unavailable). */
void azt_cache_abandon(azt_cache *c, const char *key);

/* Number of entries currently held (including in-flight ones). */
int azt_cache_count(azt_cache *c);

#endif
