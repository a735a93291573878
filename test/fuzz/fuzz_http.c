/* Fuzz target: HTTP/1.1 answer framing (tsl_http_parse), the first parser
 * every byte from tailscaled's socket goes through.
 *
 * The first input byte picks the body limit and the read size; the rest is
 * the answer.  It is parsed twice, all at once and in reads of that size
 * (as recv() may split it), and both must agree on the outcome, status,
 * body and keep-alive.  A finished answer has a status of 200-599 and a
 * NUL-terminated body within the limit; an error has a reason.
 */
#include <stdlib.h>
#include <string.h>
#include "tsl_http.h"
#include "fuzz_common.h"

static tsl_http_state feed(tsl_http_parser *hp, apr_pool_t *p, const char *data, size_t size,
                           size_t step, apr_size_t max)
{
    tsl_http_state st = TSL_HTTP_MORE;
    size_t off = 0;

    tsl_http_parser_init(hp, p, max);
    while (off < size && st == TSL_HTTP_MORE) {
        size_t n = size - off > step ? step : size - off;
        apr_size_t used = 0;
        st = tsl_http_parse(hp, data + off, n, &used);
        FZ_CHECK(used <= n, "used %zu of %zu", (size_t)used, n);
        FZ_CHECK(st != TSL_HTTP_MORE || used == n, "MORE but only %zu of %zu used", (size_t)used, n);
        off += used;
    }
    if (st == TSL_HTTP_DONE && off < size) {
        apr_size_t used = 1;
        /* what a reader does with the rest of its buffer */
        FZ_CHECK(tsl_http_parse(hp, data + off, size - off, &used) == TSL_HTTP_DONE && used == 0,
                 "bytes after a finished answer were consumed");
        FZ_CHECK(!hp->keep_alive, "keep-alive despite bytes after the answer");
    }
    if (st == TSL_HTTP_MORE) {
        st = tsl_http_parse_eof(hp);
        FZ_CHECK(st != TSL_HTTP_MORE, "MORE after EOF");
    }
    return st;
}

static void check_one(const tsl_http_parser *hp, tsl_http_state st, apr_size_t max)
{
    if (st == TSL_HTTP_DONE) {
        FZ_CHECK(hp->status >= 200 && hp->status <= 599, "status %d", hp->status);
        FZ_CHECK(hp->body && hp->body_len <= max && hp->body[hp->body_len] == '\0',
                 "body %zu bytes over limit %zu or unterminated", (size_t)hp->body_len, (size_t)max);
        FZ_CHECK(strlen(hp->content_type) < sizeof(hp->content_type), "content type overrun");
        FZ_CHECK(hp->retry_after >= -1, "retry_after %ld", hp->retry_after);
    }
    else {
        FZ_CHECK(st == TSL_HTTP_ERROR || st == TSL_HTTP_TOO_LARGE, "state %d", (int)st);
        FZ_CHECK(hp->error && *hp->error && !hp->keep_alive, "failure without reason");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const apr_size_t limits[4] = { 16, 256, 4096, 1024 * 1024 };
    apr_pool_t *p;
    char *buf;
    tsl_http_parser whole, split;
    tsl_http_state a, b;
    apr_size_t max;
    size_t step;

    if (size < 1) {
        return 0;
    }
    p = fz_begin();
    max = limits[data[0] & 3];
    step = (size_t)(data[0] >> 2) + 1;
    buf = fz_buf(data + 1, size - 1);
    a = feed(&whole, p, buf, size - 1, size, max);
    b = feed(&split, p, buf, size - 1, step, max);
    check_one(&whole, a, max);
    check_one(&split, b, max);
    FZ_CHECK(a == b, "whole gives %d, reads of %zu give %d", (int)a, step, (int)b);
    if (a == TSL_HTTP_DONE) {
        FZ_CHECK(whole.status == split.status && whole.body_len == split.body_len
                 && memcmp(whole.body, split.body, whole.body_len) == 0
                 && whole.keep_alive == split.keep_alive
                 && strcmp(whole.content_type, split.content_type) == 0,
                 "whole and split readings differ");
    }
    free(buf);
    fz_end(p);
    return 0;
}
