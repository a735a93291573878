/* mod_md_tailscale: supplying mod_ssl (see mdt_ssl.h). */
#include <string.h>
#include <strings.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_core.h>
#include <http_config.h>
#include <http_log.h>
#include <http_main.h>
#include <http_protocol.h>
#include <http_request.h>
#include <http_ssl.h>
#include "tsl_client.h"
#include "mdt_driver.h"
#include "mdt_fallback.h"
#include "mdt_helper.h"
#include "mdt_live.h"
#include "mdt_store.h"
#include "mdt_ssl.h"

APLOG_USE_MODULE(md_tailscale);

#define RETAINED_KEY "mod_md_tailscale-starts"

static int is_real_pass(void)
{
    return ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_CONFIG;
}

static void use_stored(apr_pool_t *pconf, mdt_state *st, const mdt_stored *act)
{
    st->served_fallback = 0;
    st->key_file = apr_pstrdup(pconf, act->key_file);
    st->chain_file = apr_pstrdup(pconf, act->chain_file);
    mdt_state_set_cert(&st->served, act->pair, act->gen);
    mdt_state_set_cert(&st->cert, act->pair, act->gen);
}

/* No usable certificate: the fallback from the store, else one held in
 * memory (the store cannot take it: disk full, read-only). */
static void use_fallback(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s,
                         const mdt_runtime *rt, mdt_state *st, int real)
{
    const mdt_domain *d = st->md;
    const char *kf, *cf, *err, *err2;
    mdt_fallback_memory *mem = NULL;

    st->served_fallback = 1;
    if (!(err = mdt_fallback_ensure(ptemp, rt->store_dir, d, &kf, &cf))) {
        st->key_file = apr_pstrdup(pconf, kf);
        st->chain_file = apr_pstrdup(pconf, cf);
        return;
    }
    if (!(err2 = mdt_fallback_in_memory(pconf, d, &mem))) {
        st->key_file = mem->key_file;
        st->chain_file = mem->chain_file;
        st->fallback_mem = mem;
        if (real) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "TS02102: MDomain %s: the "
                         "store cannot hold the fallback certificate (%s); using one "
                         "held in memory", d->name, err);
        }
        if (!st->store_err[0]) {
            (void)mdt_state_set_store_err(st, err);
        }
        return;
    }
    if (real) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "TS02103: MDomain %s: no fallback "
                     "certificate (%s; %s); mod_ssl decides what %s answers until "
                     "the store is fixed", d->name, err, err2, d->name);
    }
}

/* Did the startup wait for d's certificate run out? Kept from the first
 * configuration pass (where it waits) to the real one (which logs). */
static int *startup_waited(apr_pool_t *p, const mdt_domain *d)
{
    const char *key = apr_pstrcat(p, "mod_md_tailscale startup waited ", d->name, NULL);
    int *flag = ap_retained_data_get(key);

    if (!flag) {
        /* the key must live as long as the retained data: once per name */
        flag = ap_retained_data_create(apr_pstrdup(ap_pglobal, key), sizeof(*flag));
        *flag = 0;
    }
    return flag;
}

int mdt_ssl_prepare(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    mdt_config *c = mdt_config_get(s);
    mdt_runtime *rt;
    int real = is_real_pass(), *starts, first, i;
    apr_time_t deadline;
    const char *store_err;

    if (!c || c->domains->nelts == 0) {
        return OK;
    }
    starts = ap_retained_data_get(RETAINED_KEY);
    if (!starts) {
        starts = ap_retained_data_create(RETAINED_KEY, sizeof(*starts));
        *starts = 0;
    }
    /* The wait for tailscaled happens once per server start, in the first
     * configuration pass (before apachectl returns); restarts never wait. */
    first = (*starts)++ == 0;
    tsl_global_init();
    rt = apr_pcalloc(pconf, sizeof(*rt));
    rt->s = s;
    rt->conf = c;
    rt->store_dir = mdt_config_store_dir(pconf, c);
    rt->states = apr_array_make(pconf, c->domains->nelts, sizeof(mdt_state *));
    rt->vhosts = apr_hash_make(pconf);
    rt->live = mdt_live_create(pconf, c->domains->nelts);
    /* A store problem never stops httpd: it starts with what the store
     * still holds (or a fallback in memory), and the status shows it. */
    if ((store_err = mdt_store_init(ptemp, rt->store_dir)) && real) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "TS02100: the certificate store %s "
                     "is not usable: %s. httpd starts with the certificates still "
                     "stored there (or a fallback certificate); none is renewed into "
                     "it until this is fixed (see MDTailscaleStoreDir)",
                     rt->store_dir, store_err);
    }
    deadline = apr_time_now() + mdt_config_startup_wait(c);

    for (i = 0; i < c->domains->nelts; ++i) {
        const mdt_domain *d = APR_ARRAY_IDX(c->domains, i, const mdt_domain *);
        mdt_state *st = mdt_state_create(pconf, d);
        const char *why = "no certificate stored yet", *why_old, *waited = NULL;
        mdt_stored *act = mdt_store_load(ptemp, rt->store_dir, d, apr_time_now(), &why);
        apr_time_t now = apr_time_now();

        APR_ARRAY_PUSH(rt->states, mdt_state *) = st;
        (void)mdt_state_set_store_err(st, store_err);
        st->served_fallback = 1;
        if (!act && first && now < deadline) {
            /* counters and events go on from the status file; this state
             * ends with this pass's pconf, the helper resumes its own */
            mdt_state_resume(ptemp, rt, st);
            if (st->retry_after_until > now) {
                /* a 429 before the stop: asking again now only prolongs it */
                ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, "TS02108: MDomain %s: "
                             "not asking tailscaled at startup: it answered 429 (rate "
                             "limited) and Retry-After runs until %s", d->name,
                             mdt_time_rfc3339(ptemp, st->retry_after_until));
            }
            else {
                /* tailscaled may hold the certificate already: then the
                 * first request gets it, without a restart */
                tsl_client_options opts;
                tsl_client *client;

                tsl_client_options_default(&opts);
                opts.timeout = deadline - now;
                client = tsl_client_create(ptemp, d->socket, &opts);
                switch (mdt_driver_check_startup(s, rt, st, client, ptemp,
                                                 deadline - now)) {
                case MDT_CHECK_NEW:
                    act = mdt_store_load(ptemp, rt->store_dir, d, apr_time_now(), &why);
                    st->pending_renewed = 1;
                    break;
                case MDT_CHECK_WAITED:
                    *startup_waited(ptemp, d) = 1;
                    break;
                default:
                    break;
                }
                /* the helper (forked in a later pass) takes over from here:
                 * the events to fire, the error, a Retry-After it must honour */
                (void)mdt_state_save(ptemp, rt, st, !store_err);
            }
        }
        if (real && *startup_waited(ptemp, d)) {
            /* the wait happened in the first pass; this one logs TS02021 */
            *startup_waited(ptemp, d) = 0;
            waited = act ? NULL : apr_psprintf(ptemp, "tailscaled did not answer within "
                                               "MDTailscaleStartupWait (%s); the helper "
                                               "keeps asking", mdt_duration_str(ptemp,
                                               mdt_config_startup_wait(c)));
        }
        if (act) {
            use_stored(pconf, st, act);
            if (real) {
                ap_log_error(APLOG_MARK, APLOG_INFO, 0, s, "TS02022: MDomain %s: using "
                             "the certificate valid until %s (%s)", d->name,
                             mdt_time_rfc3339(ptemp, act->pair->not_after), act->gen);
            }
            continue;
        }
        if ((act = mdt_store_load(ptemp, rt->store_dir, d, 0, &why_old))) {
            /* an expired certificate still names the site; the fallback
             * would only answer 503 */
            use_stored(pconf, st, act);
            if (real) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "TS02101: MDomain %s: no "
                             "valid certificate (%s); serving the last stored one, "
                             "valid until %s (%s), until tailscaled at %s supplies a "
                             "new one", d->name, st->err_text[0] ? st->err_text : why,
                             mdt_time_rfc3339(ptemp, act->pair->not_after), act->gen,
                             d->socket);
            }
            continue;
        }
        use_fallback(pconf, ptemp, s, rt, st, real);
        if (real) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "TS02021: MDomain %s: no valid "
                         "certificate yet (%s); answering with a self-signed fallback "
                         "certificate and 503 until tailscaled at %s supplies it",
                         d->name, waited ? waited : st->err_text[0] ? st->err_text : why,
                         d->socket);
        }
    }
    mdt_runtime_set(pconf, rt);
    return OK;
}

static int server_uses(const mdt_runtime *rt, server_rec *v, const mdt_domain *d)
{
    const mdt_vhost *vh = apr_hash_get(rt->vhosts, &v, sizeof(v));
    return vh && vh->state->md == d;
}

int mdt_ssl_after(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    mdt_runtime *rt = mdt_runtime_get();
    int i;

    if (!rt) {
        return OK;
    }
    for (i = 0; i < rt->states->nelts; ++i) {
        /* mod_ssl has read them: no child inherits a memory fallback */
        mdt_state *st = APR_ARRAY_IDX(rt->states, i, mdt_state *);
        if (st->fallback_mem) {
            mdt_fallback_memory_close(st->fallback_mem);
        }
    }
    if (!is_real_pass()) {
        return OK;
    }
    for (i = 0; i < rt->conf->domains->nelts; ++i) {
        const mdt_domain *d = APR_ARRAY_IDX(rt->conf->domains, i, const mdt_domain *);
        server_rec *v;
        int used = 0;

        for (v = s; v && !used; v = v->next) {
            used = server_uses(rt, v, d);
        }
        if (!used) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "TS02081: MDomain %s (%s:%d) "
                         "is not used by any <VirtualHost> with SSLEngine on whose "
                         "ServerName or ServerAlias is %s; its certificate is obtained "
                         "but not served", d->name, d->file, d->line, d->name);
        }
    }
    if (mdt_helper_start(pconf, s, rt) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, "TS02079: without the helper, "
                     "certificates are neither obtained nor renewed until the next "
                     "restart");
    }
    (void)ptemp;
    return OK;
}

/* ---- which vhost gets what ----------------------------------------------- */

static const mdt_domain *domain_of(const mdt_config *c, server_rec *s)
{
    const mdt_domain *d;
    int i, j;

    if (s->server_hostname && (d = mdt_config_find_domain(c, s->server_hostname))) {
        return d;
    }
    for (i = 0; s->names && i < s->names->nelts; ++i) {
        if ((d = mdt_config_find_domain(c, APR_ARRAY_IDX(s->names, i, const char *)))) {
            return d;
        }
    }
    for (i = 0; s->wild_names && i < s->wild_names->nelts; ++i) {
        const char *w = APR_ARRAY_IDX(s->wild_names, i, const char *);
        for (j = 0; j < c->domains->nelts; ++j) {
            const mdt_domain *m = APR_ARRAY_IDX(c->domains, j, const mdt_domain *);
            if (!strcasecmp(m->request, w)) {
                return m;
            }
        }
    }
    return NULL;
}

static mdt_state *state_for(server_rec *s, mdt_runtime **prt)
{
    mdt_runtime *rt = mdt_runtime_get();
    const mdt_domain *d;

    if (!rt || !(d = domain_of(rt->conf, s))) {
        return NULL;
    }
    *prt = rt;
    return mdt_runtime_state(rt, d);
}

static mdt_vhost *vhost_record(mdt_runtime *rt, server_rec *s, const mdt_state *st)
{
    apr_pool_t *p = apr_hash_pool_get(rt->vhosts);
    server_rec **key = apr_palloc(p, sizeof(*key));
    mdt_vhost *vh = apr_pcalloc(p, sizeof(*vh));

    *key = s;
    vh->state = st;
    apr_hash_set(rt->vhosts, key, sizeof(*key), vh);
    return vh;
}

int mdt_ssl_add_cert_files(server_rec *s, apr_pool_t *p,
                           apr_array_header_t *cert_files,
                           apr_array_header_t *key_files)
{
    mdt_runtime *rt = NULL;
    mdt_state *st = state_for(s, &rt);

    if (!st) {
        return DECLINED;
    }
    if (cert_files->nelts > 0) {
        if (is_real_pass()) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "TS02080: %s:%d has its own "
                         "SSLCertificateFile; MDomain %s is not applied to it (remove "
                         "SSLCertificateFile/SSLCertificateKeyFile there to use it)",
                         s->server_hostname, s->port, st->md->name);
        }
        return DECLINED;
    }
    (void)vhost_record(rt, s, st);
    if (st->served_fallback) {
        return DECLINED;    /* the fallback hook supplies it */
    }
    APR_ARRAY_PUSH(cert_files, const char *) = st->chain_file;
    APR_ARRAY_PUSH(key_files, const char *) = st->key_file;
    (void)p;
    return OK;
}

int mdt_ssl_add_fallback_cert_files(server_rec *s, apr_pool_t *p,
                                    apr_array_header_t *cert_files,
                                    apr_array_header_t *key_files)
{
    mdt_runtime *rt = NULL;
    mdt_state *st = state_for(s, &rt);
    mdt_vhost *vh;

    if (!st || !st->served_fallback
        || !(vh = apr_hash_get(rt->vhosts, &s, sizeof(s))) || vh->state != st) {
        return DECLINED;
    }
    APR_ARRAY_PUSH(cert_files, const char *) = st->chain_file;
    APR_ARRAY_PUSH(key_files, const char *) = st->key_file;
    vh->fallback = 1;
    (void)p;
    return OK;
}

int mdt_ssl_fallback_503(request_rec *r)
{
    mdt_runtime *rt = mdt_runtime_get();
    server_rec *s = r->server;
    const mdt_vhost *vh = rt ? apr_hash_get(rt->vhosts, &s, sizeof(s)) : NULL;

    if (!vh || !vh->fallback || !ap_ssl_conn_is_ssl(r->connection)) {
        return DECLINED;
    }
    apr_table_setn(r->err_headers_out, "Retry-After", "10");
    ap_custom_response(r, HTTP_SERVICE_UNAVAILABLE,
        "<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>"
        "<body>\n<h1>Service Unavailable</h1>\n<p>This site's certificate is being "
        "obtained from the local tailscaled (mod_md_tailscale). Until it is there, "
        "a temporary self-signed certificate is used and no content is served. "
        "Please try again in a moment.</p>\n</body></html>\n");
    return HTTP_SERVICE_UNAVAILABLE;
}
