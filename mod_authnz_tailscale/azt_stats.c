/* mod_authnz_tailscale: shared counters (see azt_stats.h). */
#include <apr_atomic.h>
#include <apr_shm.h>
#include <apr_strings.h>

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

static void lock(azt_stats *st)
{
    while (apr_atomic_cas32(&st->lock, 1, 0) != 0) {
        /* contention only between concurrent error reports: rare and short */
    }
}

static void unlock(azt_stats *st)
{
    apr_atomic_set32(&st->lock, 0);
}

void azt_stats_error(azt_stats *st, tsl_code code, const char *text)
{
    apr_atomic_inc64(&st->errors);
    lock(st);
    st->last_error_time = apr_time_now();
    st->last_error_code = (int)code;
    apr_cpystrn(st->last_error, text ? text : "", sizeof(st->last_error));
    unlock(st);
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
    const char *text = NULL;

    lock(st);
    if (st->last_error_time) {
        text = apr_pstrdup(p, st->last_error);
        if (when) {
            *when = st->last_error_time;
        }
    }
    unlock(st);
    return text;
}
