/* HTTP/1.1 response framing (RFC 9112) for answers from tailscaled.
 *
 * tailscaled is Go's net/http server: a status line, headers, then a body
 * with Content-Length (small answers) or chunked coding (large or streamed
 * ones).  The parser is strict where leniency could mis-frame an answer
 * (lengths, chunk sizes, header syntax, transfer codings) and bounded in
 * everything it buffers, because its input is outside input.
 */
#include "config.h"

#include <limits.h>
#include <string.h>
#include <strings.h>
#include <apr_strings.h>
#include <apr_date.h>
#include "tsl_http.h"

enum phase {
    PH_HEAD = 0,     /* status line and headers, up to the empty line */
    PH_BODY_LEN,     /* Content-Length bytes */
    PH_BODY_EOF,     /* everything up to the end of the connection */
    PH_CHUNK_SIZE,   /* a chunk-size line */
    PH_CHUNK_DATA,   /* chunk data */
    PH_CHUNK_END,    /* the CRLF after chunk data */
    PH_TRAILER,      /* trailer lines up to the empty line */
    PH_DONE,
    PH_FAILED,
    PH_TOO_LARGE
};

#define BAD "invalid HTTP answer: "

void tsl_http_parser_init(tsl_http_parser *hp, apr_pool_t *scratch,
                          apr_size_t max_body)
{
    memset(hp, 0, sizeof(*hp));
    hp->scratch = scratch;
    hp->max_body = max_body;
    hp->retry_after = -1;
    hp->phase = PH_HEAD;
}

int tsl_http_started(const tsl_http_parser *hp)
{
    return hp->started;
}

static tsl_http_state fail(tsl_http_parser *hp, const char *why)
{
    hp->error = why;
    hp->phase = PH_FAILED;
    hp->keep_alive = 0;
    return TSL_HTTP_ERROR;
}

static tsl_http_state too_large(tsl_http_parser *hp)
{
    hp->error = "body exceeds the size limit";
    hp->phase = PH_TOO_LARGE;
    hp->keep_alive = 0;
    return TSL_HTTP_TOO_LARGE;
}

/* Append one byte to the line buffer; 0 when that would pass limit. */
static int line_push(tsl_http_parser *hp, char c, apr_size_t limit)
{
    if (hp->line_len + 1 > limit) {
        return 0;
    }
    if (hp->line_len + 2 > hp->line_cap) {
        apr_size_t ncap = hp->line_cap ? hp->line_cap * 2 : 512;
        char *nl;
        if (ncap > limit + 2) {
            ncap = limit + 2;
        }
        nl = apr_palloc(hp->scratch, ncap);
        if (hp->line_len) {
            memcpy(nl, hp->line, hp->line_len);
        }
        hp->line = nl;
        hp->line_cap = ncap;
    }
    hp->line[hp->line_len++] = c;
    hp->line[hp->line_len] = '\0';
    return 1;
}

/* Reserve room for n more body bytes; 0 when the limit would be passed. */
static int body_reserve(tsl_http_parser *hp, apr_size_t n)
{
    apr_size_t need;

    if (n > hp->max_body || hp->body_len > hp->max_body - n) {
        return 0;
    }
    need = hp->body_len + n + 1;
    if (need > hp->body_cap) {
        apr_size_t ncap = hp->body_cap ? hp->body_cap : 4096;
        char *nb;
        while (ncap < need) {
            ncap *= 2;
        }
        nb = apr_palloc(hp->scratch, ncap);
        if (hp->body_len) {
            memcpy(nb, hp->body, hp->body_len);
        }
        hp->body = nb;
        hp->body_cap = ncap;
    }
    return 1;
}

static tsl_http_state finish(tsl_http_parser *hp)
{
    if (!hp->body) {
        hp->body = apr_pcalloc(hp->scratch, 1);
    }
    hp->body[hp->body_len] = '\0';
    hp->phase = PH_DONE;
    return TSL_HTTP_DONE;
}

/* ----------------------------------------------------------------- head */

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Value with optional whitespace trimmed, in place. */
static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t') s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    *e = '\0';
    return s;
}

/* Does the comma-separated list contain token (case-insensitive)? */
static int list_has(const char *list, const char *token)
{
    size_t tl = strlen(token);
    const char *s = list;

    while (*s) {
        const char *e;
        while (*s == ' ' || *s == '\t' || *s == ',') s++;
        e = s;
        while (*e && *e != ',' && *e != ' ' && *e != '\t') e++;
        if ((size_t)(e - s) == tl && strncasecmp(s, token, tl) == 0) {
            return 1;
        }
        s = e;
    }
    return 0;
}

long tsl_http_retry_after(const char *v)
{
    const char *s;
    long secs = 0;

    if (!v || !*v) {
        return -1;
    }
    for (s = v; *s >= '0' && *s <= '9'; s++) {
        if (secs > (LONG_MAX - 9) / 10) {
            secs = LONG_MAX;
            continue;
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

/* Parse a complete head (NUL-terminated in hp->line). */
static tsl_http_state parse_head(tsl_http_parser *hp)
{
    char *cur = hp->line, *line, *nl;
    const char *s;
    int status, have_length = 0, chunked = 0, te_seen = 0, conn_close = 0,
        conn_keep = 0;
    apr_size_t length = 0;

    /* status line: HTTP/1.x SP 3DIGIT [SP reason] */
    nl = strchr(cur, '\n');
    *nl = '\0';
    line = cur;
    cur = nl + 1;
    if (nl > line && nl[-1] == '\r') nl[-1] = '\0';
    if (strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1')
        || line[8] != ' ') {
        return fail(hp, BAD "status line is not HTTP/1.0 or HTTP/1.1");
    }
    hp->minor = line[7] - '0';
    s = line + 9;
    if (!(s[0] >= '1' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9'
          && s[2] >= '0' && s[2] <= '9') || (s[3] != '\0' && s[3] != ' ')) {
        return fail(hp, BAD "status line has no valid status code");
    }
    status = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');

    hp->content_type[0] = '\0';
    hp->retry_after = -1;
    for (;;) {
        char *name, *value, *colon;
        nl = strchr(cur, '\n');
        if (!nl) {
            break;
        }
        *nl = '\0';
        line = cur;
        cur = nl + 1;
        if (nl > line && nl[-1] == '\r') nl[-1] = '\0';
        if (!*line) {
            break;          /* the empty line ending the head */
        }
        if (*line == ' ' || *line == '\t') {
            return fail(hp, BAD "folded header line");
        }
        colon = strchr(line, ':');
        if (!colon || colon == line) {
            return fail(hp, BAD "header line without a name");
        }
        for (name = line; name < colon; name++) {
            if (!is_tchar((unsigned char)*name)) {
                return fail(hp, BAD "invalid character in a header name");
            }
        }
        *colon = '\0';
        name = line;
        value = trim(colon + 1);
        for (s = value; *s; s++) {
            if ((unsigned char)*s < 0x20 && *s != '\t') {
                return fail(hp, BAD "control character in a header value");
            }
        }
        if (strcasecmp(name, "Content-Length") == 0) {
            apr_size_t v = 0;
            if (!*value) {
                return fail(hp, BAD "empty Content-Length");
            }
            for (s = value; *s; s++) {
                if (*s < '0' || *s > '9') {
                    return fail(hp, BAD "Content-Length is not a number");
                }
                if (v > ((apr_size_t)-1 - 9) / 10) {
                    return too_large(hp);
                }
                v = v * 10 + (apr_size_t)(*s - '0');
            }
            if (have_length && v != length) {
                return fail(hp, BAD "conflicting Content-Length headers");
            }
            have_length = 1;
            length = v;
        }
        else if (strcasecmp(name, "Transfer-Encoding") == 0) {
            if (te_seen || strcasecmp(value, "chunked") != 0) {
                return fail(hp, BAD "transfer coding other than chunked");
            }
            te_seen = chunked = 1;
        }
        else if (strcasecmp(name, "Connection") == 0) {
            conn_close |= list_has(value, "close");
            conn_keep |= list_has(value, "keep-alive");
        }
        else if (strcasecmp(name, "Content-Type") == 0) {
            apr_cpystrn(hp->content_type, value, sizeof(hp->content_type));
        }
        else if (strcasecmp(name, "Retry-After") == 0) {
            hp->retry_after = tsl_http_retry_after(value);
        }
    }

    if (status < 200) {
        if (status == 101) {
            return fail(hp, BAD "unexpected 101 protocol switch");
        }
        hp->line_len = 0;   /* 1xx interim answer: the real one follows */
        return TSL_HTTP_MORE;
    }
    hp->status = status;
    hp->keep_alive = !conn_close && (hp->minor == 1 || conn_keep);
    hp->line_len = 0;
    if (status == 204 || status == 304) {
        return finish(hp);
    }
    if (chunked) {
        if (have_length) {
            hp->keep_alive = 0;   /* both framings given: do not trust the rest */
        }
        hp->phase = PH_CHUNK_SIZE;
        return TSL_HTTP_MORE;
    }
    if (have_length) {
        if (!body_reserve(hp, length)) {
            return too_large(hp);
        }
        if (length == 0) {
            return finish(hp);
        }
        hp->remaining = length;
        hp->phase = PH_BODY_LEN;
        return TSL_HTTP_MORE;
    }
    hp->keep_alive = 0;
    hp->phase = PH_BODY_EOF;
    return TSL_HTTP_MORE;
}

/* ---------------------------------------------------------------- chunks */

static tsl_http_state chunk_size_line(tsl_http_parser *hp)
{
    const char *s = hp->line;
    apr_size_t size = 0;
    int digits = 0;

    for (; *s; s++) {
        int v;
        if (*s >= '0' && *s <= '9') v = *s - '0';
        else if (*s >= 'a' && *s <= 'f') v = *s - 'a' + 10;
        else if (*s >= 'A' && *s <= 'F') v = *s - 'A' + 10;
        else break;
        if (size > ((apr_size_t)-1 >> 4)) {
            return too_large(hp);
        }
        size = size * 16 + (apr_size_t)v;
        digits++;
    }
    while (*s == ' ' || *s == '\t') s++;
    if (!digits || (*s && *s != ';' && !(*s == '\r' && s[1] == '\0'))) {
        return fail(hp, BAD "invalid chunk size line");
    }
    hp->line_len = 0;
    if (size == 0) {
        hp->remaining = 0;   /* trailer bytes seen */
        hp->phase = PH_TRAILER;
        return TSL_HTTP_MORE;
    }
    if (!body_reserve(hp, size)) {
        return too_large(hp);
    }
    hp->remaining = size;
    hp->phase = PH_CHUNK_DATA;
    return TSL_HTTP_MORE;
}

/* ----------------------------------------------------------------- parse */

tsl_http_state tsl_http_parse(tsl_http_parser *hp, const char *data,
                              apr_size_t n, apr_size_t *used)
{
    apr_size_t i = 0;
    tsl_http_state st = TSL_HTTP_MORE;

    if (n) {
        hp->started = 1;
    }
    while (i < n && st == TSL_HTTP_MORE) {
        char c;
        apr_size_t take;

        if (data[i] == '\0' && (hp->phase == PH_HEAD || hp->phase == PH_CHUNK_SIZE
                                || hp->phase == PH_CHUNK_END || hp->phase == PH_TRAILER)) {
            return fail(hp, BAD "NUL byte in the header section or a chunk line");
        }
        switch (hp->phase) {
        case PH_HEAD:
            c = data[i++];
            if (hp->line_len == 0 && (c == '\r' || c == '\n')) {
                return fail(hp, BAD "answer starts with an empty line");
            }
            if (!line_push(hp, c, TSL_HTTP_MAX_HEAD)) {
                return fail(hp, BAD "status line and headers too long");
            }
            if (c == '\n') {
                const char *l = hp->line;
                apr_size_t k = hp->line_len;
                if ((k >= 2 && l[k - 2] == '\n')
                    || (k >= 3 && l[k - 2] == '\r' && l[k - 3] == '\n')) {
                    st = parse_head(hp);
                }
            }
            break;
        case PH_BODY_LEN:
        case PH_CHUNK_DATA:
            take = n - i < hp->remaining ? n - i : hp->remaining;
            memcpy(hp->body + hp->body_len, data + i, take);
            hp->body_len += take;
            hp->remaining -= take;
            i += take;
            if (hp->remaining == 0) {
                if (hp->phase == PH_BODY_LEN) {
                    st = finish(hp);
                }
                else {
                    hp->phase = PH_CHUNK_END;
                }
            }
            break;
        case PH_BODY_EOF:
            take = n - i;
            if (!body_reserve(hp, take)) {
                return too_large(hp);
            }
            memcpy(hp->body + hp->body_len, data + i, take);
            hp->body_len += take;
            i += take;
            break;
        case PH_CHUNK_SIZE:
            c = data[i++];
            if (c == '\n') {
                st = chunk_size_line(hp);
            }
            else if (!line_push(hp, c, TSL_HTTP_MAX_LINE)) {
                return fail(hp, BAD "chunk size line too long");
            }
            break;
        case PH_CHUNK_END:
            c = data[i++];
            if (c == '\n') {
                if (hp->line_len > 1 || (hp->line_len == 1 && hp->line[0] != '\r')) {
                    return fail(hp, BAD "chunk data not followed by CRLF");
                }
                hp->line_len = 0;
                hp->phase = PH_CHUNK_SIZE;
            }
            else if (!line_push(hp, c, 1)) {
                return fail(hp, BAD "chunk data not followed by CRLF");
            }
            break;
        case PH_TRAILER:
            c = data[i++];
            if (++hp->remaining > TSL_HTTP_MAX_HEAD) {
                return fail(hp, BAD "trailer section too long");
            }
            if (c == '\n') {
                int empty = hp->line_len == 0
                            || (hp->line_len == 1 && hp->line[0] == '\r');
                hp->line_len = 0;
                if (empty) {
                    st = finish(hp);
                }
            }
            else if (!line_push(hp, c, TSL_HTTP_MAX_LINE)) {
                return fail(hp, BAD "trailer line too long");
            }
            break;
        case PH_DONE:
            st = TSL_HTTP_DONE;
            break;
        case PH_TOO_LARGE:
            return TSL_HTTP_TOO_LARGE;
        default:
            return TSL_HTTP_ERROR;
        }
    }
    if (used) {
        *used = i;
    }
    if (st == TSL_HTTP_DONE && i < n) {
        hp->keep_alive = 0;     /* bytes nobody asked for: drop the connection */
    }
    return st;
}

tsl_http_state tsl_http_parse_eof(tsl_http_parser *hp)
{
    switch (hp->phase) {
    case PH_DONE:
        return TSL_HTTP_DONE;
    case PH_BODY_EOF:
        hp->keep_alive = 0;
        return finish(hp);
    case PH_FAILED:
        return TSL_HTTP_ERROR;
    case PH_TOO_LARGE:
        return TSL_HTTP_TOO_LARGE;
    default:
        return fail(hp, hp->started ? "connection closed in the middle of the answer"
                                    : "connection closed without an answer");
    }
}
