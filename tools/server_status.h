/* tsl-check: httpd's server-status?auto page (mod_status), fetched with
 * libcurl, and the identity cache figures mod_authnz_tailscale adds to it.
 * tsl-check cannot map httpd's shared memory, so it asks the running httpd. */
#ifndef TSL_SERVER_STATUS_H
#define TSL_SERVER_STATUS_H

#include <apr_pools.h>

#define SERVER_STATUS_URL_DEFAULT "http://localhost/server-status?auto"
#define SERVER_STATUS_MAX_PAGE (1024 * 1024)   /* a page is a few KiB */

typedef enum {
    SERVER_STATUS_OK = 0,
    SERVER_STATUS_BAD_URL,         /* not an http(s) URL */
    SERVER_STATUS_UNREACHABLE,     /* no connection, timeout, connection broken */
    SERVER_STATUS_TLS,             /* the certificate did not verify */
    SERVER_STATUS_HTTP,            /* an HTTP status other than 200 */
    SERVER_STATUS_REDIRECT,        /* a redirect tsl-check does not follow */
    SERVER_STATUS_TOO_LARGE,       /* over SERVER_STATUS_MAX_PAGE */
    SERVER_STATUS_GARBAGE,         /* not HTTP, or not a server-status?auto page */
    SERVER_STATUS_NOT_OURS,        /* a status page without our lines */
    SERVER_STATUS_INTERNAL         /* libcurl could not be set up */
} server_status_code;

typedef struct {
    server_status_code code;
    const char *url;        /* the URL asked last (after same-host redirects) */
    int http_status;        /* 0 when no HTTP answer */
    const char *text;       /* what went wrong, printable, one line */
} server_status_error;

/* The identity cache figures of one server-status?auto page. */
typedef struct {
    const char *shared_cache;         /* provider name or "none" */
    long long shared_entries;         /* -1: the provider cannot count them */
    unsigned long long shared_hits, shared_misses, shared_waits, shared_unreadable;
    unsigned long long whois_calls;   /* all processes of the generation */
    long long process_entries;        /* the answering process's own cache; -1 absent */
} server_status_cache;

/* The URL to ask for arg (NULL: the default): an http or https URL with
 * "auto" added to its query when missing and any fragment dropped; NULL and
 * err filled (SERVER_STATUS_BAD_URL) when arg is not such a URL. */
const char *server_status_url(apr_pool_t *p, const char *arg, server_status_error *err);

/* GET url (from server_status_url) within timeout seconds, following
 * redirects only to the same host and never from https to http, TLS
 * verified, no proxy, at most SERVER_STATUS_MAX_PAGE bytes; then read the
 * cache figures. SERVER_STATUS_OK or the failure in err. */
server_status_code server_status_cache_get(apr_pool_t *p, const char *url, double timeout,
                                           server_status_cache *out,
                                           server_status_error *err);

/* Read the cache figures from a page body (bytes from the network). */
server_status_code server_status_parse(apr_pool_t *p, const char *body, apr_size_t len,
                                       server_status_cache *out, server_status_error *err);

#endif
