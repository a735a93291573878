/* GET /localapi/v0/status?peers=false, reduced to what a web server needs. */
#ifndef TSL_STATUS_H
#define TSL_STATUS_H

#include "tsl_client.h"
#include <apr_tables.h>

typedef struct tsl_status {
    const char *version;          /* "1.102.3-t..." */
    const char *backend_state;    /* "Running", "NeedsLogin", "Stopped", ... */
    const char *self_dns_name;    /* FQDN without trailing dot, "" if unknown */
    const char *tailnet_name;     /* CurrentTailnet.Name, "" if none */
    const char *magic_dns_suffix; /* "tail1234.ts.net", "" if none */
    apr_array_header_t *cert_domains; /* of const char*; empty when HTTPS is
                                       * off or there is no netmap */
    apr_array_header_t *self_ips;     /* of const char* */
    apr_array_header_t *services;     /* of tsl_service: Tailscale Services this
                                       * node hosts (Self.CapMap["service-host"]) */
    const char *services_error;       /* why service-host was not understood
                                       * (services then empty), or NULL */
} tsl_status;

/* One hosted Tailscale Service and its VIP addresses. */
typedef struct tsl_service {
    const char *name;                 /* "svc:web" */
    apr_array_header_t *vips;         /* of const char*, normalized addresses */
} tsl_service;

/* Parse a status JSON body. */
tsl_code tsl_status_parse(apr_pool_t *p, const char *json, apr_size_t len,
                          tsl_status **out, tsl_result *res);

/* Fetch and parse the status. */
tsl_code tsl_status_get(tsl_client *c, apr_pool_t *p, tsl_status **out,
                        tsl_result *res);

/* True if domain (trailing dot ignored) is one of cert_domains, or is
 * "*.<d>" for a cert domain d. */
int tsl_status_cert_domain_ok(const tsl_status *st, const char *domain);

/* The service whose VIP is addr (a normalized address), or NULL. */
const char *tsl_status_service_at(const tsl_status *st, const char *addr);

/* The cert domains as "[\"a\" \"b\"]" (the form tailscaled uses in errors). */
const char *tsl_status_cert_domains_str(apr_pool_t *p, const tsl_status *st);

#endif
