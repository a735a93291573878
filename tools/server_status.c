/* tsl-check: httpd's server-status?auto page (see server_status.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <apr_time.h>
#include "tsl.h"
#include "server_status.h"

#define MAX_REDIRECTS 3

static server_status_code fail(server_status_error *err, apr_pool_t *p,
                               server_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static server_status_code fail(server_status_error *err, apr_pool_t *p,
                               server_status_code code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    err->code = code;
    err->text = tsl_printable(p, apr_pvsprintf(p, fmt, ap), 512);
    va_end(ap);
    return code;
}

/* ------------------------------------------------------------------ URL */

/* True if the query holds the parameter "auto" (mod_status's own test is a
 * substring; a parameter of that name is what a user writes). */
static int has_auto(const char *query)
{
    const char *s = query;

    while (s && *s) {
        size_t n = strcspn(s, "&");
        if ((n == 4 && strncmp(s, "auto", 4) == 0) || strncmp(s, "auto=", 5) == 0) {
            return 1;
        }
        s = s[n] ? s + n + 1 : NULL;
    }
    return 0;
}

/* The normalized URL and its scheme and host (lowercase), from text; NULL
 * when text is not an http(s) URL. Every libcurl string is freed here. */
static const char *parse_url(apr_pool_t *p, const char *text, const char **scheme,
                             const char **host, server_status_error *err)
{
    CURLU *u = curl_url();
    char *s = NULL, *h = NULL, *q = NULL, *full = NULL;
    const char *out = NULL;
    CURLUcode qrc;

    if (!u) {
        fail(err, p, SERVER_STATUS_INTERNAL, "out of memory");
        return NULL;
    }
    if (curl_url_set(u, CURLUPART_URL, text, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_SCHEME, &s, 0) != CURLUE_OK
        || (strcmp(s, "http") != 0 && strcmp(s, "https") != 0)
        || curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK) {
        fail(err, p, SERVER_STATUS_BAD_URL, "not an http:// or https:// URL: %s", text);
        goto done;
    }
    qrc = curl_url_get(u, CURLUPART_QUERY, &q, 0);
    if ((qrc != CURLUE_OK || !has_auto(q))
        && curl_url_set(u, CURLUPART_QUERY, "auto", CURLU_APPENDQUERY) != CURLUE_OK) {
        fail(err, p, SERVER_STATUS_BAD_URL, "cannot add ?auto to the URL %s", text);
        goto done;
    }
    if (curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
        fail(err, p, SERVER_STATUS_BAD_URL, "not a usable URL: %s", text);
        goto done;
    }
    *scheme = apr_pstrdup(p, s);
    {
        char *lower = apr_pstrdup(p, h), *c;
        for (c = lower; *c; c++) {
            *c = (char)apr_tolower(*c);
        }
        *host = lower;
    }
    out = apr_pstrdup(p, full);
done:
    curl_free(s);
    curl_free(h);
    curl_free(q);
    curl_free(full);
    curl_url_cleanup(u);
    return out;
}

const char *server_status_url(apr_pool_t *p, const char *arg, server_status_error *err)
{
    const char *scheme, *host;

    memset(err, 0, sizeof(*err));
    err->url = arg ? arg : SERVER_STATUS_URL_DEFAULT;
    return parse_url(p, err->url, &scheme, &host, err);
}

/* ----------------------------------------------------------------- fetch */

typedef struct {
    char *buf;
    apr_size_t len, cap;
    int too_large;
} page_buf;

/* Collect the body, aborting the transfer past the limit (also for chunked
 * and close-delimited bodies, which announce no length). Memory comes from
 * malloc so that aborted growth is returned at once. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    page_buf *b = userdata;
    size_t n = size * nmemb;

    if (n == 0) {
        return 0;
    }
    if (n > SERVER_STATUS_MAX_PAGE - b->len) {
        b->too_large = 1;
        return 0;                   /* CURLE_WRITE_ERROR */
    }
    if (b->len + n + 1 > b->cap) {
        apr_size_t cap = b->cap ? b->cap : 16384;
        char *nb;
        while (cap < b->len + n + 1) cap *= 2;
        if (!(nb = realloc(b->buf, cap))) {
            return 0;
        }
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    return n;
}

static long ms_left(apr_time_t deadline)
{
    apr_time_t left = deadline - apr_time_now();
    return left > 1000 ? (long)apr_time_as_msec(left) : 1;
}

/* The failure for a transfer libcurl could not complete. */
static server_status_code transfer_error(apr_pool_t *p, CURLcode rv, const page_buf *b,
                                         const char *errbuf, double timeout,
                                         server_status_error *err)
{
    const char *why = *errbuf ? errbuf : curl_easy_strerror(rv);

    switch (rv) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        return fail(err, p, SERVER_STATUS_UNREACHABLE, "%s", why);
    case CURLE_OPERATION_TIMEDOUT: {
        char secs[32];
        snprintf(secs, sizeof(secs), "%g", timeout);   /* APR's %g drops the 0 of 0.5 */
        return fail(err, p, SERVER_STATUS_UNREACHABLE, "no answer within %s s (%s)",
                    secs, why);
    }
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
        return fail(err, p, SERVER_STATUS_TLS, "%s", why);
    case CURLE_FILESIZE_EXCEEDED:
        return fail(err, p, SERVER_STATUS_TOO_LARGE, "the page is larger than %d bytes",
                    SERVER_STATUS_MAX_PAGE);
    case CURLE_WRITE_ERROR:
        if (b->too_large) {
            return fail(err, p, SERVER_STATUS_TOO_LARGE, "the page is larger than %d bytes",
                        SERVER_STATUS_MAX_PAGE);
        }
        return fail(err, p, SERVER_STATUS_INTERNAL, "out of memory reading the page");
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FAILED_INIT:
        return fail(err, p, SERVER_STATUS_INTERNAL, "%s", why);
    default:
        return fail(err, p, SERVER_STATUS_GARBAGE, "%s", why);
    }
}

/* One GET of url on h; the body in b, the status in *status and a redirect
 * target (allocated from p) in *location. */
static server_status_code get_once(apr_pool_t *p, CURL *h, const char *url,
                                   apr_time_t deadline, double timeout, page_buf *b,
                                   long *status, const char **location,
                                   server_status_error *err)
{
    char errbuf[CURL_ERROR_SIZE];
    char *loc = NULL;
    CURLcode rv;

    b->len = 0;
    b->too_large = 0;
    errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms_left(deadline));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ms_left(deadline));
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    rv = curl_easy_perform(h);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);     /* no pointer into this frame */
    if (rv != CURLE_OK) {
        return transfer_error(p, rv, b, errbuf, timeout, err);
    }
    *status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    *location = NULL;
    if (curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc) {
        *location = apr_pstrdup(p, loc);           /* owned by the handle */
    }
    return SERVER_STATUS_OK;
}

/* The next URL for a redirect from the URL of scheme and host, or NULL and
 * err filled when tsl-check does not follow it. */
static const char *redirect_target(apr_pool_t *p, const char *location, const char *scheme,
                                   const char *host, server_status_error *err)
{
    server_status_error e;
    const char *next, *nscheme, *nhost;

    memset(&e, 0, sizeof(e));
    if (!location) {
        fail(err, p, SERVER_STATUS_HTTP, "HTTP %d without a Location", err->http_status);
        return NULL;
    }
    next = parse_url(p, location, &nscheme, &nhost, &e);
    if (!next) {
        fail(err, p, SERVER_STATUS_REDIRECT, "to %s, which is not an http(s) URL", location);
        return NULL;
    }
    if (strcmp(nhost, host) != 0) {
        fail(err, p, SERVER_STATUS_REDIRECT, "to another host, %s", location);
        return NULL;
    }
    if (strcmp(scheme, "https") == 0 && strcmp(nscheme, "https") != 0) {
        fail(err, p, SERVER_STATUS_REDIRECT, "from https to http, %s", location);
        return NULL;
    }
    return next;
}

server_status_code server_status_cache_get(apr_pool_t *p, const char *url, double timeout,
                                           server_status_cache *out,
                                           server_status_error *err)
{
    const char *scheme, *host, *location = NULL;
    apr_time_t deadline = apr_time_now() + (apr_interval_time_t)(timeout * APR_USEC_PER_SEC);
    page_buf b = { NULL, 0, 0, 0 };
    server_status_code code;
    long status = 0;
    int hops;
    CURL *h;

    memset(err, 0, sizeof(*err));
    err->url = url;
    if (!(url = parse_url(p, url, &scheme, &host, err))) {
        return err->code;
    }
    if (!(h = curl_easy_init())) {
        return fail(err, p, SERVER_STATUS_INTERNAL, "cannot create a libcurl handle");
    }
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);     /* redirect_target() decides */
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");           /* Require local sees us */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "tsl-check/" TSL_VERSION);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)SERVER_STATUS_MAX_PAGE);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);

    for (hops = 0;; hops++) {
        err->url = url;
        code = get_once(p, h, url, deadline, timeout, &b, &status, &location, err);
        if (code != SERVER_STATUS_OK) {
            break;
        }
        err->http_status = (int)status;
        if (status == 200) {
            code = server_status_parse(p, b.buf ? b.buf : "", b.len, out, err);
            break;
        }
        if (status < 300 || status > 399 || status == 304) {
            code = fail(err, p, SERVER_STATUS_HTTP, "HTTP %ld", status);
            break;
        }
        if (hops == MAX_REDIRECTS) {
            code = fail(err, p, SERVER_STATUS_REDIRECT, "more than %d times, last to %s",
                        MAX_REDIRECTS, location ? location : "(no Location)");
            break;
        }
        if (!(url = redirect_target(p, location, scheme, host, err))) {
            code = err->code;
            break;
        }
        scheme = strncmp(url, "https:", 6) == 0 ? "https" : "http";
    }
    curl_easy_cleanup(h);
    free(b.buf);
    return code;
}

/* ----------------------------------------------------------------- parse */

/* One field of the page: its key and where its value goes. */
typedef struct {
    const char *key;
    unsigned long long *count;      /* a count, or */
    const char **text;              /* a text */
    int seen;
} field;

static int parse_count(const char *v, unsigned long long *out)
{
    char *end;

    if (*v < '0' || *v > '9') {
        return 0;
    }
    errno = 0;
    *out = strtoull(v, &end, 10);
    return errno == 0 && *end == '\0';
}

server_status_code server_status_parse(apr_pool_t *p, const char *body, apr_size_t len,
                                       server_status_cache *out, server_status_error *err)
{
    unsigned long long process_entries = 0, shared_entries = 0;
    int status_page = 0, i;
    char *copy, *line, *next;
    field fields[] = {
        { "TailscaleSharedCache", NULL, &out->shared_cache, 0 },
        { "TailscaleSharedCacheEntries", &shared_entries, NULL, 0 },
        { "TailscaleSharedCacheHits", &out->shared_hits, NULL, 0 },
        { "TailscaleSharedCacheMisses", &out->shared_misses, NULL, 0 },
        { "TailscaleSharedCacheWaits", &out->shared_waits, NULL, 0 },
        { "TailscaleSharedCacheUnreadable", &out->shared_unreadable, NULL, 0 },
        { "TailscaleWhoisCalls", &out->whois_calls, NULL, 0 },
        { "TailscaleCacheEntries", &process_entries, NULL, 0 },
    };
    const int n_fields = (int)(sizeof(fields) / sizeof(fields[0]));

    memset(out, 0, sizeof(*out));
    out->shared_entries = out->process_entries = -1;
    if (memchr(body, '\0', len)) {
        return fail(err, p, SERVER_STATUS_GARBAGE, "the page holds NUL bytes");
    }
    copy = apr_pstrmemdup(p, body, len);
    for (line = copy; line; line = next) {
        char *colon, *value;
        size_t n = strcspn(line, "\n");

        next = line[n] ? line + n + 1 : NULL;
        line[n] = '\0';
        if (n && line[n - 1] == '\r') {
            line[n - 1] = '\0';
        }
        if (!(colon = strstr(line, ": "))) {
            continue;               /* the first line is the host name alone */
        }
        *colon = '\0';
        value = colon + 2;
        if (strcmp(line, "Scoreboard") == 0 || strcmp(line, "BusyWorkers") == 0) {
            status_page = 1;
        }
        for (i = 0; i < n_fields; i++) {
            field *f = &fields[i];
            if (strcmp(line, f->key) != 0) {
                continue;
            }
            if (f->seen) {
                return fail(err, p, SERVER_STATUS_GARBAGE, "%s appears twice", f->key);
            }
            f->seen = 1;
            if (f->text) {
                *f->text = tsl_printable(p, value, 64);
            }
            else if (!parse_count(value, f->count)) {
                return fail(err, p, SERVER_STATUS_GARBAGE, "%s is not a count: \"%s\"",
                            f->key, tsl_printable(p, value, 64));
            }
        }
    }
    if (!fields[0].seen) {
        if (!status_page) {
            return fail(err, p, SERVER_STATUS_GARBAGE, "no Scoreboard or BusyWorkers line: "
                        "not a server-status?auto page");
        }
        return fail(err, p, SERVER_STATUS_NOT_OURS, "no TailscaleSharedCache line");
    }
    if (!*out->shared_cache) {
        return fail(err, p, SERVER_STATUS_GARBAGE, "TailscaleSharedCache is empty");
    }
    for (i = 2; i < n_fields - 1; i++) {
        if (!fields[i].seen) {
            return fail(err, p, SERVER_STATUS_GARBAGE, "TailscaleSharedCache without %s",
                        fields[i].key);
        }
    }
    if (shared_entries > (unsigned long long)APR_INT64_MAX
        || process_entries > (unsigned long long)APR_INT64_MAX) {
        return fail(err, p, SERVER_STATUS_GARBAGE, "an entry count out of range");
    }
    if (fields[1].seen) out->shared_entries = (long long)shared_entries;
    if (fields[n_fields - 1].seen) out->process_entries = (long long)process_entries;
    return SERVER_STATUS_OK;
}
