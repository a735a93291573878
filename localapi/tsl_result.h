/* Result of a LocalAPI operation: a code, tailscaled's HTTP status and its
 * own error text (verbatim), so callers can log and display exactly what the
 * daemon said.  No httpd headers here.
 */
#ifndef TSL_RESULT_H
#define TSL_RESULT_H

#include <sys/types.h>
#include <apr_pools.h>

typedef enum tsl_code {
    TSL_OK = 0,
    TSL_ERR_INVALID,        /* the caller passed a bad argument (address, domain, URL) */
    TSL_ERR_SOCKET_MISSING, /* socket file does not exist: tailscaled not running? */
    TSL_ERR_CONNECT,        /* socket exists but connect failed (refused, EACCES) */
    TSL_ERR_TIMEOUT,        /* connect or total timeout expired */
    TSL_ERR_TRANSPORT,      /* connection reset, broken HTTP framing, ... */
    TSL_ERR_TOO_LARGE,      /* response exceeded the configured size limit */
    TSL_ERR_NOT_FOUND,      /* whois: tailscaled's own 404 "no match for IP:port" -
                             * not a tailnet peer; never any other answer */
    TSL_ERR_DENIED,         /* 403 from tailscaled ("cert access denied", ...) */
    TSL_ERR_RATE_LIMITED,   /* 429; see tsl_result.retry_after */
    TSL_ERR_HTTP,           /* any other non-200 answer (404 "page not found" too);
                             * see http_status and text */
    TSL_ERR_PARSE,          /* 200 answer that is not what tailscaled sends */
    TSL_ERR_CERT            /* certificate/key unusable: mismatch, names, dates */
} tsl_code;

typedef struct tsl_result {
    tsl_code code;
    int http_status;        /* status tailscaled answered with, 0 when none */
    const char *text;       /* tailscaled's body text (trailing newline removed) or
                             * the transport/parse reason; never NULL after a call */
    long retry_after;       /* seconds from Retry-After (429), -1 when absent */
} tsl_result;

/* Reset a result to TSL_OK with empty text. */
void tsl_result_init(tsl_result *res);

/* Set code and a formatted text allocated from p; returns code. */
tsl_code tsl_result_set(tsl_result *res, apr_pool_t *p, tsl_code code,
                        const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Stable lower-case name of a code, e.g. "socket-missing". */
const char *tsl_code_name(tsl_code code);

/* One-line operator hint for a code (what to check), never NULL. */
const char *tsl_code_hint(tsl_code code);

/* The settings a caller of tailscaled is configured with, by name, for
 * hints that say which one to change. */
typedef struct tsl_hint_settings {
    const char *socket;         /* e.g. "AuthTailscaleURL", "--socket" */
    const char *timeout;        /* e.g. "AuthTailscaleTimeout", "--timeout" */
} tsl_hint_settings;

/* What to check when tailscaled at socket could not be asked (code): like
 * tsl_code_hint(), but naming the caller's settings and, for a socket this
 * process may not open, its user and the directory or socket mode in the
 * way (it looks at the file system). Never NULL. */
const char *tsl_socket_hint(apr_pool_t *p, tsl_code code, const char *socket,
                            const tsl_hint_settings *set);

/* Why a process of uid and primary group gid (and the user's other groups)
 * may not open socket: the first directory it cannot enter, or the socket's
 * own mode; NULL if nothing is in the way. */
const char *tsl_socket_access_problem(apr_pool_t *p, const char *socket, uid_t uid,
                                      gid_t gid);

/* True if the code means tailscaled could not be asked or answered badly
 * (as opposed to a definite answer such as NOT_FOUND or DENIED). */
int tsl_code_is_unavailable(tsl_code code);

/* Like tsl_code_is_unavailable() but looks at the status too: TSL_ERR_HTTP
 * counts as unavailable only for 5xx (or no status). */
int tsl_result_is_unavailable(const tsl_result *res);

/* s made safe for one log line: control characters become spaces and the
 * text is cut to max bytes (with "..." appended). Never NULL. */
const char *tsl_printable(apr_pool_t *p, const char *s, apr_size_t max);

#endif
