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
 * holding it; readers retry a bounded number of times. */
#define AZT_STATS_STALE apr_time_from_sec(1)
#define AZT_STATS_READ_TRIES 64

void azt_stats_error(azt_stats *st, tsl_code code, const char *text)
{
    apr_uint64_t now = (apr_uint64_t)apr_time_now();
    apr_uint32_t s = apr_atomic_read32(&st->seq);
    apr_uint32_t mine;

    apr_atomic_inc64(&st->errors);
    if (s & 1) {
        if (now - apr_atomic_read64(&st->claimed) < (apr_uint64_t)AZT_STATS_STALE) {
            return;
        }
        mine = s + 2;             /* take over from a writer that is gone */
    }
    else {
        mine = s + 1;
    }
    if (apr_atomic_cas32(&st->seq, mine, s) != s) {
        return;                   /* another writer got there first */
    }
    apr_atomic_set64(&st->claimed, now);
    st->last_error_time = (apr_time_t)now;
    st->last_error_code = (int)code;
    apr_cpystrn(st->last_error, text ? text : "", sizeof(st->last_error));
    apr_atomic_cas32(&st->seq, mine + 1, mine);   /* unless taken over meanwhile */
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
        apr_uint32_t s = apr_atomic_read32(&st->seq);

        if (s & 1) {
            apr_thread_yield();
            continue;
        }
        t = st->last_error_time;
        memcpy(buf, st->last_error, sizeof(buf));
        buf[sizeof(buf) - 1] = '\0';
        if (apr_atomic_read32(&st->seq) == s) {
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
