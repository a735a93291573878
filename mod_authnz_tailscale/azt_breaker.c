/* mod_authnz_tailscale: circuit breaker (see azt_breaker.h). */
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "azt_breaker.h"

/* While open, a new probe starts at most this often (a dead socket fails
 * in microseconds: no need to connect for every request). */
#define AZT_BREAKER_PROBE_GAP apr_time_from_msec(200)
/* A probe that has not answered for this long (a daemon that accepts and
 * never answers holds it for the whole timeout) no longer holds the next
 * one back, so that service comes back within this much of tailscaled
 * answering again, whatever AuthTailscaleTimeout is; at most
 * AZT_BREAKER_MAX_PROBES wait at once. */
#define AZT_BREAKER_STUCK apr_time_from_msec(500)
#define AZT_BREAKER_MAX_PROBES 4

struct azt_breaker {
    apr_thread_mutex_t *mutex;
    int open;
    int probing;                /* probes under way */
    apr_time_t last_probe;      /* when the last probe started */
    apr_time_t answered;        /* when tailscaled last answered */
    tsl_code code;              /* the answer that opened it */
    char text[256];
};

azt_breaker *azt_breaker_create(apr_pool_t *p)
{
    azt_breaker *b = apr_pcalloc(p, sizeof(*b));

    apr_thread_mutex_create(&b->mutex, APR_THREAD_MUTEX_DEFAULT, p);
    return b;
}

azt_breaker_verdict azt_breaker_enter(azt_breaker *b, apr_time_t now, tsl_code *code,
                                      char *text, apr_size_t size)
{
    azt_breaker_verdict v = AZT_BREAKER_ASK;

    apr_thread_mutex_lock(b->mutex);
    if (b->open) {
        apr_interval_time_t since = now - b->last_probe;

        if (since >= AZT_BREAKER_PROBE_GAP
            && (b->probing == 0
                || (since >= AZT_BREAKER_STUCK && b->probing < AZT_BREAKER_MAX_PROBES))) {
            b->probing++;
            b->last_probe = now;
            v = AZT_BREAKER_PROBE;
        }
        else {
            *code = b->code;
            apr_cpystrn(text, b->text, size);
            v = AZT_BREAKER_FAIL;
        }
    }
    apr_thread_mutex_unlock(b->mutex);
    return v;
}

void azt_breaker_report(azt_breaker *b, azt_breaker_verdict v, int available,
                        tsl_code code, const char *text, apr_time_t started,
                        apr_time_t now)
{
    apr_thread_mutex_lock(b->mutex);
    if (v == AZT_BREAKER_PROBE) {
        b->probing--;
    }
    if (available) {
        b->open = 0;
        b->answered = now;
    }
    else if (started >= b->answered) {
        /* (a failure of a lookup begun before tailscaled last answered is
         * stale and changes nothing) */
        if (!b->open) {
            b->last_probe = now;    /* the failed lookup was the first probe */
        }
        b->open = 1;
        b->code = code;
        apr_cpystrn(b->text, text ? text : "", sizeof(b->text));
    }
    apr_thread_mutex_unlock(b->mutex);
}

int azt_breaker_is_open(azt_breaker *b)
{
    int open;

    apr_thread_mutex_lock(b->mutex);
    open = b->open;
    apr_thread_mutex_unlock(b->mutex);
    return open;
}
