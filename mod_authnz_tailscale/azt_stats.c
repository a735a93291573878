/* mod_authnz_tailscale: shared counters (see azt_stats.h). */
#include <apr_atomic.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <apr_thread_proc.h>

#include "azt_stats.h"

static azt_stats *current;

azt_stats *azt_stats_create(apr_pool_t *pconf)
{
    apr_shm_t *shm;
    azt_stats *st;

    /* Anonymous shared memory survives fork(): every child of this
     * generation counts into the same place. */
    if (apr_shm_create(&shm, sizeof(azt_stats), NULL, pconf) == APR_SUCCESS) {
        st = apr_shm_baseaddr_get(shm);
        memset(st, 0, sizeof(*st));
    }
    else {
        st = apr_pcalloc(pconf, sizeof(*st));
    }
    current = st;
    return st;
}

azt_stats *azt_stats_get(void)
{
    return current;
}

void azt_stats_inc(volatile apr_uint64_t *counter)
{
    apr_atomic_inc64(counter);
}

/* The last error is written lock-free (a sequence count, odd while a writer
 * is at it) so that no process ever waits for another: a writer that finds
 * another one at work skips its report (one as recent is being recorded),
 * unless that writer began more than AZT_STATS_STALE ago and so died or hung
 * holding it; readers retry a bounded number of times.
 *
 * The record is accessed with the compiler's __atomic builtins only (not
 * apr_atomic_*, which are functions in libapr and invisible to
 * ThreadSanitizer): the data with release stores and acquire loads, so that
 * a reader that sees any byte of a new write also sees the odd count that
 * preceded it and discards what it read (a seqlock without fences). */
#define AZT_STATS_STALE apr_time_from_sec(1)
#define AZT_STATS_READ_TRIES 64

void azt_stats_error(azt_stats *st, tsl_code code, const char *text)
{
    apr_uint64_t now = (apr_uint64_t)apr_time_now();
    apr_uint32_t s = __atomic_load_n(&st->seq, __ATOMIC_ACQUIRE);
    apr_uint32_t mine;
    char buf[sizeof(st->last_error)];
    apr_size_t i;

    apr_atomic_inc64(&st->errors);
    if (s & 1) {
        /* signed: a writer that claimed after our clock read is recent, not
         * (as the unsigned difference would say) ages ago */
        apr_int64_t age = (apr_int64_t)(now - __atomic_load_n(&st->claimed, __ATOMIC_RELAXED));

        if (age < AZT_STATS_STALE) {
            return;
        }
        mine = s + 2;             /* take over from a writer that is gone */
    }
    else {
        mine = s + 1;
    }
    if (!__atomic_compare_exchange_n(&st->seq, &s, mine, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
        return;                   /* another writer got there first */
    }
    __atomic_store_n(&st->claimed, now, __ATOMIC_RELAXED);
    __atomic_store_n(&st->last_error_time, (apr_time_t)now, __ATOMIC_RELEASE);
    __atomic_store_n(&st->last_error_code, (int)code, __ATOMIC_RELEASE);
    apr_cpystrn(buf, text ? text : "", sizeof(buf));
    for (i = 0; i < sizeof(buf); i++) {
        __atomic_store_n(&st->last_error[i], buf[i], __ATOMIC_RELEASE);
        if (!buf[i]) {
            break;
        }
    }
    /* unless taken over meanwhile */
    __atomic_compare_exchange_n(&st->seq, &mine, mine + 1, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
}

int azt_stats_may_log(azt_stats *st, tsl_code code, apr_interval_time_t interval)
{
    unsigned idx = (unsigned)code % (sizeof(st->last_logged) / sizeof(st->last_logged[0]));
    apr_uint64_t now = (apr_uint64_t)apr_time_now();
    apr_uint64_t last = apr_atomic_read64(&st->last_logged[idx]);

    if (last && now - last < (apr_uint64_t)interval) {
        apr_atomic_inc64(&st->suppressed);
        return 0;
    }
    /* Only one process wins the slot for this interval. */
    if (apr_atomic_cas64(&st->last_logged[idx], now, last) != last) {
        apr_atomic_inc64(&st->suppressed);
        return 0;
    }
    return 1;
}

const char *azt_stats_last_error(azt_stats *st, apr_pool_t *p, apr_time_t *when)
{
    char buf[sizeof(st->last_error)];
    apr_time_t t;
    int i;

    for (i = 0; i < AZT_STATS_READ_TRIES; i++) {
        apr_uint32_t s = __atomic_load_n(&st->seq, __ATOMIC_ACQUIRE);
        apr_size_t j;

        if (s & 1) {
            apr_thread_yield();
            continue;
        }
        t = __atomic_load_n(&st->last_error_time, __ATOMIC_ACQUIRE);
        for (j = 0; j < sizeof(buf) - 1; j++) {
            buf[j] = __atomic_load_n(&st->last_error[j], __ATOMIC_ACQUIRE);
            if (!buf[j]) {
                break;
            }
        }
        buf[j] = '\0';
        if (__atomic_load_n(&st->seq, __ATOMIC_RELAXED) == s) {
            if (!t) {
                return NULL;
            }
            if (when) {
                *when = t;
            }
            return apr_pstrdup(p, buf);
        }
    }
    return NULL;                  /* being written right now: nothing to show */
}
