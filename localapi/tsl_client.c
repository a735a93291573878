/* LocalAPI transport: HTTP/1.1 over tailscaled's unix socket with libcurl.
 *
 * The URL host is the fixed name tailscaled expects in the Host header
 * (local-tailscaled.sock); curl never resolves it because the connection
 * goes to CURLOPT_UNIX_SOCKET_PATH.  Idle easy handles, each with its live
 * keep-alive connection, are kept on a mutex-protected stack so concurrent
 * threads each take their own; a handle's fixed options are set once when it
 * is made, a request only sets what differs per call.  libcurl itself sends
 * an idempotent GET again on a fresh connection when a kept one turns out to
 * be closed before any answer byte.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <curl/curl.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include <apr_date.h>
#include "tsl_client.h"

#define TSL_USER_AGENT "mod_tailscale-localapi/0.1.0"
#define TSL_BASE_URL   "http://" TSL_LOCALAPI_HOST "/localapi/v0/"

struct tsl_client {
    apr_pool_t *pool;
    const char *socket_path;
    tsl_client_options opts;
#if APR_HAS_THREADS
    apr_thread_mutex_t *mutex;
#endif
    CURL **idle;              /* stack of idle handles, opts.max_idle slots */
    int n_idle;
};

/* Per-request state shared with the curl callbacks. */
typedef struct req_ctx {
    apr_pool_t *scratch;      /* body buffer growth; destroyed after the call */
    char *buf;
    apr_size_t len;
    apr_size_t cap;
    apr_size_t max;
    int too_large;
    char content_type[256];
    long retry_after;
} req_ctx;

/* ------------------------------------------------------------------ init */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void tsl_global_init(void)
{
    pthread_once(&global_once, global_init_once);
}

void tsl_client_options_default(tsl_client_options *opts)
{
    opts->connect_timeout = apr_time_from_sec(1);
    opts->timeout = apr_time_from_sec(5);
    opts->max_response = 1024 * 1024;
    opts->max_idle = 8;
}

/* ------------------------------------------------------------ socket spec */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

tsl_code tsl_socket_parse(apr_pool_t *p, const char *spec, const char **path,
                          tsl_result *res)
{
    static const char forms[] =
        "use an absolute path (/var/run/tailscale/tailscaled.sock), "
        "file://localhost/<absolute path> or file:///<absolute path>";
    const char *rest = NULL;

    tsl_result_init(res);
    *path = NULL;
    if (!spec || !*spec) {
        return tsl_result_set(res, p, TSL_ERR_INVALID,
                              "empty tailscaled socket: %s", forms);
    }
    if (spec[0] == '/') {
        rest = spec;
    }
    else if (strncasecmp(spec, "file://", 7) == 0) {
        const char *host = spec + 7;
        if (host[0] == '/') {
            rest = host;
        }
        else if (strncasecmp(host, "localhost/", 10) == 0) {
            rest = host + 9;
        }
        else {
            return tsl_result_set(res, p, TSL_ERR_INVALID,
                                  "tailscaled socket \"%s\" names a host other "
                                  "than localhost: %s", spec, forms);
        }
        if (strchr(rest, '?') || strchr(rest, '#')) {
            return tsl_result_set(res, p, TSL_ERR_INVALID,
                                  "tailscaled socket \"%s\" has a query or "
                                  "fragment: %s", spec, forms);
        }
    }
    else {
        return tsl_result_set(res, p, TSL_ERR_INVALID,
                              "invalid tailscaled socket \"%s\": %s", spec, forms);
    }
    if (rest != spec) {
        /* percent-decode the URL path */
        char *out = apr_palloc(p, strlen(rest) + 1), *o = out;
        const char *s;
        for (s = rest; *s; s++) {
            if (*s == '%') {
                int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
                if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                    return tsl_result_set(res, p, TSL_ERR_INVALID,
                                          "tailscaled socket \"%s\" has a bad "
                                          "%%-escape: %s", spec, forms);
                }
                *o++ = (char)(hi * 16 + lo);
                s += 2;
            }
            else {
                *o++ = *s;
            }
        }
        *o = '\0';
        rest = out;
    }
    if (rest[0] != '/' || rest[1] == '\0') {
        return tsl_result_set(res, p, TSL_ERR_INVALID,
                              "tailscaled socket \"%s\" has no file path: %s",
                              spec, forms);
    }
    if (strlen(rest) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        /* connect() could never reach it: every request would fail. */
        return tsl_result_set(res, p, TSL_ERR_INVALID,
                              "tailscaled socket path \"%s\" is %lu bytes long; a unix "
                              "socket path has at most %lu: use a shorter path (a symlink "
                              "to the socket works)", rest, (unsigned long)strlen(rest),
                              (unsigned long)sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    }
    *path = apr_pstrdup(p, rest);
    return TSL_OK;
}

int tsl_socket_same(const char *a, const char *b)
{
    struct stat sa, sb;

    if (!strcmp(a, b)) {
        return 1;
    }
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev
           && sa.st_ino == sb.st_ino;
}

const char *tsl_socket_default(void)
{
#ifdef TSL_CONFIGURED_SOCKET
    return TSL_CONFIGURED_SOCKET;
#else
    struct stat st;

    if (stat(TSL_SOCKET_DEFAULT, &st) == 0) {
        return TSL_SOCKET_DEFAULT;
    }
    if (stat(TSL_SOCKET_FALLBACK, &st) == 0) {
        return TSL_SOCKET_FALLBACK;
    }
    return TSL_SOCKET_DEFAULT;
#endif
}

/* ----------------------------------------------------------------- client */

static apr_status_t client_cleanup(void *data)
{
    tsl_client *c = data;
    int i;

    for (i = 0; i < c->n_idle; i++) {
        curl_easy_cleanup(c->idle[i]);
        c->idle[i] = NULL;
    }
    c->n_idle = 0;
    return APR_SUCCESS;
}

tsl_client *tsl_client_create(apr_pool_t *p, const char *socket_path,
                              const tsl_client_options *opts)
{
    tsl_client *c = apr_pcalloc(p, sizeof(*c));

    tsl_global_init();
    c->pool = p;
    c->socket_path = apr_pstrdup(p, socket_path ? socket_path
                                                : tsl_socket_default());
    tsl_client_options_default(&c->opts);
    if (opts) {
        if (opts->connect_timeout > 0) c->opts.connect_timeout = opts->connect_timeout;
        if (opts->timeout > 0) c->opts.timeout = opts->timeout;
        if (opts->max_response > 0) c->opts.max_response = opts->max_response;
        if (opts->max_idle >= 0) c->opts.max_idle = opts->max_idle;
    }
    c->idle = apr_pcalloc(p, sizeof(CURL *) * (apr_size_t)(c->opts.max_idle + 1));
#if APR_HAS_THREADS
    if (apr_thread_mutex_create(&c->mutex, APR_THREAD_MUTEX_DEFAULT, p)
        != APR_SUCCESS) {
        c->mutex = NULL;
        c->opts.max_idle = 0;   /* no sharing without a lock */
    }
#endif
    apr_pool_cleanup_register(p, c, client_cleanup, apr_pool_cleanup_null);
    return c;
}

const char *tsl_client_socket(const tsl_client *c)
{
    return c->socket_path;
}

static void client_lock(tsl_client *c)
{
#if APR_HAS_THREADS
    if (c->mutex) apr_thread_mutex_lock(c->mutex);
#else
    (void)c;
#endif
}

static void client_unlock(tsl_client *c)
{
#if APR_HAS_THREADS
    if (c->mutex) apr_thread_mutex_unlock(c->mutex);
#else
    (void)c;
#endif
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata);
static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata);

/* A new handle with every option that is the same for all of this client's
 * requests; NULL when libcurl cannot make one. */
static CURL *handle_new(tsl_client *c)
{
    CURL *h = curl_easy_init();

    if (!h) {
        return NULL;
    }
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTP);
#endif
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, TSL_USER_AGENT);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->opts.max_response);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    return h;
}

static CURL *handle_take(tsl_client *c)
{
    CURL *h = NULL;

    client_lock(c);
    if (c->n_idle > 0) {
        h = c->idle[--c->n_idle];
        c->idle[c->n_idle] = NULL;
    }
    client_unlock(c);
    return h ? h : handle_new(c);
}

/* Give a handle back for reuse, or release it when the stack is full or the
 * handle should not be reused (its connection is in an unknown state). */
static void handle_give(tsl_client *c, CURL *h, int reusable)
{
    /* no pointer into this call's stack or pools stays in a kept handle */
    curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    if (reusable) {
        client_lock(c);
        if (c->n_idle < c->opts.max_idle) {
            c->idle[c->n_idle++] = h;
            h = NULL;
        }
        client_unlock(c);
    }
    if (h) {
        curl_easy_cleanup(h);
    }
}

/* -------------------------------------------------------------- callbacks */

/* Collect the body; more than the limit aborts the transfer (also for
 * chunked and close-delimited bodies, which announce no length). */
static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    req_ctx *rc = userdata;
    apr_size_t n = size * nmemb;

    if (n == 0) {
        return 0;
    }
    if (rc->len + n > rc->max || rc->len + n < rc->len) {
        rc->too_large = 1;
        return 0;   /* abort: CURLE_WRITE_ERROR */
    }
    if (rc->len + n + 1 > rc->cap) {
        apr_size_t ncap = rc->cap ? rc->cap : 4096;
        char *nbuf;
        while (ncap < rc->len + n + 1) {
            ncap *= 2;
        }
        nbuf = apr_palloc(rc->scratch, ncap);
        if (rc->len) {
            memcpy(nbuf, rc->buf, rc->len);
        }
        rc->buf = nbuf;
        rc->cap = ncap;
    }
    memcpy(rc->buf + rc->len, data, n);
    rc->len += n;
    return n;
}

/* Header value if line is "<name>:<value>", trimmed into out. */
static int header_value(const char *line, size_t len, const char *name,
                        char *out, size_t outsz)
{
    size_t nl = strlen(name), s, e;

    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':') {
        return 0;
    }
    s = nl + 1;
    e = len;
    while (s < e && (line[s] == ' ' || line[s] == '\t')) s++;
    while (e > s && (line[e - 1] == '\r' || line[e - 1] == '\n'
                     || line[e - 1] == ' ' || line[e - 1] == '\t')) e--;
    if (e - s >= outsz) {
        e = s + outsz - 1;
    }
    memcpy(out, line + s, e - s);
    out[e - s] = '\0';
    return 1;
}

/* Retry-After as seconds from now: delta-seconds or an HTTP date (a date in
 * the past is 0); -1 when absent or unreadable. */
static long parse_retry_after(const char *v)
{
    const char *s;
    long secs = 0;

    if (!*v) {
        return -1;
    }
    for (s = v; *s; s++) {
        if (*s < '0' || *s > '9') {
            break;
        }
        if (secs > (LONG_MAX - 9) / 10) {
            return LONG_MAX;
        }
        secs = secs * 10 + (*s - '0');
    }
    if (!*s) {
        return secs;
    }
    {
        apr_time_t when = apr_date_parse_http(v), now = apr_time_now();
        if (when == APR_DATE_BAD) {
            return -1;
        }
        return when > now ? (long)apr_time_sec(when - now) : 0;
    }
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    req_ctx *rc = userdata;
    size_t n = size * nmemb;
    char val[256];

    if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* a new answer (after a 1xx): forget earlier headers */
        rc->content_type[0] = '\0';
        rc->retry_after = -1;
    }
    else if (header_value(data, n, "Content-Type", rc->content_type,
                          sizeof(rc->content_type))) {
        /* stored */
    }
    else if (header_value(data, n, "Retry-After", val, sizeof(val))) {
        rc->retry_after = parse_retry_after(val);
    }
    return n;
}

/* --------------------------------------------------------------- request */

static long to_ms(apr_interval_time_t t)
{
    apr_interval_time_t ms;

    if (t <= 0) {
        return 0;
    }
    ms = (t + 999) / 1000;
    return ms > LONG_MAX ? LONG_MAX : (long)ms;
}

static const char *errno_text(apr_pool_t *p, int err)
{
    char buf[256];

    return apr_pstrdup(p, apr_strerror(err, buf, sizeof(buf)));
}

/* A failed transfer as a result whose text tells the operator which of
 * socket missing, refused, timeout, reset, garbage or size it was. */
static tsl_code map_curl_error(tsl_client *c, apr_pool_t *p, CURL *h,
                               CURLcode rv, const req_ctx *rc,
                               const char *errbuf, long timeout_ms,
                               tsl_result *res)
{
    const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rv);
    long os_errno = 0;

    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
    switch (rv) {
    case CURLE_WRITE_ERROR:
    case CURLE_FILESIZE_EXCEEDED:
        if (rv == CURLE_FILESIZE_EXCEEDED || rc->too_large) {
            return tsl_result_set(res, p, TSL_ERR_TOO_LARGE,
                                  "answer from tailscaled on %s exceeds the "
                                  "limit of %" APR_SIZE_T_FMT " bytes",
                                  c->socket_path, c->opts.max_response);
        }
        break;
    case CURLE_OPERATION_TIMEDOUT:
        return tsl_result_set(res, p, TSL_ERR_TIMEOUT,
                              "tailscaled on %s did not answer within %ld ms (%s)",
                              c->socket_path, timeout_ms, detail);
    case CURLE_COULDNT_CONNECT:
        if (os_errno == ENOENT) {
            return tsl_result_set(res, p, TSL_ERR_SOCKET_MISSING,
                                  "tailscaled socket %s does not exist",
                                  c->socket_path);
        }
        return tsl_result_set(res, p, TSL_ERR_CONNECT,
                              "cannot connect to tailscaled socket %s: %s",
                              c->socket_path, os_errno
                              ? errno_text(p, (int)os_errno) : detail);
    case CURLE_GOT_NOTHING:
        return tsl_result_set(res, p, TSL_ERR_TRANSPORT,
                              "tailscaled on %s closed the connection without "
                              "an answer", c->socket_path);
    case CURLE_PARTIAL_FILE:
        return tsl_result_set(res, p, TSL_ERR_TRANSPORT,
                              "tailscaled on %s closed the connection in the "
                              "middle of the answer (%s)", c->socket_path, detail);
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_CONTENT_ENCODING:
        return tsl_result_set(res, p, TSL_ERR_TRANSPORT,
                              "tailscaled on %s sent an invalid HTTP answer (%s)",
                              c->socket_path, detail);
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        if (os_errno) {
            return tsl_result_set(res, p, TSL_ERR_TRANSPORT,
                                  "talking to tailscaled on %s failed: %s",
                                  c->socket_path, errno_text(p, (int)os_errno));
        }
        break;
    default:
        break;
    }
    return tsl_result_set(res, p, TSL_ERR_TRANSPORT,
                          "talking to tailscaled on %s failed: %s",
                          c->socket_path, detail);
}

tsl_code tsl_client_get(tsl_client *c, apr_pool_t *p, const char *path_query,
                        apr_interval_time_t timeout, tsl_response **resp,
                        tsl_result *res)
{
    char errbuf[CURL_ERROR_SIZE];
    req_ctx rc;
    struct stat st;
    CURL *h;
    CURLcode rv;
    const char *url;
    long status = 0, total_ms, connect_ms;
    tsl_response *r;
    tsl_code code;

    tsl_result_init(res);
    *resp = NULL;
    if (!path_query || path_query[0] == '/') {
        return tsl_result_set(res, p, TSL_ERR_INVALID,
                              "LocalAPI path must be relative to /localapi/v0/");
    }
    if (strpbrk(path_query, " \t\r\n")) {
        return tsl_result_set(res, p, TSL_ERR_INVALID,
                              "LocalAPI path must be escaped (it holds white space)");
    }
    if (strlen(c->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        return tsl_result_set(res, p, TSL_ERR_INVALID,
                              "tailscaled socket path %s is longer than the "
                              "%d bytes a unix socket address holds",
                              c->socket_path,
                              (int)sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    }
    if (stat(c->socket_path, &st) != 0) {
        int err = errno;
        if (err == ENOENT || err == ENOTDIR) {
            return tsl_result_set(res, p, TSL_ERR_SOCKET_MISSING,
                                  "tailscaled socket %s does not exist",
                                  c->socket_path);
        }
        return tsl_result_set(res, p, TSL_ERR_CONNECT,
                              "cannot reach tailscaled socket %s: %s",
                              c->socket_path, errno_text(p, err));
    }
    if (!S_ISSOCK(st.st_mode)) {
        return tsl_result_set(res, p, TSL_ERR_CONNECT,
                              "%s is not a unix socket (is it tailscaled's "
                              "--socket path?)", c->socket_path);
    }

    memset(&rc, 0, sizeof(rc));
    rc.max = c->opts.max_response;
    rc.retry_after = -1;
    if (apr_pool_create(&rc.scratch, p) != APR_SUCCESS) {
        return tsl_result_set(res, p, TSL_ERR_TRANSPORT, "out of memory");
    }
    h = handle_take(c);
    if (!h) {
        apr_pool_destroy(rc.scratch);
        return tsl_result_set(res, p, TSL_ERR_TRANSPORT,
                              "cannot create a libcurl handle");
    }

    url = apr_pstrcat(rc.scratch, TSL_BASE_URL, path_query, NULL);
    total_ms = to_ms(timeout > 0 ? timeout : c->opts.timeout);
    connect_ms = to_ms(c->opts.connect_timeout);
    if (connect_ms > total_ms) {
        connect_ms = total_ms;
    }
    errbuf[0] = '\0';

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, total_ms);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &rc);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &rc);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

    rv = curl_easy_perform(h);
    if (rv != CURLE_OK) {
        code = map_curl_error(c, p, h, rv, &rc, errbuf, total_ms, res);
        handle_give(c, h, 0);
        apr_pool_destroy(rc.scratch);
        return code;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    handle_give(c, h, 1);

    r = apr_pcalloc(p, sizeof(*r));
    r->status = (int)status;
    r->body = rc.len ? apr_pstrmemdup(p, rc.buf, rc.len) : apr_pstrdup(p, "");
    r->body_len = rc.len;
    r->content_type = rc.content_type[0] ? apr_pstrdup(p, rc.content_type) : NULL;
    r->retry_after = rc.retry_after;
    apr_pool_destroy(rc.scratch);
    res->http_status = r->status;
    res->retry_after = r->retry_after;
    *resp = r;
    return TSL_OK;
}

/* ------------------------------------------------------------ responses */

/* tailscaled's error text: the body without its trailing newline, control
 * characters (which would forge log lines) replaced by spaces, capped. */
static const char *error_text(apr_pool_t *p, const tsl_response *resp)
{
    apr_size_t n = resp->body_len;
    char *t;

    while (n > 0 && (resp->body[n - 1] == '\n' || resp->body[n - 1] == '\r'
                     || resp->body[n - 1] == ' ')) {
        n--;
    }
    /* the body may hold NULs: cut there, as a C string must */
    t = apr_pstrmemdup(p, resp->body, n);
    return tsl_printable(p, t, 1024);
}

tsl_code tsl_result_from_response(tsl_result *res, apr_pool_t *p,
                                  const tsl_response *resp)
{
    const char *text;
    tsl_code code;

    tsl_result_init(res);
    if (!resp) {
        return tsl_result_set(res, p, TSL_ERR_TRANSPORT, "no answer from tailscaled");
    }
    res->http_status = resp->status;
    if (resp->status == 200) {
        return TSL_OK;
    }
    switch (resp->status) {
    case 403: code = TSL_ERR_DENIED; break;
    case 429: code = TSL_ERR_RATE_LIMITED; break;
    default:  code = TSL_ERR_HTTP; break;
    }
    if (code == TSL_ERR_RATE_LIMITED) {
        res->retry_after = resp->retry_after;
    }
    text = error_text(p, resp);
    if (!*text) {
        text = apr_psprintf(p, "tailscaled answered HTTP %d with no text",
                            resp->status);
    }
    return tsl_result_set(res, p, code, "%s", text);
}

const char *tsl_query_escape(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *u;
    char *out, *o;

    if (!s) {
        return "";
    }
    out = o = apr_palloc(p, 3 * strlen(s) + 1);
    for (u = (const unsigned char *)s; *u; u++) {
        if ((*u >= 'A' && *u <= 'Z') || (*u >= 'a' && *u <= 'z')
            || (*u >= '0' && *u <= '9')
            || *u == '-' || *u == '_' || *u == '.' || *u == '~') {
            *o++ = (char)*u;
        }
        else if (*u == ' ') {
            *o++ = '+';
        }
        else {
            *o++ = '%';
            *o++ = hex[*u >> 4];
            *o++ = hex[*u & 0x0f];
        }
    }
    *o = '\0';
    return out;
}
