/* mod_authnz_tailscale: the Require providers tailscale-user, -node,
 * -tailnet, -tag, -cap, -peer-node and -peer-tag.  Arguments are parsed
 * once at configuration time and matched per request. */
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_request.h>
#include <mod_auth.h>
#include <apr_fnmatch.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "tsl_identity.h"
#include "azt_config.h"
#include "azt_lookup.h"
#include "azt_authz.h"

APLOG_USE_MODULE(authnz_tailscale);

typedef enum {
    REQ_USER, REQ_NODE, REQ_TAILNET, REQ_TAG, REQ_CAP, REQ_PEER_NODE, REQ_PEER_TAG
} azt_req_kind;

typedef struct {
    const char *field;
    const char *value;
} azt_cond;

typedef struct {
    azt_req_kind kind;
    apr_array_header_t *values;    /* of const char* (user/node/tailnet/tag) */
    const char *cap;               /* tailscale-cap: capability name */
    apr_array_header_t *conds;     /* tailscale-cap: of azt_cond, OR-ed */
} azt_require;

static const char *kind_name(azt_req_kind k)
{
    switch (k) {
    case REQ_USER: return "tailscale-user";
    case REQ_NODE: return "tailscale-node";
    case REQ_TAILNET: return "tailscale-tailnet";
    case REQ_TAG: return "tailscale-tag";
    case REQ_CAP: return "tailscale-cap";
    case REQ_PEER_NODE: return "tailscale-peer-node";
    case REQ_PEER_TAG: return "tailscale-peer-tag";
    }
    return "tailscale";
}

static int glob_match(const char *pattern, const char *s)
{
    if (!s || !*s) {
        return 0;
    }
    return apr_fnmatch(pattern, s, APR_FNM_CASE_BLIND) == APR_SUCCESS;
}

/* "ci" and "tag:ci" both mean the tag tag:ci. */
static const char *tag_value(apr_pool_t *p, const char *v)
{
    return strncmp(v, "tag:", 4) == 0 ? v : apr_pstrcat(p, "tag:", v, NULL);
}

static const char *parse(cmd_parms *cmd, const char *line, const void **parsed,
                         azt_req_kind kind)
{
    azt_require *req = apr_pcalloc(cmd->pool, sizeof(*req));
    const char *args = line;
    const char *w;

    req->kind = kind;
    req->values = apr_array_make(cmd->pool, 4, sizeof(const char *));
    if (kind == REQ_CAP) {
        req->conds = apr_array_make(cmd->pool, 2, sizeof(azt_cond));
    }
    for (;;) {
        while (apr_isspace(*args)) {
            args++;
        }
        if (!*args) {
            break;
        }
        /* An empty quoted word ("") must not end the list silently: the
         * words after it (a tailscale-cap condition) would be dropped. */
        w = ap_getword_conf(cmd->pool, &args);
        if (!*w) {
            return apr_psprintf(cmd->pool,
                                "Require %s: empty argument (\"\"); remove it or write "
                                "the value", kind_name(kind));
        }
        if (ap_strstr_c(w, "%{")) {
            return apr_psprintf(cmd->pool,
                                "Require %s: expressions are not supported in '%s'; "
                                "write literal values", kind_name(kind), w);
        }
        switch (kind) {
        case REQ_CAP:
            if (!req->cap) {
                if (ap_strchr_c(w, '=')) {
                    return apr_psprintf(cmd->pool,
                                        "Require tailscale-cap: the first argument must be "
                                        "a capability name (e.g. example.com/cap/web), "
                                        "not '%s'", w);
                }
                req->cap = w;
            }
            else {
                const char *eq = ap_strchr_c(w, '=');
                azt_cond *cond;

                if (!eq || eq == w) {
                    return apr_psprintf(cmd->pool,
                                        "Require tailscale-cap %s: '%s' is not a field=value "
                                        "condition (e.g. role=admin)", req->cap, w);
                }
                cond = apr_array_push(req->conds);
                cond->field = apr_pstrmemdup(cmd->pool, w, (apr_size_t)(eq - w));
                cond->value = eq + 1;
            }
            break;
        case REQ_TAG:
        case REQ_PEER_TAG:
            if (!strcmp(w, "tag:") || !*w) {
                return apr_psprintf(cmd->pool, "Require %s: empty tag", kind_name(kind));
            }
            APR_ARRAY_PUSH(req->values, const char *) = tag_value(cmd->pool, w);
            break;
        case REQ_NODE:
        case REQ_PEER_NODE: {
            /* A trailing dot is the DNS root; compare without it. */
            char *v = apr_pstrdup(cmd->pool, w);
            apr_size_t n = strlen(v);
            if (n > 1 && v[n - 1] == '.') {
                v[n - 1] = '\0';
            }
            APR_ARRAY_PUSH(req->values, const char *) = v;
            break;
        }
        default:
            APR_ARRAY_PUSH(req->values, const char *) = w;
        }
    }
    if (kind == REQ_CAP ? !req->cap : req->values->nelts == 0) {
        return apr_psprintf(cmd->pool, "Require %s needs at least one %s", kind_name(kind),
                            kind == REQ_USER ? "login (alice@example.com, *@example.com or *)"
                            : kind == REQ_NODE || kind == REQ_PEER_NODE
                              ? "node name (laptop or laptop.tail1234.ts.net)"
                            : kind == REQ_TAILNET ? "tailnet (tail1234.ts.net)"
                            : kind == REQ_CAP ? "capability name (example.com/cap/web)"
                            : "tag (tag:ci)");
    }
    if (cmd->context) {
        /* Tell the access checker this section needs an identity.  The
         * section has no config of ours yet unless one of our directives
         * appeared in it, so make it as httpd would. */
        azt_dir_conf *dc = ap_get_module_config(cmd->context, &authnz_tailscale_module);
        if (!dc) {
            dc = azt_create_dir_conf(cmd->pool, (char *)cmd->path);
            ap_set_module_config(cmd->context, &authnz_tailscale_module, dc);
        }
        dc->uses_tailscale = 1;
    }
    *parsed = req;
    return NULL;
}

static int match_any(const apr_array_header_t *patterns, const char *s)
{
    int i;

    for (i = 0; i < patterns->nelts; i++) {
        if (glob_match(APR_ARRAY_IDX(patterns, i, const char *), s)) {
            return 1;
        }
    }
    return 0;
}

static int match_node(const apr_array_header_t *patterns, const tsl_identity *id)
{
    return match_any(patterns, id->node_name) || match_any(patterns, id->node_short);
}

static int match_tags(const apr_array_header_t *tags, const tsl_identity *id)
{
    int i;

    for (i = 0; i < tags->nelts; i++) {
        if (tsl_identity_has_tag(id, APR_ARRAY_IDX(tags, i, const char *))) {
            return 1;
        }
    }
    return 0;
}

static int match_cap(const azt_require *req, const tsl_identity *id)
{
    int i;

    if (req->conds->nelts == 0) {
        return tsl_identity_has_cap(id, req->cap, NULL, NULL);
    }
    for (i = 0; i < req->conds->nelts; i++) {
        const azt_cond *cond = &APR_ARRAY_IDX(req->conds, i, azt_cond);
        if (tsl_identity_has_cap(id, req->cap, cond->field, cond->value)) {
            return 1;
        }
    }
    return 0;
}

static authz_status check(request_rec *r, const void *parsed)
{
    const azt_require *req = parsed;
    const azt_lookup *lk = azt_lookup_request(r);
    int peer_rule = req->kind == REQ_PEER_NODE || req->kind == REQ_PEER_TAG;
    tsl_code code = peer_rule ? lk->peer_code : lk->code;
    const tsl_identity *id = peer_rule ? lk->peer_id : lk->id;
    int ok = 0;

    if (azt_lookup_unavailable(code)) {
        /* Never success: 503 was chosen by the access checker in "error"
         * mode; in "deny" mode the rule denies and others may decide. */
        if (azt_conf_unavailable(azt_dir_conf_get(r)) == AZT_UNAVAILABLE_DENY) {
            return AUTHZ_DENIED;
        }
        return AUTHZ_GENERAL_ERROR;
    }
    if (code != TSL_OK || !id) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "TS01020: Require %s: %s is not a tailnet peer",
                      kind_name(req->kind), peer_rule ? lk->peer_addr : lk->addr);
        return AUTHZ_DENIED;
    }
    switch (req->kind) {
    case REQ_USER:
        /* Tagged nodes are machines, not users: only tag/node rules admit them. */
        ok = !id->is_tagged && match_any(req->values, id->login_name);
        break;
    case REQ_NODE:
    case REQ_PEER_NODE:
        ok = match_node(req->values, id);
        break;
    case REQ_TAILNET:
        ok = match_any(req->values, id->tailnet);
        break;
    case REQ_TAG:
    case REQ_PEER_TAG:
        ok = match_tags(req->values, id);
        break;
    case REQ_CAP:
        ok = match_cap(req, id);
        break;
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  "TS01021: Require %s: %s (node %s, login %s%s) %s",
                  kind_name(req->kind), peer_rule ? lk->peer_addr : lk->addr,
                  id->node_name, id->login_name, id->is_tagged ? ", tagged" : "",
                  ok ? "granted" : "denied");
    return ok ? AUTHZ_GRANTED : AUTHZ_DENIED;
}

#define PROVIDER(fn, kind)                                                        \
    static const char *parse_##fn(cmd_parms *cmd, const char *line,               \
                                  const void **parsed)                            \
    {                                                                             \
        return parse(cmd, line, parsed, kind);                                    \
    }                                                                             \
    static authz_status check_##fn(request_rec *r, const char *line,              \
                                   const void *parsed)                            \
    {                                                                             \
        return check(r, parsed);                                                  \
    }                                                                             \
    static const authz_provider provider_##fn = { check_##fn, parse_##fn };

PROVIDER(user, REQ_USER)
PROVIDER(node, REQ_NODE)
PROVIDER(tailnet, REQ_TAILNET)
PROVIDER(tag, REQ_TAG)
PROVIDER(cap, REQ_CAP)
PROVIDER(peer_node, REQ_PEER_NODE)
PROVIDER(peer_tag, REQ_PEER_TAG)

void azt_authz_register(apr_pool_t *p)
{
    static const struct {
        const char *name;
        const authz_provider *provider;
    } all[] = {
        { "tailscale-user", &provider_user },
        { "tailscale-node", &provider_node },
        { "tailscale-tailnet", &provider_tailnet },
        { "tailscale-tag", &provider_tag },
        { "tailscale-cap", &provider_cap },
        { "tailscale-peer-node", &provider_peer_node },
        { "tailscale-peer-tag", &provider_peer_tag },
    };
    apr_size_t i;

    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, all[i].name,
                                  AUTHZ_PROVIDER_VERSION, all[i].provider,
                                  AP_AUTH_INTERNAL_PER_CONF);
    }
}
