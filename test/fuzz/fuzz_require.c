/* Fuzz target: `Require tailscale-*` argument parsing and matching.
 *
 * The parser lives in mod_authnz_tailscale/azt_authz.c and is static, so
 * this file compiles that source (and azt_rules.c, the negation rule) in directly and supplies the few httpd
 * pieces it calls: the configuration tokenizer ap_getword_conf() (httpd's
 * is in the apache2 executable, which cannot be linked; this is a local
 * reimplementation of its documented behaviour: whitespace-separated words,
 * '...' or "..." quoting with backslash-escaped quotes), module config
 * vectors, logging (messages are formatted, to catch bad arguments), and a
 * lookup that returns identities parsed with the real tsl_identity_parse.
 *
 * Input: a Require line without "Require ", e.g.
 * "tailscale-cap example.com/cap/web role=admin".  When the first word names
 * one of our providers only that one parses the rest; otherwise the whole
 * line is given to every provider.
 *
 * Invariants: a line holding "%{" or an empty quoted argument is refused
 * (an empty word once ended the list silently, dropping the tailscale-cap
 * conditions after it, so any holder of the capability was let in); a
 * refusal has a message that
 * names the provider; an accepted rule marks the section (uses_tailscale);
 * matching never grants when tailscaled is unavailable or the peer is not
 * on the tailnet, never grants tailscale-user to a tagged node, and grants
 * "tailscale-user *" to every untagged identity, and never grants
 * tailscale-group to a tagged node or to a user outside the named groups.
 */
#include "../../mod_authnz_tailscale/azt_authz.c"
/* the negation rule the parser asks (azt_rules_negated) */
#include "../../mod_authnz_tailscale/azt_rules.c"
/* the one mapper from a whois code to a lookup's outcome */
#include "../../mod_authnz_tailscale/azt_outcome.c"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "fuzz_common.h"

/* ------------------------------------------------------- httpd stand-ins */

module AP_MODULE_DECLARE_DATA authnz_tailscale_module = {
    STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, NULL
};

AP_DECLARE_DATA ap_directive_t *ap_conftree;

static char log_buf[8192];

void ap_log_rerror_(const char *file, int line, int module_index, int level,
                    apr_status_t status, const request_rec *r, const char *fmt, ...)
{
    va_list ap;

    (void)file; (void)line; (void)module_index; (void)level; (void)status; (void)r;
    va_start(ap, fmt);
    vsnprintf(log_buf, sizeof(log_buf), fmt, ap);
    va_end(ap);
}

apr_status_t ap_register_auth_provider(apr_pool_t *pool, const char *provider_group,
                                       const char *provider_name,
                                       const char *provider_version, const void *provider,
                                       int type)
{
    (void)pool; (void)provider_group; (void)provider_name; (void)provider_version;
    (void)provider; (void)type;
    return APR_SUCCESS;
}

/* httpd's tokenizer, reimplemented from its documentation. */
char *ap_getword_conf(apr_pool_t *p, const char **line)
{
    const char *s = *line, *start;
    char *word, *o;
    char quote;

    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v') {
        s++;
    }
    if (*s == '\0') {
        *line = s;
        return apr_pstrdup(p, "");
    }
    if (*s == '"' || *s == '\'') {
        quote = *s++;
        start = s;
        while (*s && *s != quote) {
            if (*s == '\\' && s[1] == quote) {
                s++;
            }
            s++;
        }
        word = o = apr_palloc(p, (apr_size_t)(s - start) + 1);
        while (start < s) {
            if (*start == '\\' && start + 1 < s && start[1] == quote) {
                start++;
            }
            *o++ = *start++;
        }
        *o = '\0';
        if (*s) {
            s++;   /* the closing quote */
        }
    }
    else {
        start = s;
        while (*s && !(*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f'
                       || *s == '\v')) {
            s++;
        }
        word = apr_pstrmemdup(p, start, (apr_size_t)(s - start));
    }
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v') {
        s++;
    }
    *line = s;
    return word;
}

void *azt_create_dir_conf(apr_pool_t *p, char *dir)
{
    azt_dir_conf *dc = apr_pcalloc(p, sizeof(*dc));

    (void)dir;
    dc->tagged_user = AZT_TAGGED_USER_UNSET;
    dc->unavailable = AZT_UNAVAILABLE_UNSET;
    return dc;
}

static azt_dir_conf request_dir_conf;
static server_rec fuzz_server = { .server_hostname = "fuzz.example" };
static azt_lookup current_lookup;

azt_dir_conf *azt_dir_conf_get(request_rec *r)
{
    (void)r;
    return &request_dir_conf;
}

azt_unavailable azt_conf_unavailable(const azt_dir_conf *dc)
{
    return dc->unavailable == AZT_UNAVAILABLE_UNSET ? AZT_UNAVAILABLE_ERROR : dc->unavailable;
}

azt_stats *azt_stats_get(void)
{
    static azt_stats st;
    return &st;
}

const azt_lookup *azt_lookup_request(request_rec *r)
{
    (void)r;
    return &current_lookup;
}

/* ------------------------------------------------------------ identities */

static const char *const identities[] = {
    /* alice on her laptop, with an app capability */
    "{\"Node\":{\"ID\":1,\"Name\":\"laptop.tail1234.ts.net.\",\"ComputedName\":\"laptop\","
    "\"Addresses\":[\"100.101.102.103/32\"]},"
    "\"UserProfile\":{\"ID\":11,\"LoginName\":\"alice@example.com\",\"DisplayName\":\"Alice\","
    "\"Groups\":[\"eng@example.com\",\"group:eng\"]},"
    "\"CapMap\":{\"example.com/cap/web\":[{\"role\":\"admin\",\"paths\":[\"/a\",\"/b\"],"
    "\"n\":1,\"ok\":true}]}}",
    /* a tagged CI machine */
    "{\"Node\":{\"ID\":2,\"Name\":\"ci-runner.tail1234.ts.net.\",\"Tags\":[\"tag:ci\","
    "\"tag:build\"]},\"UserProfile\":{\"ID\":12,\"LoginName\":\"tagged-devices\"},"
    "\"CapMap\":{\"example.com/cap/web\":[{\"role\":\"deploy\"}],\"example.com/cap/empty\":null}}",
    /* a shared-in node from another tailnet, no caps */
    "{\"Node\":{\"ID\":3,\"Name\":\"friend-laptop.tail9999.ts.net.\",\"ComputedName\":"
    "\"friend-laptop.tail9999.ts.net\",\"Sharer\":11},"
    "\"UserProfile\":{\"ID\":13,\"LoginName\":\"friend@gmail.com\"},\"CapMap\":null}",
};
#define N_IDENTITIES (sizeof(identities) / sizeof(identities[0]))

static const struct {
    const char *name;
    azt_req_kind kind;
    const char *(*parse)(cmd_parms *, const char *, const void **);
    authz_status (*check)(request_rec *, const char *, const void *);
} providers[] = {
    { "tailscale-user", REQ_USER, parse_user, check_user },
    { "tailscale-node", REQ_NODE, parse_node, check_node },
    { "tailscale-tailnet", REQ_TAILNET, parse_tailnet, check_tailnet },
    { "tailscale-tag", REQ_TAG, parse_tag, check_tag },
    { "tailscale-cap", REQ_CAP, parse_cap, check_cap },
    { "tailscale-peer-node", REQ_PEER_NODE, parse_peer_node, check_peer_node },
    { "tailscale-peer-tag", REQ_PEER_TAG, parse_peer_tag, check_peer_tag },
    { "tailscale-group", REQ_GROUP, parse_group, check_group },
};
#define N_PROVIDERS (sizeof(providers) / sizeof(providers[0]))

static void set_lookup(tsl_code code, tsl_identity *id)
{
    memset(&current_lookup, 0, sizeof(current_lookup));
    current_lookup.outcome = azt_outcome_of(code);
    current_lookup.id = code == TSL_OK ? id : NULL;
    current_lookup.addr = "100.101.102.103:1234";
    current_lookup.error = code == TSL_OK ? NULL : "fuzz";
    current_lookup.peer_outcome = current_lookup.outcome;
    current_lookup.peer_id = current_lookup.id;
    current_lookup.peer_addr = current_lookup.addr;
}

/* True if args holds an empty word ('' or "") before its end. */
static int has_empty_word(apr_pool_t *p, const char *args)
{
    for (;;) {
        while (*args == ' ' || *args == '\t' || *args == '\n' || *args == '\r' || *args == '\f'
               || *args == '\v') {
            args++;
        }
        if (!*args) {
            return 0;
        }
        if (!*ap_getword_conf(p, &args)) {
            return 1;
        }
    }
}

static void run_provider(apr_pool_t *p, size_t which, const char *args,
                         tsl_identity **ids, int line_has_expr)
{
    cmd_parms cmd;
    ap_conf_vector_t *context = apr_pcalloc(p, sizeof(void *) * 4);
    const void *parsed = NULL;
    const char *err;
    request_rec r;
    size_t i;
    int unavailable;

    memset(&cmd, 0, sizeof(cmd));
    cmd.pool = p;
    cmd.temp_pool = p;
    cmd.context = context;
    cmd.path = "/fuzz";
    err = providers[which].parse(&cmd, args, &parsed);
    if (err) {
        FZ_CHECK(strstr(err, providers[which].name) || strstr(err, "field=value"),
                 "refusal does not name %s: %s", providers[which].name, err);
        return;
    }
    FZ_CHECK(!line_has_expr, "%s accepted an expression: %s", providers[which].name, args);
    FZ_CHECK(!has_empty_word(p, args), "%s accepted an empty argument: %s",
             providers[which].name, args);
    FZ_CHECK(parsed != NULL, "accepted without a parsed rule");
    FZ_CHECK(ap_get_module_config(context, &authnz_tailscale_module) != NULL
             && ((azt_dir_conf *)ap_get_module_config(context, &authnz_tailscale_module))
                ->uses_tailscale, "section not marked as using tailscale");

    memset(&r, 0, sizeof(r));
    r.pool = p;
    r.server = &fuzz_server;
    r.log = &(struct ap_logconf){ NULL, APLOG_DEBUG };

    /* every whois code but TSL_OK (tailscaled unavailable in both modes, or
     * the peer unknown), through the real mapper: never granted */
    for (unavailable = 0; unavailable < 2 * TSL_ERR_CERT; unavailable++) {
        tsl_code code = (tsl_code)(1 + unavailable / 2);
        authz_status st;
        request_dir_conf.unavailable = unavailable % 2 ? AZT_UNAVAILABLE_DENY
                                                       : AZT_UNAVAILABLE_ERROR;
        set_lookup(code, NULL);
        st = providers[which].check(&r, args, parsed);
        FZ_CHECK(st != AUTHZ_GRANTED, "%s %s granted with code %d", providers[which].name,
                 args, (int)code);
    }
    request_dir_conf.unavailable = AZT_UNAVAILABLE_UNSET;

    for (i = 0; i < N_IDENTITIES; i++) {
        authz_status st;
        set_lookup(TSL_OK, ids[i]);
        st = providers[which].check(&r, args, parsed);
        FZ_CHECK(st == AUTHZ_GRANTED || st == AUTHZ_DENIED, "odd status %d", (int)st);
        if (providers[which].kind == REQ_USER && ids[i]->is_tagged) {
            FZ_CHECK(st == AUTHZ_DENIED, "tailscale-user %s granted to tagged %s", args,
                     ids[i]->node_name);
        }
        if (providers[which].kind == REQ_GROUP && st == AUTHZ_GRANTED) {
            const azt_require *req = parsed;
            int k, member = 0;
            for (k = 0; k < req->values->nelts; k++) {
                member |= tsl_identity_has_group(ids[i], APR_ARRAY_IDX(req->values, k,
                                                                       const char *));
            }
            FZ_CHECK(!ids[i]->is_tagged && member, "tailscale-group %s granted to %s",
                     args, ids[i]->node_name);
        }
        if (providers[which].kind == REQ_USER && !ids[i]->is_tagged
            && strcmp(args, "*") == 0) {
            FZ_CHECK(st == AUTHZ_GRANTED, "tailscale-user * denied %s", ids[i]->login_name);
        }
    }
}

/* The patterns classified at configuration time must match exactly what
 * apr_fnmatch(APR_FNM_CASE_BLIND) says of the value as written: the line's
 * words are patterns, each tried against every word and the identities'
 * names. */
static void check_patterns(apr_pool_t *p, const char *line, tsl_identity **ids)
{
    apr_array_header_t *words = apr_array_make(p, 8, sizeof(const char *));
    apr_array_header_t *pats = apr_array_make(p, 8, sizeof(azt_pattern));
    const char *rest = line;
    int i, j;
    size_t k;

    while (*rest && words->nelts < 16) {
        const char *w = ap_getword_conf(p, &rest);
        if (!*w) {
            break;
        }
        APR_ARRAY_PUSH(words, const char *) = w;
        pattern_add(pats, w);
    }
    for (k = 0; k < N_IDENTITIES; k++) {
        APR_ARRAY_PUSH(words, const char *) = ids[k]->login_name;
        APR_ARRAY_PUSH(words, const char *) = ids[k]->node_name;
    }
    APR_ARRAY_PUSH(words, const char *) = "";
    for (i = 0; i < pats->nelts; i++) {
        const azt_pattern *pt = &APR_ARRAY_IDX(pats, i, azt_pattern);
        const char *pattern = APR_ARRAY_IDX(words, i, const char *);
        for (j = 0; j < words->nelts; j++) {
            const char *s = APR_ARRAY_IDX(words, j, const char *);
            int want = *s && apr_fnmatch(pattern, s, APR_FNM_CASE_BLIND) == APR_SUCCESS;
            FZ_CHECK(pattern_match(pt, s) == want, "pattern '%s' (kind %d) on '%s': %d, "
                     "apr_fnmatch says %d", pattern, (int)pt->kind, s, !want, want);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_begin();
    char *line = fz_cstr(data, size);
    tsl_identity *ids[N_IDENTITIES];
    const char *rest = line, *first;
    tsl_result res;
    size_t i;
    int matched = 0, has_expr;

    authnz_tailscale_module.module_index = 0;   /* httpd numbers loaded modules */
    for (i = 0; i < N_IDENTITIES; i++) {
        if (tsl_identity_parse(p, identities[i], strlen(identities[i]), &ids[i], &res)
            != TSL_OK) {
            fz_fail(__FILE__, __LINE__, "identity", "built-in identity %zu: %s", i, res.text);
        }
    }
    has_expr = strstr(line, "%{") != NULL;
    first = ap_getword_conf(p, &rest);
    for (i = 0; i < N_PROVIDERS; i++) {
        if (strcmp(first, providers[i].name) == 0) {
            /* httpd hands the provider the rest of the line */
            run_provider(p, i, rest, ids, strstr(rest, "%{") != NULL);
            matched = 1;
        }
    }
    if (!matched) {
        for (i = 0; i < N_PROVIDERS; i++) {
            run_provider(p, i, line, ids, has_expr);
        }
    }
    check_patterns(p, line, ids);
    azt_authz_register(p);
    free(line);
    fz_end(p);
    return 0;
}
