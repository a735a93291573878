/* mod_authnz_tailscale: the client a trusted proxy forwarded (see azt_forwarded.h). */
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <apr_hash.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "tsl_addr.h"
#include "tsl_result.h"
#include "azt_config.h"
#include "azt_forwarded.h"

#define HOP_KEY "authnz_tailscale:forwarded-hop"

static module *remoteip;        /* mod_remoteip, when loaded */
static apr_hash_t *headers;     /* server_rec * -> its RemoteIPHeader */

request_rec *azt_origin_request(request_rec *r)
{
    while (r->main || r->prev) {
        r = r->main ? r->main : r->prev;
    }
    return r;
}

/* The <VirtualHost> section a server was defined by, and which
 * RemoteIPHeader (last one wins, as in mod_remoteip) each section set. */
static void collect(apr_pool_t *p, apr_hash_t *by_section, const ap_directive_t *d,
                    const ap_directive_t *vhost)
{
    for (; d; d = d->next) {
        if (!strcasecmp(d->directive, "RemoteIPHeader") && d->args) {
            const char *args = d->args;
            const char *name = ap_getword_conf(p, &args);

            if (*name) {
                apr_hash_set(by_section, vhost ? apr_psprintf(p, "%s:%d", vhost->filename,
                                                               vhost->line_num) : "",
                             APR_HASH_KEY_STRING, name);
            }
        }
        if (d->first_child) {
            collect(p, by_section, d->first_child,
                    !strcasecmp(d->directive, "<VirtualHost") ? d : vhost);
        }
    }
}

void azt_forwarded_post_config(apr_pool_t *pconf, server_rec *s)
{
    apr_hash_t *by_section = apr_hash_make(pconf);
    const char *global;
    server_rec *sv;

    remoteip = ap_find_linked_module("mod_remoteip.c");
    headers = apr_hash_make(pconf);
    collect(pconf, by_section, ap_conftree, NULL);
    global = apr_hash_get(by_section, "", APR_HASH_KEY_STRING);
    for (sv = s; sv; sv = sv->next) {
        const char *name = NULL;

        if (sv->is_virtual && sv->defn_name) {
            name = apr_hash_get(by_section, apr_psprintf(pconf, "%s:%d", sv->defn_name,
                                                         sv->defn_line_number),
                                APR_HASH_KEY_STRING);
        }
        if (!name) {
            name = global;
        }
        if (name) {
            apr_hash_set(headers, apr_pmemdup(pconf, &sv, sizeof(sv)), sizeof(sv), name);
        }
    }
}

static const char *header_of(server_rec *s)
{
    return headers ? apr_hash_get(headers, &s, sizeof(s)) : NULL;
}

const char *azt_forwarded_last_entry(apr_pool_t *p, const char *v)
{
    const char *comma = ap_strrchr_c(v, ',');
    const char *b = comma ? comma + 1 : v, *e;

    while (apr_isspace(*b)) {
        b++;
    }
    for (e = b + strlen(b); e > b && apr_isspace(e[-1]); e--) {
    }
    return apr_pstrmemdup(p, b, (apr_size_t)(e - b));
}

int azt_forwarded_post_read(request_rec *r)
{
    const char *name, *value;

    if (r->main || r->prev || !azt_server_conf_get(r->server)->proxies
        || !(name = header_of(r->server))) {
        return DECLINED;
    }
    value = apr_table_get(r->headers_in, name);
    if (value) {
        apr_pool_userdata_setn(azt_forwarded_last_entry(r->pool, value), HOP_KEY, NULL, r->pool);
    }
    return DECLINED;
}

/* Does mod_remoteip read a PROXY preamble on this connection?  Its
 * connection config exists exactly then (its contents are its own). */
static int proxy_protocol(conn_rec *c)
{
    return remoteip && (ap_get_module_config(c->conn_config, remoteip)
                        || (c->master && ap_get_module_config(c->master->conn_config,
                                                              remoteip)));
}

static const char *normalized(apr_pool_t *p, const char *ip)
{
    return ip ? tsl_addr_normalize(p, ip) : NULL;
}

const char *azt_forwarded_client(request_rec *r, const char *peer, const char **why)
{
    request_rec *origin = azt_origin_request(r);
    const char *ua = normalized(r->pool, origin->useragent_ip);
    const char *name, *hop = NULL, *norm;

    if (proxy_protocol(origin->connection)) {
        /* mod_remoteip took the client from the preamble and read no header. */
        const char *cip = normalized(r->pool, origin->connection->client_ip);

        if (cip && strcmp(cip, peer) != 0) {
            return cip;
        }
        if (ua && strcmp(ua, peer) != 0) {
            return ua;
        }
        *why = "its PROXY preamble named no client (a LOCAL or UNKNOWN command)";
        return NULL;
    }
    name = header_of(origin->server);
    if (!name) {
        *why = "mod_remoteip takes no client from it here (no RemoteIPProxyProtocol on "
               "this address, no RemoteIPHeader for this vhost)";
        return NULL;
    }
    if (!ua || !strcmp(ua, peer)) {
        *why = apr_psprintf(r->pool, "mod_remoteip accepted no client from its %s header "
                            "(absent, empty, or not trusted by RemoteIPTrustedProxy/"
                            "RemoteIPInternalProxy)", name);
        return NULL;
    }
    apr_pool_userdata_get((void **)&hop, HOP_KEY, origin->pool);
    norm = hop ? tsl_addr_normalize(r->pool, hop) : NULL;
    if (!norm) {
        *why = apr_psprintf(r->pool, "the last entry of its %s header (%s) is not an IP "
                            "address", name, hop ? tsl_printable(r->pool, hop, 64) : "none");
        return NULL;
    }
    return norm;
}
