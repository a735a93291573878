/* mod_authnz_tailscale: the identity cache: this process's own, and behind
 * it the one shared by all processes of the server (azt_shared.c), if any.
 *
 * The process level is bounded (LRU eviction), entries expire after their
 * TTL, definite answers only (an identity, or "not a tailnet peer").
 * Concurrent misses for one key are collapsed: one thread asks tailscaled,
 * the others wait for its answer.  Only that thread, on a process miss,
 * looks at the shared level (a process hit never takes its lock), and only
 * it publishes tailscaled's answer there; the shared level collapses misses
 * across processes the same way.
 * Thread-safe; memory lives in a private pool with its own allocator.
 * A hit hands out the entry's identity itself (read-only, shared between
 * threads) and keeps it alive for the caller's pool, so hits never copy.
 */
#ifndef AZT_CACHE_H
#define AZT_CACHE_H

#include <apr_pools.h>
#include <apr_time.h>
#include "tsl_identity.h"
#include "azt_outcome.h"
#include "azt_shared.h"

typedef struct azt_cache azt_cache;

typedef enum {
    AZT_CACHE_HIT,     /* *outcome (AZT_IDENTIFIED or AZT_NOT_A_PEER), *id and *fetched filled */
    AZT_CACHE_MISS,    /* caller owns the lookup: must call put() or abandon() */
    AZT_CACHE_BYPASS   /* another thread's lookup did not finish in time: ask
                        * tailscaled yourself, without put()/abandon() */
} azt_cache_outcome;

/* Create a cache of at most max_entries in this process (0: every get()
 * bypasses both levels), in front of shared (NULL: none). Closed with p;
 * its memory goes when the last identity handed out is released. */
azt_cache *azt_cache_create(apr_pool_t *p, int max_entries, azt_shared *shared);

/* The one freshness rule of both levels: an answer tailscaled gave at
 * fetched serves at now while younger than ttl (an identity) or
 * negative_ttl (not a tailnet peer). */
int azt_cache_fresh(azt_outcome outcome, apr_time_t fetched, apr_time_t now,
                    apr_interval_time_t ttl, apr_interval_time_t negative_ttl);

/* Look key up at time now. An entry counts only while it is younger than
 * ttl (an identity) or negative_ttl (not a peer): the caller's timeouts, so
 * each vhost's apply to every hit; an older one is dropped (a MISS). On a
 * hit *id is the cached identity, valid until p is cleared or destroyed
 * (never modify it), and *fetched when tailscaled gave it, so that copies
 * kept elsewhere age with it. When the key is being looked up by another
 * thread, wait up to wait_max for it (by another process: a fraction of it).
 * A shared hit is kept in this process too. */
azt_cache_outcome azt_cache_get(azt_cache *c, const char *key, apr_time_t now,
                                apr_interval_time_t wait_max, apr_interval_time_t ttl,
                                apr_interval_time_t negative_ttl, apr_pool_t *p,
                                azt_outcome *outcome, tsl_identity **id, apr_time_t *fetched);

/* Store the answer tailscaled gave at time fetched for a key obtained by a
 * MISS (id NULL for NOT_FOUND), in this process and the shared cache. */
void azt_cache_put(azt_cache *c, const char *key, azt_outcome outcome,
                   const tsl_identity *id, apr_time_t fetched);

/* Give up a MISS without an answer to store (tailscaled unavailable). */
void azt_cache_abandon(azt_cache *c, const char *key);

/* Number of entries currently held (including in-flight ones). */
int azt_cache_count(azt_cache *c);

#endif
