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
    apr_pool_t *pool;                 /* holds key and identity */
    const char *key;
    int pending;                      /* a thread is asking tailscaled */
    tsl_code code;
    tsl_identity *id;
    apr_time_t expires;
};

APR_RING_HEAD(azt_lru, azt_entry);

struct azt_cache {
    apr_pool_t *pool;                 /* private, own allocator */
    apr_thread_mutex_t *mutex;
    apr_thread_cond_t *cond;          /* broadcast when a pending entry settles */
    apr_hash_t *map;
    struct azt_lru lru;
    int max_entries;
    int count;
};

static apr_status_t cache_cleanup(void *data)
{
    azt_cache *c = data;
    apr_allocator_t *alloc = apr_pool_allocator_get(c->pool);

    apr_thread_cond_destroy(c->cond);
    apr_thread_mutex_destroy(c->mutex);
    apr_pool_destroy(c->pool);
    apr_allocator_destroy(alloc);
    return APR_SUCCESS;
}

azt_cache *azt_cache_create(apr_pool_t *p, int max_entries)
{
    azt_cache *c = apr_pcalloc(p, sizeof(*c));
    apr_allocator_t *alloc;

    c->max_entries = max_entries;
    /* A private allocator: entry pools are created and destroyed by many
     * threads (always under c->mutex), never sharing the parent's allocator. */
    apr_allocator_create(&alloc);
    apr_allocator_max_free_set(alloc, 256);   /* KiB kept for reuse */
    apr_pool_create_unmanaged_ex(&c->pool, NULL, alloc);
    apr_thread_mutex_create(&c->mutex, APR_THREAD_MUTEX_DEFAULT, p);
    apr_thread_cond_create(&c->cond, p);
    c->map = apr_hash_make(c->pool);
    APR_RING_INIT(&c->lru, azt_entry, link);
    apr_pool_cleanup_register(p, c, cache_cleanup, apr_pool_cleanup_null);
    return c;
}

static void entry_remove(azt_cache *c, azt_entry *e)
{
    APR_RING_REMOVE(e, link);
    apr_hash_set(c->map, e->key, APR_HASH_KEY_STRING, NULL);
    c->count--;
    apr_pool_destroy(e->pool);
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

azt_cache_outcome azt_cache_get(azt_cache *c, const char *key, apr_time_t now,
                                apr_interval_time_t wait_max, apr_pool_t *p,
                                tsl_code *code, tsl_identity **id,
                                apr_time_t *expires)
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
            if (e->expires > now) {
                *code = e->code;
                *id = e->id ? tsl_identity_copy(p, e->id) : NULL;
                if (expires) {
                    *expires = e->expires;
                }
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
    e->key = apr_pstrdup(ep, key);
    e->pending = 1;
    APR_RING_INSERT_HEAD(&c->lru, e, azt_entry, link);
    apr_hash_set(c->map, e->key, APR_HASH_KEY_STRING, e);
    c->count++;
    apr_thread_mutex_unlock(c->mutex);
    return AZT_CACHE_MISS;
}

void azt_cache_put(azt_cache *c, const char *key, tsl_code code,
                   const tsl_identity *id, apr_time_t expires)
{
    azt_entry *e;

    apr_thread_mutex_lock(c->mutex);
    e = apr_hash_get(c->map, key, APR_HASH_KEY_STRING);
    if (e && e->pending) {
        e->pending = 0;
        e->code = code;
        e->id = id ? tsl_identity_copy(e->pool, id) : NULL;
        e->expires = expires;
    }
    apr_thread_cond_broadcast(c->cond);
    apr_thread_mutex_unlock(c->mutex);
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
}

int azt_cache_count(azt_cache *c)
{
    int n;

    apr_thread_mutex_lock(c->mutex);
    n = c->count;
    apr_thread_mutex_unlock(c->mutex);
    return n;
}
