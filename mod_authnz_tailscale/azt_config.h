/* mod_authnz_tailscale: configuration (per server and per directory). */
#ifndef AZT_CONFIG_H
#define AZT_CONFIG_H

#include <httpd.h>
#include <http_config.h>
#include <apr_tables.h>
#include <apr_network_io.h>
#include "tsl_result.h"

extern module AP_MODULE_DECLARE_DATA authnz_tailscale_module;

#define AZT_UNSET (-1)

/* What r->user becomes for a tagged node under AuthType tailscale. */
typedef enum {
    AZT_TAGGED_USER_UNSET = -1,
    AZT_TAGGED_USER_OFF = 0,   /* tagged nodes are not users: 401 */
    AZT_TAGGED_USER_NODE,      /* r->user = node FQDN */
    AZT_TAGGED_USER_TAGS       /* r->user = "tag:a,tag:b" */
} azt_tagged_user;

/* Whether a section's Require lines replace its parent's (azt_rules.c). */
enum { AZT_RULES_INHERITED = 0, AZT_RULES_OWN, AZT_RULES_MERGED };

/* What happens when tailscaled cannot be asked. */
typedef enum {
    AZT_UNAVAILABLE_UNSET = -1,
    AZT_UNAVAILABLE_ERROR = 0, /* 503 Service Unavailable */
    AZT_UNAVAILABLE_DENY       /* no identity: tailscale rules deny, others decide */
} azt_unavailable;

/* A trusted proxy: an address range or a tailnet tag. */
typedef struct {
    apr_ipsubnet_t *subnet;    /* NULL for a tag */
    const char *tag;           /* "tag:edge", NULL for a subnet */
    const char *spec;          /* as written, for logs */
} azt_proxy;

typedef struct {
    const char *socket_path;        /* NULL: default socket */
    const char *socket_spec;        /* as written, for logs */
    apr_interval_time_t ttl;        /* positive cache TTL, -1 unset */
    apr_interval_time_t negative_ttl;
    apr_interval_time_t timeout;    /* whois total timeout */
    int cache_size;                 /* entries per process, -1 unset */
    apr_array_header_t *proxies;    /* of azt_proxy; NULL unset */
    int strip_headers;              /* remove client-sent Tailscale-* headers */
    int behind_serve;               /* believe tailscaled's own loopback proxy */
    apr_array_header_t *assertion_keys; /* of struct azt_key *, first signs; NULL unset */
    const char *assertion_issuer;   /* iss; NULL: https://ServerName */
    const char *assertion_key_dir;  /* generated key's directory (main server); NULL default */
} azt_server_conf;

typedef struct {
    int headers;                    /* add serve-compatible request headers */
    apr_array_header_t *accept_caps;/* of const char*; NULL unset */
    azt_tagged_user tagged_user;
    azt_unavailable unavailable;
    int uses_tailscale;             /* a Require line here names a tailscale provider */
    int negates_tailscale;          /* ... and one is negated (not, <RequireNone>) */
    int uses_client;                /* ... and one is about the client, not only the
                                     * connection's peer (tailscale-peer-*) */
    int own_rules;                  /* AZT_RULES_*: has Require lines of its own */
    int assertion;                  /* add Tailscale-Jwt-Assertion */
    const char *assertion_audience; /* aud; NULL: scheme://host[:port] asked for */
    int assertion_lifetime;         /* seconds, AZT_UNSET */
} azt_dir_conf;

extern const command_rec azt_cmds[];

void *azt_create_server_conf(apr_pool_t *p, server_rec *s);
void *azt_merge_server_conf(apr_pool_t *p, void *base, void *add);
void *azt_create_dir_conf(apr_pool_t *p, char *dir);
void *azt_merge_dir_conf(apr_pool_t *p, void *base, void *add);

/* Effective values with defaults applied. */
const char *azt_conf_socket(const azt_server_conf *sc);
apr_interval_time_t azt_conf_ttl(const azt_server_conf *sc);
apr_interval_time_t azt_conf_negative_ttl(const azt_server_conf *sc);
apr_interval_time_t azt_conf_timeout(const azt_server_conf *sc);
int azt_conf_cache_size(const azt_server_conf *sc);
int azt_conf_headers(const azt_dir_conf *dc);
azt_tagged_user azt_conf_tagged_user(const azt_dir_conf *dc);
azt_unavailable azt_conf_unavailable(const azt_dir_conf *dc);
int azt_conf_assertion(const azt_dir_conf *dc);
int azt_conf_assertion_lifetime(const azt_dir_conf *dc);
const char *azt_conf_assertion_issuer(request_rec *r);
const char *azt_conf_assertion_audience(request_rec *r, const azt_dir_conf *dc);
const char *azt_conf_assertion_key_dir(apr_pool_t *p, server_rec *main_server);

/* True if the configuration read last turns AuthTailscaleAssertion on
 * anywhere (a generated key is needed only then); reset before each read. */
int azt_conf_assertion_used(void);
void azt_conf_pre_config(void);

/* What to check when tailscaled at path could not be asked (code), naming
 * AuthTailscaleURL / AuthTailscaleTimeout, the user and modes in the way,
 * and the certificate module's socket when that is another one. */
const char *azt_conf_socket_hint(apr_pool_t *p, const char *path, tsl_code code);

/* Per-request access to the configurations. */
azt_server_conf *azt_server_conf_get(server_rec *s);
azt_dir_conf *azt_dir_conf_get(request_rec *r);

#endif
