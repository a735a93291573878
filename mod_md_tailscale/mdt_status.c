/* mod_md_tailscale: JSON status handler and server-status section. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_protocol.h>
#include <http_request.h>
#include <mod_status.h>
#include "mdt_live.h"
#include "mdt_state.h"
#include "mdt_status.h"

#define HANDLER_NAME "md-tailscale-status"

/* The document this generation's helper published in memory (mdt_live.h),
 * or NULL while it has published none. */
static json_t *live_json(apr_pool_t *p, const mdt_runtime *rt, const mdt_domain *d)
{
    json_error_t jerr;
    char *text;
    int i;

    for (i = 0; rt && i < rt->states->nelts; ++i) {
        if (APR_ARRAY_IDX(rt->states, i, const mdt_state *)->md == d) {
            text = mdt_live_get(rt->live, i, p);
            return text ? json_loads(text, 0, &jerr) : NULL;
        }
    }
    return NULL;
}

/* A domain's status: what this generation's helper published, else the
 * helper's file corrected by what this process itself serves (right after
 * a restart the file may still be the previous helper's), or only what
 * this process knows. */
static json_t *domain_json(apr_pool_t *p, const mdt_runtime *rt, const mdt_domain *d)
{
    json_t *o = live_json(p, rt, d);
    const mdt_state *st = mdt_runtime_state(rt, d);

    if (o) {
        return o;
    }
    o = mdt_state_load_json(p, rt, d);

    if (o && st) {
        mdt_state own = *st;
        json_t *cert = json_object_get(o, "cert");
        json_t *fp = json_is_object(cert) ? json_object_get(cert, "fingerprint") : NULL;
        json_t *mine = mdt_state_to_json(p, rt, &own);

        if (json_is_string(fp)) {
            apr_cpystrn(own.cert.fingerprint, json_string_value(fp),
                        sizeof(own.cert.fingerprint));
        }
        json_object_set(o, "served", json_object_get(mine, "served"));
        json_object_set(o, "fallback", json_object_get(mine, "fallback"));
        json_object_set_new(o, "state", json_string(mdt_state_word(&own, apr_time_now())));
        json_decref(mine);
        return o;
    }
    if (o) {
        return o;
    }
    if (st) {
        return mdt_state_to_json(p, rt, st);
    }
    return json_pack("{s:s, s:s}", "name", d->name, "state", "unknown");
}

static int send_json(request_rec *r, json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);

    json_decref(doc);
    if (!text) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_rputs(text, r);
    ap_rputs("\n", r);
    free(text);
    return OK;
}

int mdt_status_handler(request_rec *r)
{
    mdt_runtime *rt;
    const char *want = NULL;
    json_t *doc, *list;
    int i;

    if (!r->handler || strcmp(r->handler, HANDLER_NAME)) {
        return DECLINED;
    }
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    rt = mdt_runtime_get();
    if (r->path_info && r->path_info[0] == '/' && r->path_info[1]) {
        want = r->path_info + 1;
    }
    if (want) {
        const mdt_domain *d = NULL;
        for (i = 0; rt && i < rt->conf->domains->nelts; ++i) {
            const mdt_domain *m = APR_ARRAY_IDX(rt->conf->domains, i, const mdt_domain *);
            if (!strcasecmp(m->name, want) || !strcasecmp(m->request, want)) {
                d = m;
            }
        }
        if (!d) {
            return HTTP_NOT_FOUND;
        }
        return send_json(r, domain_json(r->pool, rt, d));
    }
    list = json_array();
    for (i = 0; rt && i < rt->conf->domains->nelts; ++i) {
        json_array_append_new(list, domain_json(r->pool, rt,
                              APR_ARRAY_IDX(rt->conf->domains, i, const mdt_domain *)));
    }
    doc = json_pack("{s:s, s:s, s:o}", "module", "mod_md_tailscale",
                    "storeDir", rt ? rt->store_dir : "", "domains", list);
    return send_json(r, doc);
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : "";
}

static const char *jsub(json_t *o, const char *obj, const char *key)
{
    json_t *v = json_object_get(o, obj);
    return json_is_object(v) ? jstr(v, key) : "";
}

int mdt_status_hook(request_rec *r, int flags)
{
    mdt_runtime *rt = mdt_runtime_get();
    int i;

    if (!rt || rt->conf->domains->nelts == 0) {
        return OK;
    }
    if (!(flags & AP_STATUS_SHORT)) {
        ap_rputs("<hr />\n<h2>mod_md_tailscale</h2>\n<table border=\"1\">\n<tr>"
                 "<th>Domain</th><th>State</th><th>Valid until</th><th>Last check</th>"
                 "<th>Next check</th><th>Renewals</th><th>Last error</th></tr>\n", r);
    }
    for (i = 0; i < rt->conf->domains->nelts; ++i) {
        const mdt_domain *d = APR_ARRAY_IDX(rt->conf->domains, i, const mdt_domain *);
        json_t *o = domain_json(r->pool, rt, d);
        json_t *n = json_object_get(o, "renewals");
        const char *err = jsub(o, "lastError", "text");
        const char *err_id = jsub(o, "lastError", "id");
        const char *until = jsub(o, "served", "notAfter");

        if (flags & AP_STATUS_SHORT) {
            ap_rprintf(r, "MDTailscaleDomain: %s state=%s notAfter=%s lastCheck=%s "
                       "nextCheck=%s renewals=%d%s%s\n", d->name, jstr(o, "state"),
                       until, jstr(o, "lastCheck"), jstr(o, "nextCheck"),
                       json_is_integer(n) ? (int)json_integer_value(n) : 0,
                       *err ? " lastError=" : "",
                       *err ? apr_psprintf(r->pool, "%s %s", err_id, err) : "");
        }
        else {
            ap_rprintf(r, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                       "<td>%d</td><td>%s%s%s</td></tr>\n",
                       ap_escape_html(r->pool, d->name),
                       ap_escape_html(r->pool, jstr(o, "state")),
                       ap_escape_html(r->pool, until),
                       ap_escape_html(r->pool, jstr(o, "lastCheck")),
                       ap_escape_html(r->pool, jstr(o, "nextCheck")),
                       json_is_integer(n) ? (int)json_integer_value(n) : 0,
                       ap_escape_html(r->pool, err_id), *err_id ? ": " : "",
                       ap_escape_html(r->pool, err));
        }
        json_decref(o);
    }
    if (!(flags & AP_STATUS_SHORT)) {
        ap_rputs("</table>\n", r);
    }
    return OK;
}
