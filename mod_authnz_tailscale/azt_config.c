/* mod_authnz_tailscale: directives, their parsing and merging. */
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <apr_strings.h>
#include <apr_lib.h>

#include "tsl_client.h"
#include "tsl_result.h"
#include "azt_config.h"
#include "azt_rules.h"
#include "azt_shared.h"
#include "azt_keys.h"

#define AZT_DEFAULT_TTL          apr_time_from_sec(10)
#define AZT_DEFAULT_NEGATIVE_TTL apr_time_from_sec(5)
#define AZT_DEFAULT_TIMEOUT      apr_time_from_sec(2)
#define AZT_DEFAULT_CACHE_SIZE   1000
#define AZT_MAX_CACHE_SIZE       1000000
#define AZT_DEFAULT_ASSERTION_LIFETIME 60
#define AZT_MAX_ASSERTION_LIFETIME     3600
#define AZT_DEFAULT_KEY_DIR      "authnz_tailscale"

/* Set by AuthTailscaleAssertion on while the configuration is read. */
static int assertion_used;

void *azt_create_server_conf(apr_pool_t *p, server_rec *s)
{
    azt_server_conf *sc = apr_pcalloc(p, sizeof(*sc));
    sc->ttl = AZT_UNSET;
    sc->negative_ttl = AZT_UNSET;
    sc->timeout = AZT_UNSET;
    sc->cache_size = AZT_UNSET;
    sc->strip_headers = AZT_UNSET;
    sc->behind_serve = AZT_UNSET;
    return sc;
}

void *azt_merge_server_conf(apr_pool_t *p, void *basev, void *addv)
{
    azt_server_conf *base = basev, *add = addv;
    azt_server_conf *sc = apr_pcalloc(p, sizeof(*sc));
    sc->socket_path = add->socket_path ? add->socket_path : base->socket_path;
    sc->socket_spec = add->socket_path ? add->socket_spec : base->socket_spec;
    sc->ttl = add->ttl != AZT_UNSET ? add->ttl : base->ttl;
    sc->negative_ttl = add->negative_ttl != AZT_UNSET ? add->negative_ttl : base->negative_ttl;
    sc->timeout = add->timeout != AZT_UNSET ? add->timeout : base->timeout;
    sc->cache_size = add->cache_size != AZT_UNSET ? add->cache_size : base->cache_size;
    sc->proxies = add->proxies ? add->proxies : base->proxies;
    sc->strip_headers = add->strip_headers != AZT_UNSET ? add->strip_headers
                                                         : base->strip_headers;
    sc->behind_serve = add->behind_serve != AZT_UNSET ? add->behind_serve
                                                       : base->behind_serve;
    sc->assertion_keys = add->assertion_keys ? add->assertion_keys : base->assertion_keys;
    sc->assertion_issuer = add->assertion_issuer ? add->assertion_issuer
                                                 : base->assertion_issuer;
    sc->assertion_key_dir = base->assertion_key_dir;
    return sc;
}

void *azt_create_dir_conf(apr_pool_t *p, char *dir)
{
    azt_dir_conf *dc = apr_pcalloc(p, sizeof(*dc));
    dc->headers = AZT_UNSET;
    dc->tagged_user = AZT_TAGGED_USER_UNSET;
    dc->unavailable = AZT_UNAVAILABLE_UNSET;
    dc->assertion = AZT_UNSET;
    dc->assertion_lifetime = AZT_UNSET;
    return dc;
}

void *azt_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    azt_dir_conf *base = basev, *add = addv;
    azt_dir_conf *dc = apr_pcalloc(p, sizeof(*dc));
    dc->headers = add->headers != AZT_UNSET ? add->headers : base->headers;
    dc->accept_caps = add->accept_caps ? add->accept_caps : base->accept_caps;
    dc->tagged_user = add->tagged_user != AZT_TAGGED_USER_UNSET ? add->tagged_user
                                                                : base->tagged_user;
    dc->unavailable = add->unavailable != AZT_UNAVAILABLE_UNSET ? add->unavailable
                                                                : base->unavailable;
    dc->assertion = add->assertion != AZT_UNSET ? add->assertion : base->assertion;
    dc->assertion_audience = add->assertion_audience ? add->assertion_audience
                                                     : base->assertion_audience;
    dc->assertion_lifetime = add->assertion_lifetime != AZT_UNSET ? add->assertion_lifetime
                                                                  : base->assertion_lifetime;
    /* Decided per section from its effective rules: its own when they
     * replace the parent's (AuthMerging Off, the default), else both. */
    dc->own_rules = add->own_rules ? add->own_rules : base->own_rules;
    if (add->own_rules == AZT_RULES_OWN) {
        dc->uses_tailscale = add->uses_tailscale;
        dc->uses_client = add->uses_client;
        dc->negates_tailscale = add->negates_tailscale;
    }
    else {
        dc->uses_tailscale = add->uses_tailscale || base->uses_tailscale;
        dc->uses_client = add->uses_client || base->uses_client;
        dc->negates_tailscale = add->negates_tailscale || base->negates_tailscale;
    }
    return dc;
}

const char *azt_conf_socket_hint(apr_pool_t *p, const char *path, tsl_code code)
{
    static const tsl_hint_settings settings = { "AuthTailscaleURL", "AuthTailscaleTimeout" };
    const char *hint = tsl_socket_hint(p, code, path, &settings);
    const char *md = azt_rules_md_socket();

    if ((code == TSL_ERR_SOCKET_MISSING || code == TSL_ERR_CONNECT) && md
        && !tsl_socket_same(md, path)) {
        hint = apr_psprintf(p, "%s. MDCertificateAuthority names %s: if tailscaled "
                            "listens there, set AuthTailscaleURL %s as well", hint, md, md);
    }
    return hint;
}

const char *azt_conf_socket(const azt_server_conf *sc)
{
    return sc->socket_path ? sc->socket_path : tsl_socket_default();
}

apr_interval_time_t azt_conf_ttl(const azt_server_conf *sc)
{
    return sc->ttl != AZT_UNSET ? sc->ttl : AZT_DEFAULT_TTL;
}

apr_interval_time_t azt_conf_negative_ttl(const azt_server_conf *sc)
{
    return sc->negative_ttl != AZT_UNSET ? sc->negative_ttl : AZT_DEFAULT_NEGATIVE_TTL;
}

apr_interval_time_t azt_conf_timeout(const azt_server_conf *sc)
{
    return sc->timeout != AZT_UNSET ? sc->timeout : AZT_DEFAULT_TIMEOUT;
}

int azt_conf_cache_size(const azt_server_conf *sc)
{
    return sc->cache_size != AZT_UNSET ? sc->cache_size : AZT_DEFAULT_CACHE_SIZE;
}

int azt_conf_headers(const azt_dir_conf *dc)
{
    return dc->headers == 1;
}

azt_tagged_user azt_conf_tagged_user(const azt_dir_conf *dc)
{
    return dc->tagged_user != AZT_TAGGED_USER_UNSET ? dc->tagged_user : AZT_TAGGED_USER_OFF;
}

azt_unavailable azt_conf_unavailable(const azt_dir_conf *dc)
{
    return dc->unavailable != AZT_UNAVAILABLE_UNSET ? dc->unavailable : AZT_UNAVAILABLE_ERROR;
}

int azt_conf_assertion(const azt_dir_conf *dc)
{
    return dc->assertion == 1;
}

int azt_conf_assertion_lifetime(const azt_dir_conf *dc)
{
    return dc->assertion_lifetime != AZT_UNSET ? dc->assertion_lifetime
                                               : AZT_DEFAULT_ASSERTION_LIFETIME;
}

const char *azt_conf_assertion_issuer(request_rec *r)
{
    const char *iss = azt_server_conf_get(r->server)->assertion_issuer;
    return iss ? iss : apr_pstrcat(r->pool, "https://", r->server->server_hostname, NULL);
}

const char *azt_conf_assertion_audience(request_rec *r, const azt_dir_conf *dc)
{
    /* scheme://host[:port] as the client asked for it */
    return dc->assertion_audience ? dc->assertion_audience : ap_construct_url(r->pool, "", r);
}

const char *azt_conf_assertion_key_dir(apr_pool_t *p, server_rec *main_server)
{
    const char *dir = azt_server_conf_get(main_server)->assertion_key_dir;
    return ap_server_root_relative(p, dir ? dir : AZT_DEFAULT_KEY_DIR);
}

int azt_conf_assertion_used(void)
{
    return assertion_used;
}

void azt_conf_pre_config(void)
{
    assertion_used = 0;
}

azt_server_conf *azt_server_conf_get(server_rec *s)
{
    return ap_get_module_config(s->module_config, &authnz_tailscale_module);
}

azt_dir_conf *azt_dir_conf_get(request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &authnz_tailscale_module);
}

/* ---- directive handlers ---------------------------------------------- */

static const char *set_socket(cmd_parms *cmd, void *dummy, const char *arg)
{
    azt_server_conf *sc = azt_server_conf_get(cmd->server);
    tsl_result res;
    const char *path;

    tsl_result_init(&res);
    if (tsl_socket_parse(cmd->pool, arg, &path, &res) != TSL_OK) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, res.text);
    }
    sc->socket_path = path;
    sc->socket_spec = arg;
    return NULL;
}

static const char *parse_duration(cmd_parms *cmd, const char *arg,
                                  apr_interval_time_t min, apr_interval_time_t *out)
{
    apr_interval_time_t t;

    /* ap_timeout_parameter_parse() takes "soon" for 0 seconds: insist on a number. */
    if (!apr_isdigit(*arg) || ap_timeout_parameter_parse(arg, &t, "s") != APR_SUCCESS
        || t < min) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not a valid duration; give seconds "
                            "(e.g. 10) or a value with a unit (500ms, 2s, 5m)%s",
                            cmd->cmd->name, arg,
                            min > 0 ? ", greater than zero" : "");
    }
    *out = t;
    return NULL;
}

static const char *set_ttl(cmd_parms *cmd, void *dummy, const char *arg)
{
    return parse_duration(cmd, arg, 0, &azt_server_conf_get(cmd->server)->ttl);
}

static const char *set_negative_ttl(cmd_parms *cmd, void *dummy, const char *arg)
{
    return parse_duration(cmd, arg, 0, &azt_server_conf_get(cmd->server)->negative_ttl);
}

static const char *set_timeout(cmd_parms *cmd, void *dummy, const char *arg)
{
    return parse_duration(cmd, arg, 1, &azt_server_conf_get(cmd->server)->timeout);
}

static const char *set_cache_size(cmd_parms *cmd, void *dummy, const char *arg)
{
    char *end;
    apr_int64_t n = apr_strtoi64(arg, &end, 10);

    if (*arg == '\0' || *end != '\0' || n < 0 || n > AZT_MAX_CACHE_SIZE) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not a number of entries between 0 "
                            "(no cache) and %d",
                            cmd->cmd->name, arg, AZT_MAX_CACHE_SIZE);
    }
    azt_server_conf_get(cmd->server)->cache_size = (int)n;
    return NULL;
}

static const char *add_proxy(cmd_parms *cmd, void *dummy, const char *arg)
{
    azt_server_conf *sc = azt_server_conf_get(cmd->server);
    azt_proxy *px;

    if (!sc->proxies) {
        sc->proxies = apr_array_make(cmd->pool, 4, sizeof(azt_proxy));
    }
    px = apr_array_push(sc->proxies);
    px->spec = arg;
    px->tag = NULL;
    px->subnet = NULL;
    if (strncmp(arg, "tag:", 4) == 0) {
        if (arg[4] == '\0' || ap_strchr_c(arg, ' ')) {
            return apr_psprintf(cmd->pool, "%s: '%s' is not a tag; write tag:NAME",
                                cmd->cmd->name, arg);
        }
        px->tag = arg;
    }
    else {
        char *ip = apr_pstrdup(cmd->pool, arg);
        char *mask = ap_strchr(ip, '/');
        apr_status_t rv;

        if (mask) {
            *mask++ = '\0';
        }
        rv = apr_ipsubnet_create(&px->subnet, ip, mask, cmd->pool);
        if (rv != APR_SUCCESS || (!strchr(ip, '.') && !strchr(ip, ':'))) {
            return apr_psprintf(cmd->pool,
                                "%s: '%s' is neither an IP address, a CIDR range "
                                "(100.64.0.10, 100.64.0.0/10, fd7a:115c:a1e0::/48) "
                                "nor a tag (tag:edge)", cmd->cmd->name, arg);
        }
    }
    return NULL;
}

static const char *set_strip(cmd_parms *cmd, void *dummy, int flag)
{
    azt_server_conf_get(cmd->server)->strip_headers = flag;
    return NULL;
}

static const char *set_behind_serve(cmd_parms *cmd, void *dummy, int flag)
{
    azt_server_conf_get(cmd->server)->behind_serve = flag;
    return NULL;
}

static const char *set_headers(cmd_parms *cmd, void *dcv, int flag)
{
    ((azt_dir_conf *)dcv)->headers = flag;
    return NULL;
}

static const char *add_accept_cap(cmd_parms *cmd, void *dcv, const char *arg)
{
    azt_dir_conf *dc = dcv;

    if (!dc->accept_caps) {
        dc->accept_caps = apr_array_make(cmd->pool, 4, sizeof(const char *));
    }
    if (!*arg || ap_strchr_c(arg, ',')) {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not a capability name; list names separated "
                            "by spaces, e.g. example.com/cap/web", cmd->cmd->name, arg);
    }
    APR_ARRAY_PUSH(dc->accept_caps, const char *) = arg;
    return NULL;
}

static const char *set_tagged_user(cmd_parms *cmd, void *dcv, const char *arg)
{
    azt_dir_conf *dc = dcv;

    if (!strcasecmp(arg, "off")) dc->tagged_user = AZT_TAGGED_USER_OFF;
    else if (!strcasecmp(arg, "node")) dc->tagged_user = AZT_TAGGED_USER_NODE;
    else if (!strcasecmp(arg, "tags")) dc->tagged_user = AZT_TAGGED_USER_TAGS;
    else {
        return apr_psprintf(cmd->pool, "%s: '%s' is not one of off, node, tags",
                            cmd->cmd->name, arg);
    }
    return NULL;
}

static const char *set_unavailable(cmd_parms *cmd, void *dcv, const char *arg)
{
    azt_dir_conf *dc = dcv;

    if (!strcasecmp(arg, "error")) dc->unavailable = AZT_UNAVAILABLE_ERROR;
    else if (!strcasecmp(arg, "deny")) dc->unavailable = AZT_UNAVAILABLE_DENY;
    else {
        return apr_psprintf(cmd->pool,
                            "%s: '%s' is not one of error (503, the default) or deny "
                            "(tailscale rules deny, other Require rules still decide)",
                            cmd->cmd->name, arg);
    }
    return NULL;
}

static const char *set_assertion(cmd_parms *cmd, void *dcv, int flag)
{
    ((azt_dir_conf *)dcv)->assertion = flag;
    assertion_used |= flag;
    return NULL;
}

/* A free-form value that holds whitespace (an unterminated quote reads to
 * the end of the line) is almost certainly a mistake: refuse it, naming it. */
static const char *no_blank(cmd_parms *cmd, const char *arg, const char *what)
{
    const char *c;

    for (c = arg; *c; c++) {
        if (apr_isspace(*c)) {
            return apr_psprintf(cmd->pool, "%s: '%s' holds a space: give %s as one word "
                                "(check the quotes)", cmd->cmd->name, arg, what);
        }
    }
    return NULL;
}

static const char *set_assertion_audience(cmd_parms *cmd, void *dcv, const char *arg)
{
    const char *err;

    if (!*arg) {
        return apr_psprintf(cmd->pool, "%s: give the audience backends expect, e.g. "
                            "https://app.example.ts.net", cmd->cmd->name);
    }
    if ((err = no_blank(cmd, arg, "the audience backends expect"))) {
        return err;
    }
    ((azt_dir_conf *)dcv)->assertion_audience = arg;
    return NULL;
}

static const char *set_assertion_lifetime(cmd_parms *cmd, void *dcv, const char *arg)
{
    char *end;
    apr_int64_t n = apr_strtoi64(arg, &end, 10);

    if (!apr_isdigit(*arg) || *end != '\0' || n < 1 || n > AZT_MAX_ASSERTION_LIFETIME) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a number of seconds between 1 "
                            "and %d", cmd->cmd->name, arg, AZT_MAX_ASSERTION_LIFETIME);
    }
    ((azt_dir_conf *)dcv)->assertion_lifetime = (int)n;
    return NULL;
}

static const char *set_assertion_issuer(cmd_parms *cmd, void *dummy, const char *arg)
{
    apr_uri_t uri;

    if (apr_uri_parse(cmd->pool, arg, &uri) != APR_SUCCESS || !uri.scheme || !uri.hostname
        || (strcasecmp(uri.scheme, "https") && strcasecmp(uri.scheme, "http"))) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not an http(s) URL; give the issuer "
                            "backends expect, e.g. https://web1.tail1234.ts.net",
                            cmd->cmd->name, arg);
    }
    azt_server_conf_get(cmd->server)->assertion_issuer = arg;
    return NULL;
}

/* Read by the parent as root while it reads the configuration, before any
 * child exists: a bad key stops `apachectl -t` with the line it is on. */
static const char *add_assertion_key(cmd_parms *cmd, void *dummy, const char *arg)
{
    azt_server_conf *sc = azt_server_conf_get(cmd->server);
    const char *path = ap_server_root_relative(cmd->pool, arg);
    const char *err;
    azt_key *key;

    if (!path) {
        return apr_psprintf(cmd->pool, "%s: '%s' is not a valid path", cmd->cmd->name, arg);
    }
    if ((err = azt_key_load(cmd->pool, path, &key)) != NULL) {
        return apr_psprintf(cmd->pool, "%s: %s", cmd->cmd->name, err);
    }
    if (!sc->assertion_keys) {
        sc->assertion_keys = apr_array_make(cmd->pool, 2, sizeof(azt_key *));
    }
    APR_ARRAY_PUSH(sc->assertion_keys, azt_key *) = key;
    return NULL;
}

static const char *set_assertion_key_dir(cmd_parms *cmd, void *dummy, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err || (err = no_blank(cmd, arg, "the directory"))) {
        return err;
    }
    azt_server_conf_get(cmd->server)->assertion_key_dir = arg;
    return NULL;
}

const command_rec azt_cmds[] = {
    AP_INIT_TAKE1("AuthTailscaleURL", set_socket, NULL, RSRC_CONF,
                  "tailscaled LocalAPI socket: a path or file://localhost/<path>"),
    AP_INIT_TAKE1("AuthTailscaleCacheTimeout", set_ttl, NULL, RSRC_CONF,
                  "how long a tailnet identity is remembered (default 10s)"),
    AP_INIT_TAKE1("AuthTailscaleNegativeCacheTimeout", set_negative_ttl, NULL, RSRC_CONF,
                  "how long 'not a tailnet peer' is remembered (default 5s)"),
    AP_INIT_TAKE1("AuthTailscaleTimeout", set_timeout, NULL, RSRC_CONF,
                  "time limit for one whois request to tailscaled (default 2s)"),
    AP_INIT_TAKE1("AuthTailscaleCacheSize", set_cache_size, NULL, RSRC_CONF,
                  "identities cached per process (default 1000, 0 disables)"),
    AP_INIT_TAKE1("AuthTailscaleCache", azt_shared_set_cache, NULL, RSRC_CONF,
                  "answers shared between processes: a mod_socache provider[:args] "
                  "(default shmcb when loaded) or none"),
    AP_INIT_ITERATE("AuthTailscaleTrustedProxy", add_proxy, NULL, RSRC_CONF,
                    "peers (IP, CIDR or tag:NAME) whose forwarded client address "
                    "(mod_remoteip) is looked up instead of the peer itself"),
    AP_INIT_FLAG("AuthTailscaleStripHeaders", set_strip, NULL, RSRC_CONF,
                 "remove client-sent Tailscale-User-* headers (default on)"),
    AP_INIT_FLAG("AuthTailscaleBehindServe", set_behind_serve, NULL, RSRC_CONF,
                 "a loopback peer owned by tailscaled's uid is tailscale serve: its "
                 "X-Forwarded-For client is looked up (default off)"),
    AP_INIT_FLAG("AuthTailscaleHeaders", set_headers, NULL, OR_AUTHCFG,
                 "pass the identity to backends as tailscale serve's headers"),
    AP_INIT_ITERATE("AuthTailscaleAcceptAppCaps", add_accept_cap, NULL, OR_AUTHCFG,
                    "app capabilities passed on in Tailscale-App-Capabilities"),
    AP_INIT_TAKE1("AuthTailscaleTaggedUser", set_tagged_user, NULL, OR_AUTHCFG,
                  "REMOTE_USER for tagged nodes: off (not users), node or tags"),
    AP_INIT_TAKE1("AuthTailscaleUnavailable", set_unavailable, NULL, OR_AUTHCFG,
                  "when tailscaled cannot answer: error (503) or deny"),
    AP_INIT_FLAG("AuthTailscaleAssertion", set_assertion, NULL, RSRC_CONF | ACCESS_CONF,
                 "add Tailscale-Jwt-Assertion, a signed JWT of the tailnet identity"),
    AP_INIT_TAKE1("AuthTailscaleAssertionAudience", set_assertion_audience, NULL,
                  RSRC_CONF | ACCESS_CONF,
                  "aud of the assertion (default: scheme://host[:port] asked for)"),
    AP_INIT_TAKE1("AuthTailscaleAssertionLifetime", set_assertion_lifetime, NULL,
                  RSRC_CONF | ACCESS_CONF, "seconds an assertion is valid (default 60)"),
    AP_INIT_TAKE1("AuthTailscaleAssertionIssuer", set_assertion_issuer, NULL, RSRC_CONF,
                  "iss of the assertion (default: https://ServerName)"),
    AP_INIT_TAKE1("AuthTailscaleAssertionKey", add_assertion_key, NULL, RSRC_CONF,
                  "PEM EC P-256 private key; the first signs, all are published"),
    AP_INIT_TAKE1("AuthTailscaleAssertionKeyDir", set_assertion_key_dir, NULL, RSRC_CONF,
                  "where the generated signing key is kept (default authnz_tailscale "
                  "under ServerRoot)"),
    AP_INIT_RAW_ARGS(AZT_COMMENT_ERROR, azt_rules_comment_error, NULL,
                     RSRC_CONF | ACCESS_CONF | OR_ALL,
                     "set by mod_authnz_tailscale for a line with a trailing comment"),
    AP_INIT_RAW_ARGS(AZT_RULES_MARKER, azt_rules_marker, NULL, OR_AUTHCFG,
                     "(internal) what a section's own Require lines need"),
    {NULL}
};
