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
/* The scheme of our challenge: a client cannot answer it with credentials,
 * the tailnet connection itself is the credential. */
#define CHALLENGE_SCHEME "Tailscale"
/* r->notes key: why AuthType tailscale answered 401 (one of the reasons below) */
#define NOTE_REASON "authnz-tailscale-401"

/* What the 401 page tells the person at the browser, by reason. */
typedef struct reason {
    const char *key;
    const char *why;        /* HTML */
    const char *todo;
} reason;

static const reason REASONS[] = {
    {"not-a-peer",
     "This page is only for people on the tailnet, and your connection did not "
     "come from a device of this tailnet.",
     "Connect this device to the tailnet with the Tailscale app (or "
     "<code>tailscale up</code>) and open the page by the server's tailnet name or "
     "its 100.x address, not by its public address or through another proxy."},
    {"tagged",
     "Your device is a tagged node: it acts for its tags, not for a user, so it "
     "has no user identity to sign in with.",
     "Open the page from a device that is logged in as your user, or ask the "
     "site's administrator to admit this device by its tag or name."},
    {"no-login",
     "Tailscale gave no usable login name for your device: the name holds "
     "characters this server does not accept.",
     "Ask the tailnet's administrator to check your login name."},
    {"unavailable",
     "This server could not check your tailnet identity just now.",
     "Try again in a moment; if it goes on, tell the site's administrator."},
    {"denied",
     "Your tailnet identity is not allowed to open this page.",
     "Ask the site's administrator for access."},
};

/* A 401 under AuthType tailscale, for the page and challenge that
 * azt_note_auth_failure() add. */
static int unauthorized(request_rec *r, const char *key)
{
    apr_table_setn(r->notes, NOTE_REASON, key);
    ap_note_auth_failure(r);
    return HTTP_UNAUTHORIZED;
}

static const reason *reason_of(request_rec *r)
{
    const char *key = apr_table_get(r->notes, NOTE_REASON);
    size_t i;

    for (i = 0; key && i < sizeof(REASONS) / sizeof(REASONS[0]); i++) {
        if (!strcmp(REASONS[i].key, key)) {
            return &REASONS[i];
        }
    }
    return &REASONS[sizeof(REASONS) / sizeof(REASONS[0]) - 1];   /* an authz denial */
}

/* s without control characters: a header value cannot carry them. */
static const char *without_controls(apr_pool_t *p, const char *s)
{
    char *out = apr_palloc(p, strlen(s) + 1), *o = out;

    for (; *s; s++) {
        if ((unsigned char)*s >= 0x20 && *s != 0x7f) {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

/* An ErrorDocument 401 of the administrator's wins over our page. */
static int has_error_document(request_rec *r)
{
    core_dir_config *conf = ap_get_core_module_config(r->per_dir_config);
    int idx = ap_index_of_response(HTTP_UNAUTHORIZED);

    return conf && conf->response_code_exprs
           && apr_hash_get(conf->response_code_exprs, &idx, sizeof(idx));
}

int azt_note_auth_failure(request_rec *r, const char *auth_type)
{
    const reason *why;
    const char *realm, *who;

    if (!auth_type || strcasecmp(auth_type, AUTH_TYPE_NAME)) {
        return DECLINED;
    }
    /* mod_authn_core keeps AuthName with its quotes escaped, as mod_auth_basic
     * sends it */
    realm = ap_auth_name(r) ? ap_auth_name(r)
                            : ap_escape_quotes(r->pool, r->server->server_hostname);
    apr_table_setn(r->err_headers_out, "WWW-Authenticate",
                   apr_psprintf(r->pool, CHALLENGE_SCHEME " realm=\"%s\"",
                                without_controls(r->pool, realm)));
    if (has_error_document(r)) {
        return OK;
    }
    why = reason_of(r);
    who = r->user ? r->user : r->useragent_ip ? r->useragent_ip : "this client";
    ap_custom_response(r, HTTP_UNAUTHORIZED, apr_pstrcat(r->pool,
        "<!DOCTYPE html>\n<html><head><title>401 Tailnet identity required</title></head>\n"
        "<body>\n<h1>Tailnet identity required</h1>\n<p>",
        why->why, "</p>\n<p>", why->todo, "</p>\n<p>Seen as: <code>",
        ap_escape_html(r->pool, who), "</code></p>\n</body></html>\n", NULL));
    return OK;
}

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
        return unauthorized(r, "not-a-peer");
    case AZT_UNAVAILABLE:
    case AZT_OUTCOME_UNSET:
        return azt_conf_unavailable(dc) == AZT_UNAVAILABLE_DENY
               ? unauthorized(r, "unavailable") : HTTP_SERVICE_UNAVAILABLE;
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
            return unauthorized(r, "tagged");
        }
    }
    else {
        r->user = apr_pstrdup(r->pool, id->login_name);
    }
    r->ap_auth_type = (char *)AUTH_TYPE_NAME;
    return OK;
}
