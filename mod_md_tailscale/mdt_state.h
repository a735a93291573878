/* mod_md_tailscale: what is known about each managed domain at run time,
 * its job record (store/domains/<dname>/job.json, 0600) and its status file
 * (store/status/<dname>.json, 0644).
 *
 * The parent fills in what this server generation serves (post_config);
 * the helper process inherits that at fork, keeps the rest up to date, and
 * after every change publishes the status in memory (mdt_live.h) and writes
 * the job record (what the next helper resumes) and the status file (for
 * display).  Request-serving children only read.  Strings are fixed buffers
 * so the long-running helper can update them forever without growing a pool.
 */
#ifndef MDT_STATE_H
#define MDT_STATE_H

#include <httpd.h>
#include <apr_tables.h>
#include <apr_hash.h>
#include <jansson.h>
#include "tsl_cert.h"
#include "mdt_config.h"

#define MDT_FP_LEN   80
#define MDT_GEN_LEN  40

typedef struct mdt_cert_info {
    char fingerprint[MDT_FP_LEN];  /* "" when none */
    char gen[MDT_GEN_LEN];
    apr_time_t not_before;
    apr_time_t not_after;
} mdt_cert_info;

typedef struct mdt_state {
    const mdt_domain *md;

    /* what this generation serves (decided before mod_ssl loads it) */
    int served_fallback;
    mdt_cert_info served;
    const char *key_file;          /* pconf strings, fixed per generation */
    const char *chain_file;
    struct mdt_fallback_memory *fallback_mem;  /* a fallback held in memory */

    /* the store's active certificate, as last seen */
    mdt_cert_info cert;

    /* schedule */
    apr_time_t last_check;
    apr_time_t next_check;
    apr_time_t last_success;
    apr_time_t retry_after_until;  /* honouring a 429 Retry-After */
    apr_time_t renew_at;           /* start of the renew window, 0 unknown */
    apr_interval_time_t backoff;
    int errors;                    /* consecutive failures */

    /* last failure */
    char err_id[16];
    char err_kind[32];
    char err_text[1024];
    char err_hint[512];
    int err_status;
    apr_time_t err_at;

    /* what is wrong with the store (and the fix), "" when nothing */
    char store_err[1024];

    /* tailscaled's view, from the status call */
    char cert_domains[1024];       /* "[\"a\" \"b\"]" for logs, "" unknown */
    char cert_domain_list[1024];   /* the same names separated by spaces */
    char backend_state[32];

    /* history (kept across restarts through the job record) */
    int obtained;                  /* certificates stored */
    int renewals;                  /* ... that replaced a real certificate */
    char installed_fp[MDT_FP_LEN];
    char known_fp[MDT_FP_LEN];     /* the store's certificate the last status
                                    * file recorded */
    apr_time_t errored_event_at;
    char errored_event_kind[32];
    apr_time_t expiring_event_at;
    apr_time_t renewing_event_at;  /* mod_md's rates: renewing hourly, */
    apr_time_t renewed_event_at;   /* renewed and installed daily */
    apr_time_t installed_event_at;

    /* flags for the helper */
    int pending_renewed;           /* a new certificate no event was fired for */
    int restart_requested;         /* 1 asked, 2 gave up (TS02107) */
    char restart_fp[MDT_FP_LEN];   /* the stored certificate the last restart
                                    * was asked for (kept across restarts: a
                                    * generation that still does not serve it
                                    * is not restarted again for it) */
    int pid;                       /* helper pid, for status */
} mdt_state;

/* What mod_ssl was given for one virtual host. */
typedef struct mdt_vhost {
    const mdt_state *state;
    int fallback;                  /* got the fallback certificate: answer 503 */
} mdt_vhost;

/* Everything the hooks of this generation share (allocated from pconf). */
typedef struct mdt_runtime {
    server_rec *s;
    mdt_config *conf;
    const char *store_dir;
    apr_array_header_t *states;    /* of mdt_state*, same order as conf->domains */
    apr_hash_t *vhosts;            /* server_rec* -> mdt_vhost*, filled by the
                                    * mod_ssl hooks in the parent */
    struct mdt_live *live;         /* the helper's status documents (mdt_live.h) */
} mdt_runtime;

mdt_runtime *mdt_runtime_get(void);
void mdt_runtime_set(apr_pool_t *pconf, mdt_runtime *rt);
mdt_state *mdt_runtime_state(const mdt_runtime *rt, const mdt_domain *d);

mdt_state *mdt_state_create(apr_pool_t *p, const mdt_domain *d);
void mdt_state_set_cert(mdt_cert_info *ci, const tsl_cert_pair *pair, const char *gen);
void mdt_state_set_error(mdt_state *st, const char *id, const char *kind,
                         const char *text, const char *hint, int http_status);
void mdt_state_clear_error(mdt_state *st);

/* Record (text) or clear (NULL) a store problem; 1 when it changed. */
int mdt_state_set_store_err(mdt_state *st, const char *text);

/* A short word for the state: "valid", "fallback", "pending-restart", "expired". */
const char *mdt_state_word(const mdt_state *st, apr_time_t now);

/* The status document of one domain. Caller owns the reference. */
json_t *mdt_state_to_json(apr_pool_t *p, const mdt_runtime *rt, const mdt_state *st);

/* Publish st's status in memory (mdt_live.h) and write its job record
 * (0600, what the next helper resumes; only when store_ok: the store passed
 * mdt_store_init) and its status file (0644, for display) atomically.
 * Returns an error text or NULL. */
const char *mdt_state_save(apr_pool_t *p, const mdt_runtime *rt, const mdt_state *st,
                           int store_ok);

/* Take over history (counters, back-off, last events) from the job record
 * (or, from an earlier version, the status file). */
void mdt_state_resume(apr_pool_t *p, const mdt_runtime *rt, mdt_state *st);

/* Read a domain's status file; NULL if there is none. Caller owns it. */
json_t *mdt_state_load_json(apr_pool_t *p, const mdt_runtime *rt, const mdt_domain *d);

#endif
