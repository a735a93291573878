/* The LocalAPI transport: HTTP/1.1 over tailscaled's unix socket via libcurl.
 *
 * Every request goes to http://local-tailscaled.sock/localapi/v0/<name> so the
 * Host header is exactly "local-tailscaled.sock" (tailscaled >= 1.32.3 refuses
 * anything else with 403 "invalid localapi request"); no Origin or Referer is
 * ever sent.  Connections are reused: a client keeps a small stack of idle
 * libcurl easy handles (each with its keep-alive connection), safe to share
 * between threads.  Create clients per process (after fork), never share
 * them across fork().
 */
#ifndef TSL_CLIENT_H
#define TSL_CLIENT_H

#include <apr_pools.h>
#include <apr_time.h>
#include "tsl_result.h"

#define TSL_SOCKET_DEFAULT      "/var/run/tailscale/tailscaled.sock"
#define TSL_SOCKET_FALLBACK     "/run/tailscale/tailscaled.sock"
#define TSL_LOCALAPI_HOST       "local-tailscaled.sock"

typedef struct tsl_client tsl_client;

/* Options for tsl_client_create(); start from tsl_client_options_default().
 * A timeout or max_response <= 0 keeps the default; max_idle 0 disables
 * connection reuse. */
typedef struct tsl_client_options {
    apr_interval_time_t connect_timeout; /* default 1s */
    apr_interval_time_t timeout;         /* whole request, default 5s */
    apr_size_t max_response;             /* body size limit, default 1 MiB */
    int max_idle;                        /* idle handles kept for reuse, default 8 */
} tsl_client_options;

typedef struct tsl_response {
    int status;                 /* HTTP status */
    const char *body;           /* NUL-terminated copy of the body */
    apr_size_t body_len;
    const char *content_type;   /* may be NULL */
    long retry_after;           /* Retry-After seconds, -1 when absent */
} tsl_response;

/* Initialise libcurl's global state (curl_global_init) once; call it in the
 * parent before any thread or fork, later calls do nothing. */
void tsl_global_init(void);

/* Fill opts with the defaults listed above. */
void tsl_client_options_default(tsl_client_options *opts);

/* Parse a socket spec: a plain absolute path, "file://localhost/<path>" or
 * "file:///<path>". On success *path is the filesystem path. */
tsl_code tsl_socket_parse(apr_pool_t *p, const char *spec, const char **path,
                          tsl_result *res);

/* True if the two paths name the same socket (/var/run is /run on most
 * systems), or are the same string. */
int tsl_socket_same(const char *a, const char *b);

/* The default socket: TSL_SOCKET_DEFAULT if it exists, else TSL_SOCKET_FALLBACK
 * if that exists, else TSL_SOCKET_DEFAULT. */
const char *tsl_socket_default(void);

/* Create a client for socket_path; opts may be NULL for defaults. Handles are
 * released by a cleanup on p. */
tsl_client *tsl_client_create(apr_pool_t *p, const char *socket_path,
                              const tsl_client_options *opts);

/* The socket path this client talks to. */
const char *tsl_client_socket(const tsl_client *c);

/* GET /localapi/v0/<path_query> (path_query already escaped). Any HTTP status
 * is returned in *resp with TSL_OK; transport failures, timeouts and size
 * overruns give the matching error code and leave *resp NULL. */
tsl_code tsl_client_get(tsl_client *c, apr_pool_t *p, const char *path_query,
                        apr_interval_time_t timeout, tsl_response **resp,
                        tsl_result *res);

/* Map a non-200 response to a result: 404 -> NOT_FOUND, 403 -> DENIED,
 * 429 -> RATE_LIMITED (+retry_after), others -> HTTP; text = body sans "\n". */
tsl_code tsl_result_from_response(tsl_result *res, apr_pool_t *p,
                                  const tsl_response *resp);

/* Percent-encode a query value the way Go's url.QueryEscape does. */
const char *tsl_query_escape(apr_pool_t *p, const char *s);

#endif
