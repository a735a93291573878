/* mod_authnz_tailscale: hosted Tailscale Services (see azt_services.h). */
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <apr_thread_cond.h>

#include "tsl_status.h"
#include "azt_services.h"

APLOG_USE_MODULE(authnz_tailscale);

/* tailscaled's netmap changes rarely: while requests need the list, it is
 * asked again at most this often. */
#define AZT_SERVICES_REFRESH apr_time_from_sec(5)
/* At most one warning per process this often. */
#define AZT_SERVICES_LOG_GAP apr_time_from_sec(60)

struct azt_services {
    apr_thread_mutex_t *mutex;  /* every field below is read and written under it */
    apr_thread_cond_t *answered;    /* signalled when an ask ends */
    const char *path;
    tsl_client *client;
    azt_breaker *breaker;
    apr_pool_t *pool;           /* holds vips; replaced by each new answer */
    apr_hash_t *vips;           /* VIP -> service name; NULL: never known */
    apr_time_t next;            /* when the list may be asked again */
    int asking;                 /* a thread is asking */
    apr_time_t logged;          /* last warning */
};

static apr_status_t drop_list(void *data)
{
    azt_services *sv = data;

    if (sv->pool) {
        apr_pool_destroy(sv->pool);
        sv->pool = NULL;
    }
    return APR_SUCCESS;
}

azt_services *azt_services_create(apr_pool_t *p, const char *path, tsl_client *client,
                                  azt_breaker *breaker)
{
    azt_services *sv = apr_pcalloc(p, sizeof(*sv));

    apr_thread_mutex_create(&sv->mutex, APR_THREAD_MUTEX_DEFAULT, p);
    apr_thread_cond_create(&sv->answered, p);
    sv->path = path;
    sv->client = client;
    sv->breaker = breaker;
    apr_pool_cleanup_register(p, sv, drop_list, apr_pool_cleanup_null);
    return sv;
}

/* Called with the mutex held: may this process warn now? */
static int may_log(azt_services *sv, apr_time_t now)
{
    if (sv->logged && now < sv->logged + AZT_SERVICES_LOG_GAP) {
        return 0;
    }
    sv->logged = now;
    return 1;
}

/* Ask tailscaled for the list: a new pool holding *vips, or NULL when the
 * status could not be had (*why says why, in r's pool). */
static apr_pool_t *ask_list(azt_services *sv, request_rec *r, apr_hash_t **vips,
                            const char **why, const char **bad)
{
    tsl_status *st;
    tsl_result res;
    apr_pool_t *p;
    int i, j;

    *bad = NULL;
    if (tsl_status_get(sv->client, r->pool, &st, &res) != TSL_OK) {
        *why = res.text;
        return NULL;
    }
    *bad = st->services_error;
    apr_pool_create_unmanaged_ex(&p, NULL, NULL);
    *vips = apr_hash_make(p);
    for (i = 0; i < st->services->nelts; i++) {
        const tsl_service *svc = &APR_ARRAY_IDX(st->services, i, tsl_service);
        const char *name = apr_pstrdup(p, svc->name);

        for (j = 0; j < svc->vips->nelts; j++) {
            apr_hash_set(*vips, apr_pstrdup(p, APR_ARRAY_IDX(svc->vips, j, const char *)),
                         APR_HASH_KEY_STRING, name);
        }
    }
    return p;
}

/* Called with the mutex held; returns with it held.  tailscaled is asked
 * outside the mutex, so no thread of the process queues behind the
 * LocalAPI; requests meanwhile use the list they have (the first list is
 * waited for in azt_services_at: without it no request could be told its
 * service). */
static void refresh(azt_services *sv, request_rec *r, apr_time_t now)
{
    apr_hash_t *vips = NULL;
    apr_pool_t *p, *old = NULL;
    const char *why = NULL, *bad;

    sv->asking = 1;
    apr_thread_mutex_unlock(sv->mutex);
    p = ask_list(sv, r, &vips, &why, &bad);
    apr_thread_mutex_lock(sv->mutex);
    sv->asking = 0;
    apr_thread_cond_broadcast(sv->answered);
    sv->next = now + AZT_SERVICES_REFRESH;
    if (p) {
        old = sv->pool;
        sv->pool = p;
        sv->vips = vips;
    }
    if (!p && may_log(sv, now)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "TS01046: tailscaled at %s did not give its status (vhost %s): %s; "
                      "TAILSCALE_SERVICE is %s until it does. Check that this server's "
                      "user may read the LocalAPI (tsl-check status).", sv->path,
                      r->server->server_hostname, why,
                      sv->vips ? "taken from its last status" : "not set");
    }
    else if (p && bad && may_log(sv, now)) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "TS01047: tailscaled at %s (vhost %s): %s; no request is told a "
                      "Tailscale Service. Check tailscaled's version (tailscale version).",
                      sv->path, r->server->server_hostname, bad);
    }
    if (old) {
        apr_pool_destroy(old);      /* no reader holds it: names are copied out */
    }
}

const char *azt_services_at(azt_services *sv, request_rec *r, const char *dst)
{
    apr_time_t now = apr_time_now();
    const char *name = NULL;

    apr_thread_mutex_lock(sv->mutex);
    if (!sv->asking && now >= sv->next && !azt_breaker_is_open(sv->breaker)) {
        refresh(sv, r, now);
    }
    while (!sv->vips && sv->asking) {
        /* The first list is on its way (bounded by the client's timeout). */
        apr_thread_cond_wait(sv->answered, sv->mutex);
    }
    if (sv->vips && (name = apr_hash_get(sv->vips, dst, APR_HASH_KEY_STRING))) {
        name = apr_pstrdup(r->pool, name);
    }
    apr_thread_mutex_unlock(sv->mutex);
    return name;
}
