/* mod_authnz_tailscale: the per-process identity cache (see azt_cache.h). */
#include <apr_hash.h>
#include <apr_ring.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <apr_thread_cond.h>
#include <apr_allocator.h>

#include "azt_cache.h"

typedef struct azt_entry azt_entry;
struct azt_entry {
    APR_RING_ENTRY(azt_entry) link;   /* LRU order: head = most recent */
    azt_cache *cache;
    apr_pool_t *pool;                 /* holds key and identity */
    const char *key;
    int pending;                      /* a thread is asking tailscaled */
    int refs;                         /* identities handed out, not released */
    int dead;                         /* out of the map, waiting for refs 0 */
    azt_outcome code;
    tsl_identity *id;
    apr_time_t fetched;               /* when tailscaled gave the answer */
};

APR_RING_HEAD(azt_lru, azt_entry);

struct azt_cache {
    apr_pool_t *pool;                 /* private, own allocator */
    apr_thread_mutex_t *mutex;
    apr_thread_cond_t *cond;          /* broadcast when a pending entry settles */
    apr_hash_t *map;
    struct azt_lru lru;
    int max_entries;
    int count;                        /* entries in the map */
    int held;                         /* dead entries still referenced */
    int closed;                       /* the creating pool is gone */
    azt_shared *shared;               /* the level behind this one, or NULL */
};

/* The cache and everything in it; call without c->mutex held, when nothing
 * refers to it any more. */
static void cache_free(azt_cache *c)
{
    apr_allocator_t *alloc = apr_pool_allocator_get(c->pool);

    apr_pool_destroy(c->pool);      /* c, its mutex and cond live in there */
    apr_allocator_destroy(alloc);
}

/* Take e out of the map; its memory goes now or with its last reference. */
static void entry_remove(azt_cache *c, azt_entry *e)
{
    APR_RING_REMOVE(e, link);
    apr_hash_set(c->map, e->key, APR_HASH_KEY_STRING, NULL);
    c->count--;
    if (e->refs > 0) {
        e->dead = 1;
        c->held++;
    }
    else {
        apr_pool_destroy(e->pool);
    }
}

/* A pool cleanup: the holder of an identity from a hit is done with it. */
static apr_status_t entry_release(void *data)
{
    azt_entry *e = data;
    azt_cache *c = e->cache;
    int last;

    apr_thread_mutex_lock(c->mutex);
    if (--e->refs == 0 && e->dead) {
        apr_pool_destroy(e->pool);
        c->held--;
    }
    last = c->closed && c->held == 0;
    apr_thread_mutex_unlock(c->mutex);
    if (last) {
        cache_free(c);
    }
    return APR_SUCCESS;
}

static apr_status_t cache_cleanup(void *data)
{
    azt_cache *c = data;
    int last;

    apr_thread_mutex_lock(c->mutex);
    while (!APR_RING_EMPTY(&c->lru, azt_entry, link)) {
        entry_remove(c, APR_RING_FIRST(&c->lru));
    }
    c->closed = 1;
    last = c->held == 0;
    apr_thread_mutex_unlock(c->mutex);
    if (last) {
        cache_free(c);
    }
    return APR_SUCCESS;
}

azt_cache *azt_cache_create(apr_pool_t *p, int max_entries, azt_shared *shared)
{
    apr_allocator_t *alloc;
    apr_pool_t *cp;
    azt_cache *c;

    /* A private allocator: entry pools are created and destroyed by many
     * threads (always under c->mutex), never sharing the parent's allocator.
     * The cache outlives p while identities it handed out are referenced
     * from pools destroyed after p (connections of a child at exit). */
    apr_allocator_create(&alloc);
    apr_allocator_max_free_set(alloc, 256);   /* KiB kept for reuse */
    apr_pool_create_unmanaged_ex(&cp, NULL, alloc);
    c = apr_pcalloc(cp, sizeof(*c));
    c->pool = cp;
    c->max_entries = max_entries;
    c->shared = shared;
    apr_thread_mutex_create(&c->mutex, APR_THREAD_MUTEX_DEFAULT, cp);
    apr_thread_cond_create(&c->cond, cp);
    c->map = apr_hash_make(cp);
    APR_RING_INIT(&c->lru, azt_entry, link);
    apr_pool_cleanup_register(p, c, cache_cleanup, apr_pool_cleanup_null);
    return c;
}

static void entry_touch(azt_cache *c, azt_entry *e)
{
    APR_RING_REMOVE(e, link);
    APR_RING_INSERT_HEAD(&c->lru, e, azt_entry, link);
}

/* Make room for one more entry: drop least recently used settled entries
 * (never in-flight ones); expired entries are dropped when next looked at. */
static void make_room(azt_cache *c)
{
    azt_entry *e, *prev;

    for (e = APR_RING_LAST(&c->lru);
         c->count >= c->max_entries && e != APR_RING_SENTINEL(&c->lru, azt_entry, link);
         e = prev) {
        prev = APR_RING_PREV(e, link);
        if (!e->pending) {
            entry_remove(c, e);
        }
    }
}

int azt_cache_fresh(azt_outcome code, apr_time_t fetched, apr_time_t now,
                    apr_interval_time_t ttl, apr_interval_time_t negative_ttl)
{
    return now < fetched + (code == AZT_IDENTIFIED ? ttl : negative_ttl);
}

/* Hand out e's answer to a caller whose identity lives in p. */
static void entry_hand_out(azt_entry *e, apr_pool_t *p, azt_outcome *code, tsl_identity **id,
                           apr_time_t *fetched)
{
    *code = e->code;
    *id = e->id;
    if (e->id) {
        e->refs++;
        apr_pool_cleanup_register(p, e, entry_release, apr_pool_cleanup_null);
    }
    if (fetched) {
        *fetched = e->fetched;
    }
}

/* Settle the pending entry for key with an answer (id copied); with p,
 * hand it out as a hit would.  Returns 0 if there is no such entry. */
static int entry_settle(azt_cache *c, const char *key, azt_outcome code, const tsl_identity *id,
                        apr_time_t fetched, apr_pool_t *p, azt_outcome *out_code,
                        tsl_identity **out_id, apr_time_t *out_fetched)
{
    azt_entry *e;
    int settled = 0;

    apr_thread_mutex_lock(c->mutex);
    e = apr_hash_get(c->map, key, APR_HASH_KEY_STRING);
    if (e && e->pending) {
        e->pending = 0;
        e->code = code;
        e->id = id ? tsl_identity_copy(e->pool, id) : NULL;
        e->fetched = fetched;
        if (p) {
            entry_hand_out(e, p, out_code, out_id, out_fetched);
        }
        settled = 1;
    }
    apr_thread_cond_broadcast(c->cond);
    apr_thread_mutex_unlock(c->mutex);
    return settled;
}

/* This process's level: HIT, MISS (an entry reserved for the caller) or
 * BYPASS. */
static azt_cache_outcome process_get(azt_cache *c, const char *key, apr_time_t now,
                                     apr_interval_time_t wait_max, apr_interval_time_t ttl,
                                     apr_interval_time_t negative_ttl, apr_pool_t *p,
                                     azt_outcome *code, tsl_identity **id, apr_time_t *fetched)
{
    azt_entry *e;
    apr_time_t deadline = now + wait_max;
    apr_pool_t *ep;

    if (c->max_entries <= 0) {
        return AZT_CACHE_BYPASS;
    }
    apr_thread_mutex_lock(c->mutex);
    for (;;) {
        e = apr_hash_get(c->map, key, APR_HASH_KEY_STRING);
        if (!e) {
            break;
        }
        if (!e->pending) {
            if (azt_cache_fresh(e->code, e->fetched, now, ttl, negative_ttl)) {
                entry_hand_out(e, p, code, id, fetched);
                entry_touch(c, e);
                apr_thread_mutex_unlock(c->mutex);
                return AZT_CACHE_HIT;
            }
            entry_remove(c, e);
            break;
        }
        /* Someone is asking tailscaled for this key right now: wait. */
        now = apr_time_now();
        if (now >= deadline
            || apr_thread_cond_timedwait(c->cond, c->mutex, deadline - now) == APR_TIMEUP) {
            apr_thread_mutex_unlock(c->mutex);
            return AZT_CACHE_BYPASS;
        }
        now = apr_time_now();
    }
    make_room(c);
    if (c->count >= c->max_entries) {
        /* Every slot is in flight: do not grow beyond the bound. */
        apr_thread_mutex_unlock(c->mutex);
        return AZT_CACHE_BYPASS;
    }
    apr_pool_create(&ep, c->pool);
    e = apr_pcalloc(ep, sizeof(*e));
    e->pool = ep;
    e->cache = c;
    e->key = apr_pstrdup(ep, key);
    e->pending = 1;
    APR_RING_INSERT_HEAD(&c->lru, e, azt_entry, link);
    apr_hash_set(c->map, e->key, APR_HASH_KEY_STRING, e);
    c->count++;
    apr_thread_mutex_unlock(c->mutex);
    return AZT_CACHE_MISS;
}

azt_cache_outcome azt_cache_get(azt_cache *c, const char *key, apr_time_t now,
                                apr_interval_time_t wait_max, apr_interval_time_t ttl,
                                apr_interval_time_t negative_ttl, apr_pool_t *p,
                                azt_outcome *code, tsl_identity **id, apr_time_t *fetched)
{
    azt_cache_outcome outcome = process_get(c, key, now, wait_max, ttl, negative_ttl, p,
                                            code, id, fetched);
    apr_pool_t *tmp;
    tsl_identity *shared_id;
    azt_outcome shared_code;
    apr_time_t shared_fetched;

    if (outcome != AZT_CACHE_MISS || !c->shared) {
        return outcome;
    }
    /* This thread owns the key in this process: ask the other processes. */
    apr_pool_create(&tmp, p);
    if (azt_shared_lookup(c->shared, key, now, wait_max, azt_cache_fresh, ttl, negative_ttl,
                          tmp, &shared_code, &shared_id, &shared_fetched)) {
        if (!entry_settle(c, key, shared_code, shared_id, shared_fetched, p, code, id,
                          fetched)) {
            /* the cache closed meanwhile: the answer is still good */
            *code = shared_code;
            *id = shared_id ? tsl_identity_copy(p, shared_id) : NULL;
            if (fetched) {
                *fetched = shared_fetched;
            }
        }
        outcome = AZT_CACHE_HIT;
    }
    apr_pool_destroy(tmp);
    return outcome;
}

void azt_cache_put(azt_cache *c, const char *key, azt_outcome code,
                   const tsl_identity *id, apr_time_t fetched)
{
    entry_settle(c, key, code, id, fetched, NULL, NULL, NULL, NULL);
    if (c->shared) {
        azt_shared_put(c->shared, key, code, id, fetched);
    }
}

void azt_cache_abandon(azt_cache *c, const char *key)
{
    azt_entry *e;

    apr_thread_mutex_lock(c->mutex);
    e = apr_hash_get(c->map, key, APR_HASH_KEY_STRING);
    if (e && e->pending) {
        entry_remove(c, e);
    }
    apr_thread_cond_broadcast(c->cond);
    apr_thread_mutex_unlock(c->mutex);
    if (c->shared) {
        azt_shared_release(c->shared, key);
    }
}

int azt_cache_count(azt_cache *c)
{
    int n;

    apr_thread_mutex_lock(c->mutex);
    n = c->count;
    apr_thread_mutex_unlock(c->mutex);
    return n;
}
