/* mod_authnz_tailscale: identity for applications (see azt_export.h). */
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_request.h>
#include <apr_strings.h>

#include "tsl_identity.h"
#include "tsl_header.h"
#include "azt_config.h"
#include "azt_lookup.h"
#include "azt_authn.h"
#include "azt_export.h"
#include "azt_assertion.h"

APLOG_USE_MODULE(authnz_tailscale);

#define SERVE_HEADERS_INFO "https://tailscale.com/s/serve-headers"

/* Any header a backend could mistake for one of ours or tailscale serve's:
 * "Tailscale-..." and, since CGI-style backends fold '-' and '_', also
 * "Tailscale_...". */
static int forged_name(const char *name)
{
    return strncasecmp(name, "tailscale", 9) == 0 && (name[9] == '-' || name[9] == '_');
}

int azt_export_strip(request_rec *r)
{
    const apr_array_header_t *arr;
    const apr_table_entry_t *e;
    apr_array_header_t *names;
    int i;

    if (!azt_server_conf_get(r->server)->strip_headers) {
        return DECLINED;
    }
    arr = apr_table_elts(r->headers_in);
    e = (const apr_table_entry_t *)arr->elts;
    names = NULL;
    for (i = 0; i < arr->nelts; i++) {
        if (e[i].key && forged_name(e[i].key)) {
            if (!names) {
                names = apr_array_make(r->pool, 4, sizeof(const char *));
            }
            APR_ARRAY_PUSH(names, const char *) = e[i].key;
        }
    }
    if (names) {
        for (i = 0; i < names->nelts; i++) {
            const char *name = APR_ARRAY_IDX(names, i, const char *);
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                          "TS01030: removed client-sent header %s: only this server "
                          "sets tailnet identity headers", name);
            apr_table_unset(r->headers_in, name);
        }
    }
    return DECLINED;
}

static const char *caps_json(request_rec *r, const tsl_identity *id, const azt_dir_conf *dc)
{
    if (!id->capmap_json) {
        return NULL;
    }
    if (dc->accept_caps) {
        return tsl_identity_caps_filtered(r->pool, id, dc->accept_caps);
    }
    return id->capmap_json;
}

/* apr_table_setn() compares every TAILSCALE_* key with every earlier one
 * (APR indexes by the first four characters, all "TAIL"); add them instead
 * when they are not there yet, which is the common case (not a subrequest). */
static void env_put(apr_table_t *env, int fresh, const char *key, const char *val)
{
    if (fresh) {
        apr_table_addn(env, key, val);
    }
    else {
        apr_table_setn(env, key, val);
    }
}

static void set_env(request_rec *r, const azt_lookup *lk, const azt_dir_conf *dc,
                    const char *service)
{
    apr_table_t *env = r->subprocess_env;
    const tsl_identity *id = lk->id;
    const char *caps;
    int fresh = apr_table_get(env, "TAILSCALE_ADDR") == NULL;

    if (lk->funnel) {
        env_put(env, fresh, "TAILSCALE_FUNNEL", "1");
    }
    env_put(env, fresh, "TAILSCALE_ADDR", lk->addr);
    if (service) {
        env_put(env, fresh, "TAILSCALE_SERVICE", service);
    }
    if (lk->via_proxy) {
        env_put(env, fresh, "TAILSCALE_VIA_PROXY", lk->peer_addr);
        if (lk->peer_outcome == AZT_IDENTIFIED) {
            env_put(env, fresh, "TAILSCALE_PROXY_NODE", lk->peer_id->node_name);
        }
    }
    if (lk->outcome != AZT_IDENTIFIED || !id) {
        return;
    }
    if (!id->is_tagged) {
        env_put(env, fresh, "TAILSCALE_USER_LOGIN", id->login_name);
        env_put(env, fresh, "TAILSCALE_USER_NAME", id->display_name);
        env_put(env, fresh, "TAILSCALE_USER_PROFILE_PIC", id->profile_pic_url);
        if (id->groups->nelts) {
            env_put(env, fresh, "TAILSCALE_USER_GROUPS", id->groups_json);
        }
    }
    env_put(env, fresh, "TAILSCALE_NODE_NAME", id->node_name);
    env_put(env, fresh, "TAILSCALE_NODE_SHORT", id->node_short);
    env_put(env, fresh, "TAILSCALE_NODE_ID", id->node_stable_id);
    env_put(env, fresh, "TAILSCALE_TAILNET", id->tailnet);
    env_put(env, fresh, "TAILSCALE_TAGGED", id->is_tagged ? "1" : "0");
    env_put(env, fresh, "TAILSCALE_SHARED", id->is_shared_in ? "1" : "0");
    if (id->tags->nelts) {
        env_put(env, fresh, "TAILSCALE_TAGS", id->tags_json);
    }
    caps = caps_json(r, id, dc);
    if (caps) {
        env_put(env, fresh, "TAILSCALE_APP_CAPABILITIES", caps);
    }
}

/* The headers tailscale serve adds when it proxies (ipn/ipnlocal/serve.go):
 * user headers only for user-owned nodes, capabilities only when the
 * operator named which ones to pass. */
static void set_headers(request_rec *r, const azt_lookup *lk, const azt_dir_conf *dc,
                        const char *service)
{
    const tsl_identity *id = lk->id;
    apr_table_t *h = r->headers_in;

    if (lk->outcome != AZT_IDENTIFIED || !id) {
        return;
    }
    if (!id->is_tagged) {
        apr_table_setn(h, "Tailscale-User-Login", tsl_header_encode(r->pool, id->login_name));
        apr_table_setn(h, "Tailscale-User-Name", tsl_header_encode(r->pool, id->display_name));
        apr_table_setn(h, "Tailscale-User-Profile-Pic", id->profile_pic_url);
        apr_table_setn(h, "Tailscale-Headers-Info", SERVE_HEADERS_INFO);
        if (id->groups->nelts) {
            /* Not a serve header (serve sends no groups): ours, a JSON array
             * (a group name may hold a comma or a space), encoded like
             * Tailscale-App-Capabilities. */
            apr_table_setn(h, "Tailscale-User-Groups",
                           tsl_header_encode(r->pool, id->groups_json));
        }
    }
    if (service) {
        /* Ours: which Tailscale Service the client reached (its grants are
         * the ones Tailscale-App-Capabilities shows). */
        apr_table_setn(h, "Tailscale-Service", service);
    }
    if (dc->accept_caps && id->capmap_json) {
        const char *caps = tsl_identity_caps_filtered(r->pool, id, dc->accept_caps);
        apr_table_setn(h, "Tailscale-App-Capabilities", tsl_header_encode(r->pool, caps));
    }
}

/* Set for an identity, else removed: whatever the client sent never
 * reaches the backend, even where AuthTailscaleStripHeaders is off. */
static void set_assertion(request_rec *r, const azt_lookup *lk, const char *service)
{
    const char *token = NULL;

    if (lk->outcome == AZT_IDENTIFIED && lk->id) {
        token = azt_assertion_token(r, lk->id, lk->via_proxy, service);
    }
    if (token) {
        apr_table_setn(r->headers_in, AZT_ASSERTION_HEADER, token);
    }
    else {
        apr_table_unset(r->headers_in, AZT_ASSERTION_HEADER);
    }
}

int azt_export_fixups(request_rec *r)
{
    const azt_lookup *lk;
    azt_dir_conf *dc;
    const char *service;

    if (!azt_needs_identity(r)) {
        return DECLINED;
    }
    lk = azt_lookup_get(r);
    if (!lk) {
        return DECLINED;
    }
    dc = azt_dir_conf_get(r);
    service = azt_lookup_service(r, lk);
    set_env(r, lk, dc, service);
    if (azt_conf_headers(dc)) {
        set_headers(r, lk, dc, service);
    }
    if (azt_conf_assertion(dc)) {
        set_assertion(r, lk, service);
    }
    return DECLINED;
}
