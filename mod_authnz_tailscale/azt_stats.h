/* mod_authnz_tailscale: counters shared by all processes of a generation
 * (anonymous shared memory made by the parent), the last error, and
 * rate limiting of error log lines so a dead tailscaled does not flood logs. */
#ifndef AZT_STATS_H
#define AZT_STATS_H

#include <apr_pools.h>
#include <apr_time.h>
#include "tsl_result.h"

typedef struct azt_stats {
    volatile apr_uint64_t lookups;      /* identity decisions asked for */
    volatile apr_uint64_t conn_hits;    /* answered from the connection */
    volatile apr_uint64_t cache_hits;   /* answered from the process or shared cache */
    volatile apr_uint64_t shared_hits;  /* ... of which from the shared cache */
    volatile apr_uint64_t shared_misses;/* the shared cache had no fresh answer */
    volatile apr_uint64_t shared_waits; /* waited for another process's answer */
    volatile apr_uint64_t shared_unreadable; /* entries that were not ours or corrupt */
    volatile apr_uint64_t whois_calls;  /* requests sent to tailscaled */
    volatile apr_uint64_t identified;   /* whois found a tailnet identity */
    volatile apr_uint64_t not_found;    /* whois: not a tailnet peer */
    volatile apr_uint64_t errors;       /* tailscaled unavailable or bad answer */
    volatile apr_uint64_t suppressed;   /* error lines not logged (rate limit) */
    volatile apr_uint32_t seq;          /* last_error_*: odd while being written */
    volatile apr_uint64_t claimed;      /* when the current writer began */
    apr_time_t last_error_time;
    int last_error_code;
    char last_error[512];
    volatile apr_uint64_t last_logged[16]; /* per tsl_code: last log time */
    volatile apr_uint32_t groups_seen;  /* a whois answer listed groups */
    volatile apr_uint32_t groups_warned;/* TS01040 was logged */
} azt_stats;

/* Create the shared counters in the parent (falls back to process memory). */
azt_stats *azt_stats_create(apr_pool_t *pconf);

/* The counters of this generation (never NULL after post_config). */
azt_stats *azt_stats_get(void);

/* Count one. */
void azt_stats_inc(volatile apr_uint64_t *counter);

/* Record an error as the last one. */
void azt_stats_error(azt_stats *st, tsl_code code, const char *text);

/* True if an error line for code may be logged now (at most one per code per
 * interval across all processes); otherwise counts it as suppressed. */
int azt_stats_may_log(azt_stats *st, tsl_code code, apr_interval_time_t interval);

/* Copy the last error text (thread/process safe) into p; NULL if none. */
const char *azt_stats_last_error(azt_stats *st, apr_pool_t *p, apr_time_t *when);

#endif
