/* LocalAPI transport: HTTP/1.1 over tailscaled's unix socket.
 *
 * The modules only ever send a GET to one local daemon, so the transport is
 * a plain socket client: connect with a deadline, write the request, read
 * the answer through tsl_http's framing parser under one overall deadline.
 * Idle keep-alive connections are kept on a mutex-protected stack so
 * concurrent threads each take their own; a kept connection that the daemon
 * closed meanwhile is detected and the (idempotent) GET is sent once more on
 * a fresh connection.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>
#include "tsl_client.h"
#include "tsl_http.h"

#define TSL_USER_AGENT "mod_tailscale-localapi/0.1.0"

struct tsl_client {
    apr_pool_t *pool;
    const char *socket_path;
    tsl_client_options opts;
#if APR_HAS_THREADS
    apr_thread_mutex_t *mutex;
#endif
    int *idle;                /* stack of idle connected fds, opts.max_idle slots */
    int n_idle;
};

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
    *path = apr_pstrdup(p, rest);
    return TSL_OK;
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
        close(c->idle[i]);
        c->idle[i] = -1;
    }
    c->n_idle = 0;
    return APR_SUCCESS;
}

tsl_client *tsl_client_create(apr_pool_t *p, const char *socket_path,
                              const tsl_client_options *opts)
{
    tsl_client *c = apr_pcalloc(p, sizeof(*c));

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
    c->idle = apr_pcalloc(p, sizeof(int) * (apr_size_t)(c->opts.max_idle + 1));
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

/* An idle connection that is still open and quiet, or -1.  One the daemon
 * closed (readable: EOF) or wrote to unasked is dropped. */
static int conn_take(tsl_client *c)
{
    for (;;) {
        int fd = -1;
        struct pollfd pfd;

        client_lock(c);
        if (c->n_idle > 0) {
            fd = c->idle[--c->n_idle];
        }
        client_unlock(c);
        if (fd < 0) {
            return -1;
        }
        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, 0) == 0) {
            return fd;
        }
        close(fd);
    }
}

/* Keep a connection for reuse, or close it when the stack is full. */
static void conn_give(tsl_client *c, int fd)
{
    client_lock(c);
    if (c->n_idle < c->opts.max_idle) {
        c->idle[c->n_idle++] = fd;
        fd = -1;
    }
    client_unlock(c);
    if (fd >= 0) {
        close(fd);
    }
}

/* ------------------------------------------------------------------ I/O */

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

/* Wait until fd is ready for events or the deadline passes: 0 or ETIMEDOUT
 * (or poll's errno). */
static int wait_fd(int fd, short events, apr_time_t deadline)
{
    for (;;) {
        struct pollfd pfd;
        apr_time_t left = deadline - apr_time_now();
        long ms;
        int rv;

        if (left <= 0) {
            return ETIMEDOUT;
        }
        ms = to_ms(left);
        pfd.fd = fd;
        pfd.events = events;
        pfd.revents = 0;
        rv = poll(&pfd, 1, ms > INT_MAX ? INT_MAX : (int)ms);
        if (rv > 0) {
            return 0;
        }
        if (rv < 0 && errno != EINTR) {
            return errno;
        }
    }
}

/* Connect to the socket within connect_ms; the fd is non-blocking. */
static tsl_code conn_open(tsl_client *c, apr_pool_t *p, long connect_ms,
                          int *out, tsl_result *res)
{
    struct sockaddr_un sa;
    struct timeval tv;
    size_t len = strlen(c->socket_path);
    int fd, rv, err, fl;

    *out = -1;
    if (len >= sizeof(sa.sun_path)) {
        return tsl_result_set(res, p, TSL_ERR_INVALID,
                              "tailscaled socket path %s is longer than the "
                              "%d bytes a unix socket address holds",
                              c->socket_path, (int)sizeof(sa.sun_path) - 1);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, c->socket_path, len + 1);

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return tsl_result_set(res, p, TSL_ERR_CONNECT,
                              "cannot create a socket for %s: %s",
                              c->socket_path, errno_text(p, errno));
    }
    /* a blocking connect to a unix socket only waits while the daemon's
     * accept backlog is full; SO_SNDTIMEO bounds that wait */
    tv.tv_sec = connect_ms / 1000;
    tv.tv_usec = (connect_ms % 1000) * 1000;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    do {
        rv = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    } while (rv != 0 && errno == EINTR);
    if (rv != 0) {
        err = errno;
        close(fd);
        if (err == ENOENT) {
            return tsl_result_set(res, p, TSL_ERR_SOCKET_MISSING,
                                  "tailscaled socket %s does not exist",
                                  c->socket_path);
        }
        if (err == EAGAIN || err == EINPROGRESS || err == ETIMEDOUT) {
            return tsl_result_set(res, p, TSL_ERR_TIMEOUT,
                                  "tailscaled on %s did not accept a connection "
                                  "within %ld ms", c->socket_path, connect_ms);
        }
        return tsl_result_set(res, p, TSL_ERR_CONNECT,
                              "cannot connect to tailscaled socket %s: %s",
                              c->socket_path, errno_text(p, err));
    }
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        err = errno;
        close(fd);
        return tsl_result_set(res, p, TSL_ERR_CONNECT,
                              "cannot configure the socket for %s: %s",
                              c->socket_path, errno_text(p, err));
    }
    *out = fd;
    return TSL_OK;
}

/* Write all of buf before the deadline: 0 or an errno (ETIMEDOUT). */
static int send_all(int fd, const char *buf, apr_size_t len, apr_time_t deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (apr_size_t)n;
        }
        else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int err = wait_fd(fd, POLLOUT, deadline);
            if (err) {
                return err;
            }
        }
        else if (n < 0 && errno != EINTR) {
            return errno;
        }
    }
    return 0;
}

/* Read one answer into hp before the deadline: 0 with hp's final state in
 * *st, or an errno (ETIMEDOUT, ECONNRESET, ...). */
static int read_answer(int fd, tsl_http_parser *hp, apr_time_t deadline,
                       tsl_http_state *st)
{
    char buf[16384];

    *st = TSL_HTTP_MORE;
    while (*st == TSL_HTTP_MORE) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n > 0) {
            *st = tsl_http_parse(hp, buf, (apr_size_t)n, NULL);
        }
        else if (n == 0) {
            *st = tsl_http_parse_eof(hp);
        }
        else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int err = wait_fd(fd, POLLIN, deadline);
            if (err) {
                return err;
            }
        }
        else if (errno != EINTR) {
            return errno;
        }
    }
    return 0;
}

/* --------------------------------------------------------------- request */

tsl_code tsl_client_get(tsl_client *c, apr_pool_t *p, const char *path_query,
                        apr_interval_time_t timeout, tsl_response **resp,
                        tsl_result *res)
{
    struct stat st;
    apr_pool_t *scratch;
    tsl_http_parser hp;
    tsl_http_state hst = TSL_HTTP_ERROR;
    apr_time_t deadline;
    const char *req;
    long total_ms, connect_ms;
    int attempt, fd = -1, err = 0;
    tsl_response *r;
    tsl_code code = TSL_OK;

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
    if (stat(c->socket_path, &st) != 0) {
        err = errno;
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
    if (apr_pool_create(&scratch, p) != APR_SUCCESS) {
        return tsl_result_set(res, p, TSL_ERR_TRANSPORT, "out of memory");
    }

    total_ms = to_ms(timeout > 0 ? timeout : c->opts.timeout);
    connect_ms = to_ms(c->opts.connect_timeout);
    if (connect_ms > total_ms) {
        connect_ms = total_ms;
    }
    deadline = apr_time_now() + apr_time_from_msec(total_ms);
    /* tailscaled accepts exactly this Host; never Origin or Referer */
    req = apr_pstrcat(scratch, "GET /localapi/v0/", path_query, " HTTP/1.1\r\n"
                      "Host: " TSL_LOCALAPI_HOST "\r\n"
                      "User-Agent: " TSL_USER_AGENT "\r\n"
                      "Accept: */*\r\n\r\n", NULL);

    /* a kept connection may have been closed by the daemon a moment ago:
     * then, and only before any answer byte, the GET goes once more on a
     * fresh connection */
    for (attempt = 0; attempt < 2; attempt++) {
        int reused;

        fd = attempt == 0 ? conn_take(c) : -1;
        reused = fd >= 0;
        if (!reused) {
            code = conn_open(c, p, connect_ms, &fd, res);
            if (code != TSL_OK) {
                break;
            }
        }
        tsl_http_parser_init(&hp, scratch, c->opts.max_response);
        err = send_all(fd, req, strlen(req), deadline);
        if (!err) {
            err = read_answer(fd, &hp, deadline, &hst);
        }
        if (reused && !tsl_http_started(&hp)
            && (err == EPIPE || err == ECONNRESET
                || (!err && hst == TSL_HTTP_ERROR))) {
            close(fd);
            fd = -1;
            continue;
        }
        break;
    }

    if (code == TSL_OK) {
        if (err == ETIMEDOUT) {
            code = tsl_result_set(res, p, TSL_ERR_TIMEOUT,
                                  "tailscaled on %s did not answer within %ld ms",
                                  c->socket_path, total_ms);
        }
        else if (err) {
            code = tsl_result_set(res, p, TSL_ERR_TRANSPORT,
                                  "talking to tailscaled on %s failed: %s",
                                  c->socket_path, errno_text(p, err));
        }
        else if (hst == TSL_HTTP_TOO_LARGE) {
            code = tsl_result_set(res, p, TSL_ERR_TOO_LARGE,
                                  "answer from tailscaled on %s exceeds the "
                                  "limit of %" APR_SIZE_T_FMT " bytes",
                                  c->socket_path, c->opts.max_response);
        }
        else if (hst != TSL_HTTP_DONE) {
            code = tsl_result_set(res, p, TSL_ERR_TRANSPORT,
                                  "talking to tailscaled on %s failed: %s",
                                  c->socket_path,
                                  hp.error ? hp.error : "no answer");
        }
    }
    if (fd >= 0) {
        if (code == TSL_OK && hp.keep_alive && c->opts.max_idle > 0) {
            conn_give(c, fd);
        }
        else {
            close(fd);
        }
    }
    if (code != TSL_OK) {
        apr_pool_destroy(scratch);
        return code;
    }

    r = apr_pcalloc(p, sizeof(*r));
    r->status = hp.status;
    r->body = apr_pstrmemdup(p, hp.body, hp.body_len);
    r->body_len = hp.body_len;
    r->content_type = hp.content_type[0] ? apr_pstrdup(p, hp.content_type) : NULL;
    r->retry_after = hp.retry_after;
    apr_pool_destroy(scratch);
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
    case 404: code = TSL_ERR_NOT_FOUND; break;
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
