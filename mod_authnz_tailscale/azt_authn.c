/* mod_authnz_tailscale: AuthType tailscale (see azt_authn.h). */
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_strings.h>

#include "tsl_identity.h"
#include "azt_config.h"
#include "azt_lookup.h"
#include "azt_authn.h"

APLOG_USE_MODULE(authnz_tailscale);

#define AUTH_TYPE_NAME "tailscale"

static int is_tailscale_auth(request_rec *r)
{
    const char *t = ap_auth_type(r);
    return t && !strcasecmp(t, AUTH_TYPE_NAME);
}

int azt_needs_identity(request_rec *r)
{
    azt_dir_conf *dc = azt_dir_conf_get(r);
    return dc->uses_tailscale || azt_conf_headers(dc) || azt_conf_assertion(dc)
        || is_tailscale_auth(r);
}

int azt_access_check(request_rec *r)
{
    azt_dir_conf *dc;
    const azt_lookup *lk;
    int client_needed;

    if (!azt_needs_identity(r)) {
        return DECLINED;
    }
    dc = azt_dir_conf_get(r);
    lk = azt_lookup_request(r);
    /* Where only tailscale-peer-* rules decide, the proxy hop's identity is
     * all that is needed (its health checks forward no client). */
    client_needed = dc->uses_client || azt_conf_headers(dc) || is_tailscale_auth(r);
    /* "deny" lets a tailscale rule deny, but a negated one cannot be
     * evaluated at all: its negation must not become true. */
    if (((client_needed && azt_outcome_unavailable(lk->outcome))
         || azt_outcome_unavailable(lk->peer_outcome))
        && (azt_conf_unavailable(dc) == AZT_UNAVAILABLE_ERROR || dc->negates_tailscale)) {
        apr_table_setn(r->notes, "error-notes",
                       "The tailnet identity of this client could not be checked.");
        apr_table_setn(r->err_headers_out, "Retry-After", "5");
        return HTTP_SERVICE_UNAVAILABLE;
    }
    return DECLINED;
}

static const char *tags_joined(apr_pool_t *p, const tsl_identity *id)
{
    return apr_array_pstrcat(p, id->tags, ',');
}

int azt_authn_check(request_rec *r)
{
    const azt_lookup *lk;
    const tsl_identity *id;
    azt_dir_conf *dc;

    if (!is_tailscale_auth(r)) {
        return DECLINED;
    }
    dc = azt_dir_conf_get(r);
    lk = azt_lookup_request(r);
    switch (lk->outcome) {
    case AZT_IDENTIFIED:
        break;
    case AZT_NOT_A_PEER:
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                      "TS01005: AuthType tailscale: %s is not a tailnet peer; 401",
                      lk->addr ? lk->addr : "the client");
        return HTTP_UNAUTHORIZED;
    case AZT_UNAVAILABLE:
    case AZT_OUTCOME_UNSET:
        return azt_conf_unavailable(dc) == AZT_UNAVAILABLE_DENY ? HTTP_UNAUTHORIZED
                                                                : HTTP_SERVICE_UNAVAILABLE;
    }
    id = lk->id;
    if (id->is_tagged) {
        switch (azt_conf_tagged_user(dc)) {
        case AZT_TAGGED_USER_NODE:
            r->user = apr_pstrdup(r->pool, id->node_name);
            break;
        case AZT_TAGGED_USER_TAGS:
            r->user = (char *)tags_joined(r->pool, id);
            break;
        default:
            ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r,
                          "TS01007: AuthType tailscale: %s is tagged node %s (%s), not a "
                          "user; 401. Admit it with Require tailscale-tag/tailscale-node, "
                          "or set AuthTailscaleTaggedUser node|tags",
                          lk->addr, id->node_name, tags_joined(r->pool, id));
            return HTTP_UNAUTHORIZED;
        }
    }
    else {
        r->user = apr_pstrdup(r->pool, id->login_name);
    }
    r->ap_auth_type = (char *)AUTH_TYPE_NAME;
    return OK;
}
