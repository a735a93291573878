/* Fuzz target: certificate "pair" answers (tsl_cert_pair_parse: split the
 * key PEM from the chain, parse both with OpenSSL, match key and leaf) and
 * tsl_cert_pair_check (names and validity).
 *
 * Two readings of every input:
 *  1. a pair body: parse it; when it parses, check it against each of its
 *     names (must pass at a time inside its validity), against names it
 *     must not cover, and at times outside its validity (must fail).  The
 *     OpenSSL error queue must be empty afterwards (mod_ssl shares it).
 *  2. lines "host\nname\nname...": a synthetic pair with those SAN names,
 *     checked against a naive reference of the wildcard rules.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/err.h>
#include <apr_strings.h>
#include "tsl_cert.h"
#include "fuzz_common.h"

static size_t nodot_len(const char *s)
{
    size_t n = strlen(s);
    return n > 1 && s[n - 1] == '.' ? n - 1 : n;
}

/* Reference for name coverage: exact match ignoring case and one trailing
 * dot, or "*.rest" covering exactly "label.rest" with a non-empty label
 * that holds no '*'. */
static int reference_covers(const char *name, const char *host)
{
    size_t nl = strlen(name), hl = nodot_len(host);
    const char *dot;

    if (nl > 0 && name[nl - 1] == '.') {
        nl--;
    }
    if (nl == hl && strncasecmp(name, host, hl) == 0) {
        return 1;
    }
    if (nl < 3 || name[0] != '*' || name[1] != '.') {
        return 0;
    }
    dot = memchr(host, '.', hl);
    if (!dot || dot == host || memchr(host, '*', (size_t)(dot - host))) {
        return 0;
    }
    return (size_t)(host + hl - dot) == nl - 1 && strncasecmp(dot, name + 1, nl - 1) == 0;
}

static int reference_ok(const apr_array_header_t *names, const char *host)
{
    int i;

    if (!*host) {
        return 0;
    }
    for (i = 0; i < names->nelts; i++) {
        if (reference_covers(APR_ARRAY_IDX(names, i, const char *), host)) {
            return 1;
        }
    }
    return 0;
}

static void check_host(apr_pool_t *p, const tsl_cert_pair *pair, const char *host,
                       apr_time_t now)
{
    tsl_result res;
    tsl_code code = tsl_cert_pair_check(pair, p, host, now, &res);
    int in_time = now >= pair->not_before && now <= pair->not_after;
    int want = reference_ok(pair->names, host) && in_time;

    FZ_CHECK((code == TSL_OK) == want, "check(%s) = %d, reference says %d (%s)", host,
             (int)code, want, res.text);
    FZ_CHECK(res.text != NULL, "result text is NULL");
}

static void exercise(apr_pool_t *p, const tsl_cert_pair *pair)
{
    apr_time_t mid;
    int i;

    FZ_CHECK(pair->key_pem && pair->chain_pem && pair->names && pair->fingerprint
             && strlen(pair->fingerprint) == 64, "pair incomplete");
    mid = pair->not_before + (pair->not_after - pair->not_before) / 2;
    for (i = 0; i < pair->names->nelts; i++) {
        const char *n = APR_ARRAY_IDX(pair->names, i, const char *);
        check_host(p, pair, n, mid);
        check_host(p, pair, apr_pstrcat(p, n, ".", NULL), mid);
        check_host(p, pair, apr_pstrcat(p, "x.", n, NULL), mid);
        check_host(p, pair, n + (n[0] == '*' && n[1] == '.' ? 2 : 0), mid);
        if (pair->not_before > 0) {
            check_host(p, pair, n, pair->not_before - 1);
        }
        if (pair->not_after < APR_INT64_MAX) {
            check_host(p, pair, n, pair->not_after + 1);
        }
    }
    check_host(p, pair, "web1.tail1234.ts.net", mid);
    check_host(p, pair, "*.tail1234.ts.net", mid);
}

static void synthetic(apr_pool_t *p, const uint8_t *data, size_t size)
{
    char *text = apr_pstrmemdup(p, (const char *)data, size), *line, *last = NULL;
    tsl_cert_pair pair;
    const char *host = NULL;
    tsl_result res;

    memset(&pair, 0, sizeof(pair));
    pair.names = apr_array_make(p, 4, sizeof(const char *));
    pair.not_before = 0;
    pair.not_after = APR_INT64_MAX;
    for (line = apr_strtok(text, "\n", &last); line; line = apr_strtok(NULL, "\n", &last)) {
        if (!host) {
            host = line;
        }
        else {
            APR_ARRAY_PUSH(pair.names, const char *) = line;
        }
    }
    if (host) {
        check_host(p, &pair, host, 1);
    }
    FZ_CHECK(tsl_cert_pair_check(&pair, p, "", 1, &res) == TSL_ERR_INVALID, "empty host");
    FZ_CHECK(tsl_cert_pair_check(NULL, p, "a", 1, &res) == TSL_ERR_INVALID, "NULL pair");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_begin();
    char *buf = fz_buf(data, size);
    tsl_cert_pair *pair = NULL;
    tsl_result res;
    tsl_code code;

    code = tsl_cert_pair_parse(p, buf, size, &pair, &res);
    FZ_CHECK(res.text != NULL, "result text is NULL");
    FZ_CHECK(ERR_peek_error() == 0, "OpenSSL error queue not empty after parse (%d)",
             (int)code);
    if (code == TSL_OK) {
        FZ_CHECK(pair != NULL, "TSL_OK without a pair");
        exercise(p, pair);
    }
    else {
        FZ_CHECK(pair == NULL && (code == TSL_ERR_PARSE || code == TSL_ERR_CERT)
                 && *res.text, "bad failure %d", (int)code);
    }
    ERR_clear_error();
    if (size < 4096) {
        synthetic(p, data, size);
    }
    free(buf);
    fz_end(p);
    return 0;
}
