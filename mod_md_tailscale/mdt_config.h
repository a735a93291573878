/* mod_md_tailscale: configuration.  Everything lives in the main server's
 * config: MDomain is a global directive, like in mod_md.  Virtual hosts only
 * carry what post_config decided for them (which domain, fallback or not).
 */
#ifndef MDT_CONFIG_H
#define MDT_CONFIG_H

#include <httpd.h>
#include <http_config.h>
#include <apr_tables.h>
#include "mdt_time.h"

extern module AP_MODULE_DECLARE_DATA md_tailscale_module;

#define MDT_UNSET (-1)

/* One <MDomain> with MDCertificateProtocol tailscale. */
typedef struct mdt_domain {
    const char *name;             /* first name, lower case: key for store, status, events */
    apr_array_header_t *names;    /* of const char*: all names, lower case, no trailing dot */
    const char *request;          /* what is asked from tailscaled: "x" or "*.x" */
    const char *ca;               /* MDCertificateAuthority as written, NULL: default */
    const char *socket;           /* resolved socket path (set by check_config) */
    int socket_is_default;
    mdt_window renew_window;      /* unset: global, else 33% */
    mdt_window warn_window;       /* unset: global, else 10% */
    const char *file;             /* where it was defined, for messages */
    int line;
    int automatic;                /* from a ts.net <VirtualHost> (mdt_auto.c) */
} mdt_domain;

/* Global settings (the main server's module config; virtual hosts share
 * it, as httpd does for modules without a merge function). */
typedef struct mdt_config {
    apr_array_header_t *domains;  /* of mdt_domain* */
    const char *store_dir;        /* NULL: ServerRoot/md_tailscale */
    apr_interval_time_t check_interval;  /* -1 unset: 12h */
    apr_interval_time_t retry_min;       /* -1 unset: 5s */
    apr_interval_time_t retry_max;       /* -1 unset: 10m */
    apr_interval_time_t startup_wait;    /* -1 unset: 10s */
    apr_interval_time_t request_timeout; /* -1 unset: 120s */
    int auto_restart;                    /* -1 unset: on */
    int auto_domains;                    /* -1 unset: on (MDTailscaleAutoDomains) */
    mdt_window renew_window;
    mdt_window warn_window;
    const char *global_protocol;  /* top-level MDCertificateProtocol */
    const char *global_ca;        /* top-level MDCertificateAuthority */
    const char *message_cmd;      /* MDMessageCmd as written (program and args) */
    const char *notify_cmd;       /* MDNotifyCmd as written */
} mdt_config;

extern const command_rec mdt_cmds[];

void *mdt_create_server(apr_pool_t *p, server_rec *s);

/* The global settings, from any server_rec. */
mdt_config *mdt_config_get(server_rec *s);

/* Effective values with defaults applied. */
const char *mdt_config_store_dir(apr_pool_t *p, const mdt_config *c);
apr_interval_time_t mdt_config_check_interval(const mdt_config *c);
apr_interval_time_t mdt_config_retry_min(const mdt_config *c);
apr_interval_time_t mdt_config_retry_max(const mdt_config *c);
apr_interval_time_t mdt_config_startup_wait(const mdt_config *c);
apr_interval_time_t mdt_config_request_timeout(const mdt_config *c);
int mdt_config_auto_restart(const mdt_config *c);
mdt_window mdt_domain_renew_window(const mdt_config *c, const mdt_domain *d);
mdt_window mdt_domain_warn_window(const mdt_config *c, const mdt_domain *d);

/* Add the names in args (space separated) to d, normalized, without
 * duplicates.  Returns an error text or NULL. */
const char *mdt_domain_add_names(apr_pool_t *p, mdt_domain *d, const char *args);

/* Decide what d asks tailscaled for (one name, or "x *.x" as one wildcard)
 * and set d->name.  Returns an error text or NULL. */
const char *mdt_domain_decide_request(apr_pool_t *p, mdt_domain *d);

/* The domain managing host name h (exact, or covered by a "*." name). */
const mdt_domain *mdt_config_find_domain(const mdt_config *c, const char *h);

/* check_config: resolve sockets, cross-check domains. Returns an error text
 * or NULL. */
const char *mdt_config_finish(apr_pool_t *p, server_rec *s, mdt_config *c);

/* test_config (apache2 -t): one notice line per domain. */
void mdt_config_log_summary(apr_pool_t *p, server_rec *s, const mdt_config *c);

#endif
