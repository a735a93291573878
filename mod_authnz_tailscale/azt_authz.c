/* mod_authnz_tailscale: the Require providers tailscale-user, -node,
 * -tailnet, -tag, -group, -cap, -peer-node and -peer-tag.  Arguments are parsed
 * once at configuration time and matched per request. */
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_request.h>
#include <mod_auth.h>
#include <apr_fnmatch.h>
#include <apr_atomic.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "tsl_identity.h"
#include "azt_config.h"
#include "azt_lookup.h"
#include "azt_stats.h"
#include "azt_authz.h"
#include "azt_rules.h"

APLOG_USE_MODULE(authnz_tailscale);

typedef enum {
    REQ_USER, REQ_NODE, REQ_TAILNET, REQ_TAG, REQ_CAP, REQ_PEER_NODE, REQ_PEER_TAG,
    REQ_GROUP
} azt_req_kind;

typedef struct {
    const char *field;
    const char *value;
} azt_cond;

/* A user/node/tailnet value, classified when the configuration is read so
 * that the common shapes need no glob matching per request. */
typedef enum {
    PAT_ANY,        /* "*" */
    PAT_EXACT,      /* no wildcard: "alice@example.com" */
    PAT_SUFFIX,     /* "*" + literal: "*@example.com" */
    PAT_PREFIX,     /* literal + "*": "build-*" */
    PAT_GLOB        /* anything else: apr_fnmatch */
} azt_pat_kind;

typedef struct {
    azt_pat_kind kind;
    const char *text;              /* the literal part (whole value for GLOB) */
    apr_size_t len;
} azt_pattern;

typedef struct {
    azt_req_kind kind;
    apr_array_header_t *values;    /* tailscale-tag, -group: of const char* */
    apr_array_header_t *patterns;  /* user/node/tailnet: of azt_pattern */
    const char *cap;               /* tailscale-cap: capability name */
    apr_array_header_t *conds;     /* tailscale-cap: of azt_cond, OR-ed */
    int negated;                   /* may be negated: an unknown answer is an error */
    const char *shown;             /* the values as parsed, quoted, for log lines */
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
    case REQ_GROUP: return "tailscale-group";
    }
    return "tailscale";
}

/* Characters apr_fnmatch() treats specially (without APR_FNM_NOESCAPE). */
static int has_glob_chars(const char *s, apr_size_t n)
{
    apr_size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] == '*' || s[i] == '?' || s[i] == '[' || s[i] == '\\') {
            return 1;
        }
    }
    return 0;
}

static void pattern_add(apr_array_header_t *patterns, const char *v)
{
    azt_pattern *pt = apr_array_push(patterns);
    apr_size_t n = strlen(v);

    pt->kind = PAT_GLOB;
    pt->text = v;
    pt->len = n;
    if (n == 1 && v[0] == '*') {
        pt->kind = PAT_ANY;
    }
    else if (!has_glob_chars(v, n)) {
        pt->kind = PAT_EXACT;
    }
    else if (v[0] == '*' && !has_glob_chars(v + 1, n - 1)) {
        pt->kind = PAT_SUFFIX;
        pt->text = v + 1;
        pt->len = n - 1;
    }
    else if (v[n - 1] == '*' && !has_glob_chars(v, n - 1)) {
        pt->kind = PAT_PREFIX;
        pt->len = n - 1;
    }
}

/* ASCII case-insensitive comparison of n bytes, as APR_FNM_CASE_BLIND does
 * in the C locale httpd runs in. */
static int ascii_ieq(const char *a, const char *b, apr_size_t n)
{
    apr_size_t i;

    for (i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
        if (x != y) {
            return 0;
        }
    }
    return 1;
}

/* Does s match, with the meaning apr_fnmatch(APR_FNM_CASE_BLIND) gives the
 * value as written? An empty or missing s never matches. */
static int pattern_match(const azt_pattern *pt, const char *s)
{
    apr_size_t n;

    if (!s || !*s) {
        return 0;
    }
    switch (pt->kind) {
    case PAT_ANY:
        return 1;
    case PAT_EXACT:
        n = strlen(s);
        return n == pt->len && ascii_ieq(s, pt->text, n);
    case PAT_SUFFIX:
        n = strlen(s);
        return n >= pt->len && ascii_ieq(s + n - pt->len, pt->text, pt->len);
    case PAT_PREFIX:
        n = strlen(s);
        return n >= pt->len && ascii_ieq(s, pt->text, pt->len);
    case PAT_GLOB:
        break;
    }
    return apr_fnmatch(pt->text, s, APR_FNM_CASE_BLIND) == APR_SUCCESS;
}

/* "ci" and "tag:ci" both mean the tag tag:ci. */
static const char *tag_value(apr_pool_t *p, const char *v)
{
    return strncmp(v, "tag:", 4) == 0 ? v : apr_pstrcat(p, "tag:", v, NULL);
}

/* What one value of a rule of this kind is, for messages. */
static const char *value_noun(azt_req_kind kind)
{
    return kind == REQ_USER ? "login" : kind == REQ_CAP ? "capability"
           : kind == REQ_TAILNET ? "tailnet" : kind == REQ_GROUP ? "group"
           : kind == REQ_TAG || kind == REQ_PEER_TAG ? "tag" : "node name";
}

/* Why a Require value is almost certainly not what its author meant, or NULL.
 * Apache has no trailing comments, so "Require tailscale-user alice # not *"
 * would otherwise add "#", "not" and "*" (everyone) as values; a comma or
 * semicolon is a list separator from other software (values are separated by
 * spaces); no login, node, tailnet, tag or capability holds a control
 * character, and node names and tags are DNS labels. */
static const char *value_problem(apr_pool_t *p, azt_req_kind kind, const char *w)
{
    const char *k = kind_name(kind);
    const unsigned char *u;
    apr_size_t n = strlen(w);

    if (w[0] == '#') {
        return apr_psprintf(p, "Require %s: '%s' looks like a comment, but Apache has no "
                            "trailing comments ('#' starts a comment only at the beginning "
                            "of a line), so it and every word after it would be values; "
                            "move the comment to a line of its own", k, w);
    }
    for (u = (const unsigned char *)w; *u; u++) {
        if (*u < 0x20 || *u == 0x7f) {
            return apr_psprintf(p, "Require %s: a value holds a control character "
                                "(byte 0x%02x); write it without", k, *u);
        }
    }
    if (ap_strchr_c(w, ' ') && kind != REQ_GROUP) {
        return apr_psprintf(p, "Require %s: '%s' holds a space, which no %s contains; "
                            "give each value as a word of its own (Require %s "
                            "alice@example.com bob@example.com), quoted or not", k, w,
                            value_noun(kind), k);
    }
    if (kind == REQ_USER && !ap_strchr_c(w, '@') && !strpbrk(w, "*?[")) {
        return apr_psprintf(p, "Require tailscale-user: '%s' would never match: a "
                            "tailnet login always has an '@' (alice@example.com; GitHub "
                            "accounts are alice@github); write the whole login, or "
                            "*@example.com for everyone of a domain", w);
    }
    if (w[n - 1] == ',' || w[n - 1] == ';') {
        return apr_psprintf(p, "Require %s: '%s' ends with '%c'; separate values with "
                            "spaces only (Require %s a@example.com b@example.com)",
                            k, w, w[n - 1], k);
    }
    if (ap_strchr_c(w, ',') || ap_strchr_c(w, ';')) {
        return apr_psprintf(p, "Require %s: '%s' holds a '%c', which no %s contains; "
                            "separate values with spaces only", k, w,
                            ap_strchr_c(w, ',') ? ',' : ';', value_noun(kind));
    }
    if (kind == REQ_NODE || kind == REQ_PEER_NODE || kind == REQ_TAG
        || kind == REQ_PEER_TAG) {
        const char *v = (kind == REQ_TAG || kind == REQ_PEER_TAG)
                        && !strncasecmp(w, "tag:", 4) ? w + 4 : w;
        for (u = (const unsigned char *)v; *u; u++) {
            if (!apr_isalnum(*u) && *u != '-' && *u != '.' && *u != '*' && *u != '?'
                && *u != '[' && *u != ']' && *u != '_') {
                return apr_psprintf(p, "Require %s: '%s' holds '%c', which no %s "
                                    "contains (letters, digits, '-' and '.'; '*' and '?' "
                                    "as wildcards)", k, w, *u,
                                    kind == REQ_NODE || kind == REQ_PEER_NODE
                                    ? "node name" : "tag");
            }
        }
    }
    return NULL;
}

static const char *parse(cmd_parms *cmd, const char *line, const void **parsed,
                         azt_req_kind kind)
{
    azt_require *req = apr_pcalloc(cmd->pool, sizeof(*req));
    const char *args = line;
    const char *w;

    req->kind = kind;
    req->values = apr_array_make(cmd->pool, 4, sizeof(const char *));
    req->patterns = apr_array_make(cmd->pool, 4, sizeof(azt_pattern));
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
        if (kind != REQ_CAP || !req->cap || w[0] == '#') {
            /* capability conditions (field=value) hold JSON values: any text,
             * but not a trailing comment ("#role=admin ..." is one) */
            const char *why = value_problem(cmd->pool, kind, w);
            if (why) {
                return why;
            }
        }
        req->shown = apr_pstrcat(cmd->pool, req->shown ? req->shown : "",
                                 req->shown ? " '" : "'", w, "'", NULL);
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
            if (!strncasecmp(w, "tag:", 4) && strncmp(w, "tag:", 4) != 0) {
                return apr_psprintf(cmd->pool, "Require %s: '%s' would never match: tags "
                                    "are spelt with a lower-case prefix, write 'tag:%s'",
                                    kind_name(kind), w, w + 4);
            }
            APR_ARRAY_PUSH(req->values, const char *) = tag_value(cmd->pool, w);
            break;
        case REQ_GROUP:
            /* Exact names, as tailscaled lists them: "group:eng" (policy)
             * or "eng@example.com" (SCIM). */
            APR_ARRAY_PUSH(req->values, const char *) = w;
            break;
        case REQ_NODE:
        case REQ_PEER_NODE: {
            /* A trailing dot is the DNS root; compare without it. */
            char *v = apr_pstrdup(cmd->pool, w);
            apr_size_t n = strlen(v);
            if (n > 1 && v[n - 1] == '.') {
                v[n - 1] = '\0';
            }
            pattern_add(req->patterns, v);
            break;
        }
        default:
            pattern_add(req->patterns, w);
        }
    }
    if (kind == REQ_CAP ? !req->cap
        : req->values->nelts == 0 && req->patterns->nelts == 0) {
        return apr_psprintf(cmd->pool, "Require %s needs at least one %s", kind_name(kind),
                            kind == REQ_USER ? "login (alice@example.com, *@example.com or *)"
                            : kind == REQ_NODE || kind == REQ_PEER_NODE
                              ? "node name (laptop or laptop.tail1234.ts.net)"
                            : kind == REQ_TAILNET ? "tailnet (tail1234.ts.net)"
                            : kind == REQ_CAP ? "capability name (example.com/cap/web)"
                            : kind == REQ_GROUP ? "group (group:eng or eng@example.com)"
                            : "tag (tag:ci)");
    }
    /* mod_authz_core turns a negated DENIED into NEUTRAL, so "denied for
     * want of an answer" would let the siblings grant. */
    req->negated = azt_rules_negated(cmd->temp_pool, cmd->directive);
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
        dc->uses_client |= req->kind != REQ_PEER_NODE && req->kind != REQ_PEER_TAG;
        dc->negates_tailscale |= req->negated;
    }
    *parsed = req;
    return NULL;
}

static int match_any(const apr_array_header_t *patterns, const char *s)
{
    int i;

    for (i = 0; i < patterns->nelts; i++) {
        if (pattern_match(&APR_ARRAY_IDX(patterns, i, azt_pattern), s)) {
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

static int match_groups(request_rec *r, const apr_array_header_t *groups,
                        const tsl_identity *id)
{
    azt_stats *st = azt_stats_get();   /* shared by all processes */
    int i;

    if (id->groups->nelts) {
        if (!apr_atomic_read32(&st->groups_seen)) {
            apr_atomic_set32(&st->groups_seen, 1);
        }
    }
    else if (!apr_atomic_read32(&st->groups_seen) && !apr_atomic_xchg32(&st->groups_warned, 1)) {
        /* tailscaled lists a user's groups only to a node that holds the
         * see-groups node attribute; without it this rule can never match. */
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r,
                      "TS01040: Require tailscale-group (vhost %s): tailscaled has "
                      "listed no groups for any user so far (%s has none), so group rules "
                      "deny everyone. Give this node the node attribute "
                      "tailscale.com/see-groups in the tailnet policy, e.g. \"nodeAttrs\": "
                      "[{\"target\": [\"tag:web\"], \"app\": {\"tailscale.com/see-groups\": "
                      "[{\"groups\": [\"group:eng\"]}]}}] (tailscale 1.98 or later)",
                      r->server->server_hostname, id->login_name);
    }
    for (i = 0; i < groups->nelts; i++) {
        if (tsl_identity_has_group(id, APR_ARRAY_IDX(groups, i, const char *))) {
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
    azt_outcome outcome = peer_rule ? lk->peer_outcome : lk->outcome;
    const tsl_identity *id = peer_rule ? lk->peer_id : lk->id;
    int ok = 0;

    if (azt_outcome_unavailable(outcome) || (outcome == AZT_IDENTIFIED && !id)) {
        /* Never success, and never a DENIED that a negation could turn
         * into consent: in "deny" mode a rule that is not negated denies
         * and others may decide; anything else is an error (500; the
         * access checker answers 503 first where it knows). */
        if (!req->negated
            && azt_conf_unavailable(azt_dir_conf_get(r)) == AZT_UNAVAILABLE_DENY) {
            return AUTHZ_DENIED;
        }
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "TS01022: Require %s%s: tailscaled could not say who %s is; "
                      "the rule cannot be evaluated (error)", req->negated ? "(negated) " : "",
                      kind_name(req->kind), peer_rule ? lk->peer_addr : lk->addr);
        return AUTHZ_GENERAL_ERROR;
    }
    if (outcome == AZT_NOT_A_PEER) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "TS01020: Require %s: %s is not a tailnet peer",
                      kind_name(req->kind), peer_rule ? lk->peer_addr : lk->addr);
        return AUTHZ_DENIED;
    }
    switch (req->kind) {
    case REQ_USER:
        /* Tagged nodes are machines, not users: only tag/node rules admit them. */
        ok = !id->is_tagged && match_any(req->patterns, id->login_name);
        break;
    case REQ_NODE:
    case REQ_PEER_NODE:
        ok = match_node(req->patterns, id);
        break;
    case REQ_TAILNET:
        ok = match_any(req->patterns, id->tailnet);
        break;
    case REQ_TAG:
    case REQ_PEER_TAG:
        ok = match_tags(req->values, id);
        break;
    case REQ_CAP:
        ok = match_cap(req, id);
        break;
    case REQ_GROUP:
        /* Tagged nodes have no user, so no groups. */
        ok = !id->is_tagged && match_groups(r, req->values, id);
        break;
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                  "TS01021: Require %s %s: %s (node %s, login %s%s) %s",
                  kind_name(req->kind), req->shown, peer_rule ? lk->peer_addr : lk->addr,
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
PROVIDER(group, REQ_GROUP)

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
        { "tailscale-group", &provider_group },
    };
    apr_size_t i;

    for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, all[i].name,
                                  AUTHZ_PROVIDER_VERSION, all[i].provider,
                                  AP_AUTH_INTERNAL_PER_CONF);
    }
}
