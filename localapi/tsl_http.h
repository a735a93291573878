/* HTTP/1.1 response framing for the LocalAPI transport: an incremental
 * parser with no I/O.  It reads the status line and headers, skips 1xx
 * answers, and collects a body framed by Content-Length, chunked coding or
 * the end of the connection, within a size limit.  No httpd headers here.
 */
#ifndef TSL_HTTP_H
#define TSL_HTTP_H

#include <apr_pools.h>

#define TSL_HTTP_MAX_HEAD  (64 * 1024)  /* status line + headers, per answer */
#define TSL_HTTP_MAX_LINE  1024         /* chunk-size and trailer lines */

typedef enum tsl_http_state {
    TSL_HTTP_MORE = 0,   /* the answer is not complete yet: feed more bytes */
    TSL_HTTP_DONE,       /* a complete answer was read */
    TSL_HTTP_ERROR,      /* not a valid HTTP/1.x answer; see error */
    TSL_HTTP_TOO_LARGE   /* the body exceeds max_body */
} tsl_http_state;

typedef struct tsl_http_parser {
    /* results, valid once DONE */
    int status;                 /* e.g. 200 */
    int keep_alive;             /* the connection may carry another request */
    char content_type[256];     /* "" when absent (cut at 255 bytes) */
    long retry_after;           /* Retry-After in seconds, -1 when absent */
    char *body;                 /* NUL-terminated, from the scratch pool */
    apr_size_t body_len;
    const char *error;          /* why ERROR, static text */
    /* internal */
    apr_pool_t *scratch;
    apr_size_t max_body;
    apr_size_t body_cap;
    int phase;
    int minor;                  /* HTTP/1.<minor> */
    int started;                /* any byte fed */
    apr_size_t remaining;       /* Content-Length or current chunk left */
    char *line;                 /* head or chunk/trailer line being built */
    apr_size_t line_len;
    apr_size_t line_cap;
} tsl_http_parser;

/* Prepare hp for one answer; body and buffers come from scratch, and bodies
 * longer than max_body bytes end in TSL_HTTP_TOO_LARGE. */
void tsl_http_parser_init(tsl_http_parser *hp, apr_pool_t *scratch,
                          apr_size_t max_body);

/* Feed n bytes. *used is how many were consumed (all of them unless DONE
 * came before the end); bytes after the answer make keep_alive 0. */
tsl_http_state tsl_http_parse(tsl_http_parser *hp, const char *data,
                              apr_size_t n, apr_size_t *used);

/* The peer closed the connection: DONE if the body ran to the end of the
 * connection, ERROR (truncated answer) otherwise. */
tsl_http_state tsl_http_parse_eof(tsl_http_parser *hp);

/* True once any byte of an answer has been fed (to tell a closed idle
 * connection from a broken answer). */
int tsl_http_started(const tsl_http_parser *hp);

/* Retry-After value (delta-seconds or HTTP-date) in seconds from now, -1
 * when it is neither. */
long tsl_http_retry_after(const char *value);

#endif
