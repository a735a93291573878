/* Certificate pairs from tailscaled: split, parse, match and judge them.
 *
 * A "pair" answer is the private key PEM immediately followed by the chain
 * PEM (leaf first).  OpenSSL parses both; every OpenSSL object is freed and
 * the thread's OpenSSL error queue is left empty on every path, because
 * mod_ssl shares that queue in the same process.
 */
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include "tsl_cert.h"

#define TSL_PEM_FILE_MAX (1024 * 1024)

/* ---------------------------------------------------------------- split */

/* Position just past the first "-----END ...PRIVATE KEY-----" line, or NULL. */
static const char *key_block_end(const char *s, const char *e)
{
    static const char endtag[] = "-----END ";
    static const char keytail[] = "PRIVATE KEY-----";
    const size_t tl = sizeof(keytail) - 1;
    const char *p = s;

    while (p < e) {
        const char *m = NULL, *q, *eol;
        size_t rem = (size_t)(e - p);
        /* memmem is GNU; do it by hand to stay portable */
        for (q = p; q + (sizeof(endtag) - 1) <= p + rem; q++) {
            if (memcmp(q, endtag, sizeof(endtag) - 1) == 0) {
                m = q;
                break;
            }
        }
        if (!m) {
            return NULL;
        }
        eol = memchr(m, '\n', (size_t)(e - m));
        if (!eol) {
            eol = e;
        }
        q = eol;
        if (q > m && q[-1] == '\r') {
            q--;
        }
        if ((size_t)(q - m) >= tl && memcmp(q - tl, keytail, tl) == 0) {
            return eol < e ? eol + 1 : e;
        }
        p = m + 1;
    }
    return NULL;
}

static int contains(const char *s, apr_size_t len, const char *needle)
{
    size_t n = strlen(needle);
    apr_size_t i;

    for (i = 0; i + n <= len; i++) {
        if (memcmp(s + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

static int count_of(const char *s, apr_size_t len, const char *needle)
{
    size_t n = strlen(needle);
    apr_size_t i;
    int c = 0;

    for (i = 0; i + n <= len; i++) {
        if (memcmp(s + i, needle, n) == 0) {
            c++;
        }
    }
    return c;
}

/* ---------------------------------------------------------------- OpenSSL */

static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;   /* never prompt on a terminal for an encrypted key */
}

static const char *ssl_reason(apr_pool_t *p)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    return r ? apr_psprintf(p, " (%s)", r) : "";
}

static apr_time_t asn1_to_apr(const ASN1_TIME *t, int *ok)
{
    struct tm tm;
    time_t secs;

    memset(&tm, 0, sizeof(tm));
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
        *ok = 0;
        return 0;
    }
    secs = timegm(&tm);
    *ok = 1;
    return apr_time_from_sec((apr_time_t)secs);
}

static void leaf_names(apr_pool_t *p, X509 *leaf, apr_array_header_t *names)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    int i;

    if (gens) {
        for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
            if (g->type == GEN_DNS) {
                const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
                int l = ASN1_STRING_length(g->d.dNSName);
                if (d && l > 0 && !memchr(d, 0, (size_t)l)) {
                    APR_ARRAY_PUSH(names, const char *) =
                        apr_pstrndup(p, (const char *)d, (apr_size_t)l);
                }
            }
        }
        GENERAL_NAMES_free(gens);
    }
    if (names->nelts == 0) {
        X509_NAME *subj = X509_get_subject_name(leaf);
        int idx = subj ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
        if (idx >= 0) {
            ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
            unsigned char *utf8 = NULL;
            int l = d ? ASN1_STRING_to_UTF8(&utf8, d) : -1;
            if (l > 0 && !memchr(utf8, 0, (size_t)l)) {
                APR_ARRAY_PUSH(names, const char *) =
                    apr_pstrndup(p, (const char *)utf8, (apr_size_t)l);
            }
            OPENSSL_free(utf8);
        }
    }
    ERR_clear_error();
}

static const char *names_str(apr_pool_t *p, const apr_array_header_t *names)
{
    const char *s = "[";
    int i;

    for (i = 0; names && i < names->nelts; i++) {
        s = apr_pstrcat(p, s, i ? " " : "",
                        tsl_printable(p, APR_ARRAY_IDX(names, i, const char *), 255),
                        NULL);
    }
    return apr_pstrcat(p, s, "]", NULL);
}

/* Parse a key PEM and a chain PEM (from a pair answer or two files). what
 * names the source in error texts. */
static tsl_code parse_parts(apr_pool_t *p, const char *key, apr_size_t key_len,
                            const char *chain, apr_size_t chain_len,
                            const char *what, tsl_cert_pair **out,
                            tsl_result *res)
{
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    X509 *leaf = NULL, *x;
    tsl_cert_pair *pair;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;
    int begins, ncerts = 0, ok_nb, ok_na;
    tsl_code code = TSL_OK;
    char *hex;

    ERR_clear_error();
    if (count_of(key, key_len, "-----BEGIN ") != 1
        || !contains(key, key_len, " PRIVATE KEY-----")) {
        return tsl_result_set(res, p, TSL_ERR_CERT,
                              "%s: the key part is not exactly one private key "
                              "PEM block", what);
    }
    if (contains(chain, chain_len, " PRIVATE KEY-----")) {
        return tsl_result_set(res, p, TSL_ERR_CERT,
                              "%s: unexpected private key in the certificate "
                              "chain", what);
    }
    begins = count_of(chain, chain_len, "-----BEGIN ");
    if (begins == 0) {
        return tsl_result_set(res, p, TSL_ERR_CERT,
                              "%s: no certificate after the private key", what);
    }
    if (begins != count_of(chain, chain_len, "-----BEGIN CERTIFICATE-----")) {
        return tsl_result_set(res, p, TSL_ERR_CERT,
                              "%s: the chain holds PEM blocks other than "
                              "certificates", what);
    }
    if (key_len > INT_MAX || chain_len > INT_MAX) {
        return tsl_result_set(res, p, TSL_ERR_CERT, "%s: too large", what);
    }

    bio = BIO_new_mem_buf(key, (int)key_len);
    if (bio) {
        pkey = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL);
        BIO_free(bio);
    }
    if (!pkey) {
        return tsl_result_set(res, p, TSL_ERR_CERT,
                              "%s: cannot parse the private key%s", what,
                              ssl_reason(p));
    }

    pair = apr_pcalloc(p, sizeof(*pair));
    pair->key_pem = apr_pstrmemdup(p, key, key_len);
    pair->chain_pem = apr_pstrmemdup(p, chain, chain_len);
    pair->names = apr_array_make(p, 4, sizeof(const char *));

    bio = BIO_new_mem_buf(chain, (int)chain_len);
    if (!bio) {
        code = tsl_result_set(res, p, TSL_ERR_CERT, "%s: out of memory", what);
        goto done;
    }
    while ((x = PEM_read_bio_X509(bio, NULL, no_password, NULL)) != NULL) {
        if (!leaf) {
            leaf = x;
        }
        else {
            X509_free(x);
        }
        ncerts++;
    }
    BIO_free(bio);
    if (ncerts != begins) {
        code = tsl_result_set(res, p, TSL_ERR_CERT,
                              "%s: certificate %d of the chain does not parse%s",
                              what, ncerts + 1, ssl_reason(p));
        goto done;
    }
    ERR_clear_error();   /* the read loop ends on a "no start line" error */

    leaf_names(p, leaf, pair->names);
    if (X509_check_private_key(leaf, pkey) != 1) {
        code = tsl_result_set(res, p, TSL_ERR_CERT,
                              "certificate for %s does not match its private key",
                              pair->names->nelts
                                  ? tsl_printable(p, APR_ARRAY_IDX(pair->names, 0,
                                                                   const char *), 255)
                                  : "(no name)");
        goto done;
    }
    pair->not_before = asn1_to_apr(X509_get0_notBefore(leaf), &ok_nb);
    pair->not_after = asn1_to_apr(X509_get0_notAfter(leaf), &ok_na);
    if (!ok_nb || !ok_na) {
        code = tsl_result_set(res, p, TSL_ERR_CERT,
                              "%s: the certificate's validity dates do not parse",
                              what);
        goto done;
    }
    if (X509_digest(leaf, EVP_sha256(), md, &mdlen) != 1) {
        code = tsl_result_set(res, p, TSL_ERR_CERT,
                              "%s: cannot compute the fingerprint%s", what,
                              ssl_reason(p));
        goto done;
    }
    hex = apr_palloc(p, 2 * mdlen + 1);
    for (i = 0; i < mdlen; i++) {
        static const char digits[] = "0123456789abcdef";
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 0xf];
    }
    hex[2 * mdlen] = '\0';
    pair->fingerprint = hex;
    *out = pair;

done:
    X509_free(leaf);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return code;
}

tsl_code tsl_cert_pair_parse(apr_pool_t *p, const char *body, apr_size_t len,
                             tsl_cert_pair **out, tsl_result *res)
{
    const char *split;

    tsl_result_init(res);
    *out = NULL;
    if (!body || len == 0) {
        return tsl_result_set(res, p, TSL_ERR_PARSE, "certificate answer is empty");
    }
    split = key_block_end(body, body + len);
    if (!split) {
        return tsl_result_set(res, p, TSL_ERR_PARSE,
                              "certificate answer has no private key PEM block");
    }
    return parse_parts(p, body, (apr_size_t)(split - body), split,
                       len - (apr_size_t)(split - body), "certificate answer",
                       out, res);
}

/* ---------------------------------------------------------------- checks */

static const char *fmt_time(apr_pool_t *p, apr_time_t t)
{
    apr_time_exp_t tm;
    char buf[64];
    apr_size_t n = 0;

    apr_time_exp_gmt(&tm, t);
    apr_strftime(buf, &n, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    buf[n < sizeof(buf) ? n : sizeof(buf) - 1] = '\0';
    return apr_pstrdup(p, buf);
}

/* True if SAN name covers host (both without trailing dot). */
static int name_covers(const char *name, const char *host, size_t hlen)
{
    size_t nlen = strlen(name);

    if (nlen > 0 && name[nlen - 1] == '.') {
        nlen--;
    }
    if (nlen == hlen && strncasecmp(name, host, hlen) == 0) {
        return 1;
    }
    if (nlen > 2 && name[0] == '*' && name[1] == '.') {
        /* "*.a.b" covers exactly one extra non-empty label: "x.a.b" */
        const char *dot = memchr(host, '.', hlen);
        if (dot && dot > host && (size_t)(host + hlen - dot) == nlen - 1
            && strncasecmp(dot, name + 1, nlen - 1) == 0
            && !memchr(host, '*', (size_t)(dot - host))) {
            return 1;
        }
    }
    return 0;
}

tsl_code tsl_cert_pair_check(const tsl_cert_pair *pair, apr_pool_t *p,
                             const char *domain, apr_time_t now,
                             tsl_result *res)
{
    size_t hlen;
    int i, covered = 0;

    tsl_result_init(res);
    if (!pair || !domain || !*domain) {
        return tsl_result_set(res, p, TSL_ERR_INVALID,
                              "no certificate or no domain to check");
    }
    hlen = strlen(domain);
    if (hlen > 1 && domain[hlen - 1] == '.') {
        hlen--;
    }
    for (i = 0; pair->names && i < pair->names->nelts && !covered; i++) {
        covered = name_covers(APR_ARRAY_IDX(pair->names, i, const char *),
                              domain, hlen);
    }
    if (!covered) {
        return tsl_result_set(res, p, TSL_ERR_CERT,
                              "certificate names %s do not cover %.*s",
                              names_str(p, pair->names), (int)hlen, domain);
    }
    if (now < pair->not_before) {
        return tsl_result_set(res, p, TSL_ERR_CERT,
                              "certificate for %.*s is not valid before %s",
                              (int)hlen, domain, fmt_time(p, pair->not_before));
    }
    if (now > pair->not_after) {
        return tsl_result_set(res, p, TSL_ERR_CERT,
                              "certificate for %.*s expired at %s",
                              (int)hlen, domain, fmt_time(p, pair->not_after));
    }
    return TSL_OK;
}

/* The subject of x for error texts. */
static const char *subject_str(apr_pool_t *p, X509 *x)
{
    char buf[256];

    if (!X509_NAME_oneline(X509_get_subject_name(x), buf, sizeof(buf))) {
        return "(unknown)";
    }
    return tsl_printable(p, buf, 255);
}

static const char *issuer_str(apr_pool_t *p, X509 *x)
{
    char buf[256];

    if (!X509_NAME_oneline(X509_get_issuer_name(x), buf, sizeof(buf))) {
        return "(unknown)";
    }
    return tsl_printable(p, buf, 255);
}

static int has_dns_san(X509 *leaf)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    int i, found = 0;

    for (i = 0; gens && i < sk_GENERAL_NAME_num(gens) && !found; i++) {
        found = sk_GENERAL_NAME_value(gens, i)->type == GEN_DNS;
    }
    GENERAL_NAMES_free(gens);
    return found;
}

/* Why certificate i of chain is not issued by certificate i + 1 (or, for
 * the last one, why it lacks its issuer), or NULL. */
static const char *link_problem(apr_pool_t *p, STACK_OF(X509) *chain, int i)
{
    X509 *x = sk_X509_value(chain, i);
    int n = sk_X509_num(chain);

    if (i + 1 < n) {
        X509 *up = sk_X509_value(chain, i + 1);
        EVP_PKEY *key = X509_get0_pubkey(up);

        if (X509_check_issued(up, x) != X509_V_OK) {
            return apr_psprintf(p, "certificate %d of the chain (%s) is not issued by "
                                "certificate %d (%s), but by %s", i + 1,
                                subject_str(p, x), i + 2, subject_str(p, up),
                                issuer_str(p, x));
        }
        if (!key || X509_verify(x, key) != 1) {
            return apr_psprintf(p, "the signature of certificate %d of the chain (%s) "
                                "does not verify with certificate %d (%s)", i + 1,
                                subject_str(p, x), i + 2, subject_str(p, up));
        }
        return NULL;
    }
    if (n == 1 && X509_check_issued(x, x) != X509_V_OK) {
        return apr_psprintf(p, "the chain holds only the leaf: the intermediate "
                            "certificate that issued it (%s) is missing, and clients "
                            "cannot verify it", issuer_str(p, x));
    }
    return NULL;
}

tsl_code tsl_cert_pair_check_chain(const tsl_cert_pair *pair, apr_pool_t *p,
                                   tsl_result *res)
{
    STACK_OF(X509) *chain;
    BIO *bio;
    X509 *x;
    const char *bad = NULL;
    int i;

    tsl_result_init(res);
    if (!pair || !pair->chain_pem || strlen(pair->chain_pem) > INT_MAX) {
        return tsl_result_set(res, p, TSL_ERR_INVALID, "no certificate chain to check");
    }
    if (!(chain = sk_X509_new_null())) {
        return tsl_result_set(res, p, TSL_ERR_CERT, "out of memory");
    }
    ERR_clear_error();
    bio = BIO_new_mem_buf(pair->chain_pem, (int)strlen(pair->chain_pem));
    while (bio && (x = PEM_read_bio_X509(bio, NULL, no_password, NULL)) != NULL) {
        if (!sk_X509_push(chain, x)) {
            X509_free(x);
            break;
        }
    }
    BIO_free(bio);
    ERR_clear_error();
    if (sk_X509_num(chain) == 0) {
        bad = "the chain holds no certificate";
    }
    else if (!has_dns_san(sk_X509_value(chain, 0))) {
        bad = apr_psprintf(p, "the leaf (%s) has no DNS names in a subjectAltName "
                           "(a name only in the CN is not accepted by clients)",
                           subject_str(p, sk_X509_value(chain, 0)));
    }
    for (i = 0; !bad && i < sk_X509_num(chain); i++) {
        bad = link_problem(p, chain, i);
    }
    sk_X509_pop_free(chain, X509_free);
    ERR_clear_error();
    if (bad) {
        return tsl_result_set(res, p, TSL_ERR_CERT, "%s", bad);
    }
    return TSL_OK;
}

/* ---------------------------------------------------------------- files */

static tsl_code read_pem_file(apr_pool_t *p, const char *fname,
                              const char **data, apr_size_t *len,
                              tsl_result *res)
{
    apr_file_t *f;
    apr_finfo_t fi;
    apr_status_t rv;
    apr_size_t got = 0;
    char *buf, err[256];

    rv = apr_file_open(&f, fname, APR_FOPEN_READ | APR_FOPEN_BINARY, 0, p);
    if (rv != APR_SUCCESS) {
        return tsl_result_set(res, p, TSL_ERR_CERT, "cannot open %s: %s", fname,
                              apr_strerror(rv, err, sizeof(err)));
    }
    rv = apr_file_info_get(&fi, APR_FINFO_SIZE, f);
    if (rv != APR_SUCCESS || fi.size <= 0 || fi.size > TSL_PEM_FILE_MAX) {
        apr_file_close(f);
        return tsl_result_set(res, p, TSL_ERR_CERT, "%s is empty, unreadable or "
                              "larger than %d bytes", fname, TSL_PEM_FILE_MAX);
    }
    buf = apr_palloc(p, (apr_size_t)fi.size + 1);
    rv = apr_file_read_full(f, buf, (apr_size_t)fi.size, &got);
    apr_file_close(f);
    if (rv != APR_SUCCESS && rv != APR_EOF) {
        return tsl_result_set(res, p, TSL_ERR_CERT, "cannot read %s: %s", fname,
                              apr_strerror(rv, err, sizeof(err)));
    }
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return TSL_OK;
}

tsl_code tsl_cert_pair_load(apr_pool_t *p, const char *key_file,
                            const char *chain_file, tsl_cert_pair **out,
                            tsl_result *res)
{
    const char *key, *chain;
    apr_size_t key_len, chain_len;
    tsl_code code;

    tsl_result_init(res);
    *out = NULL;
    if ((code = read_pem_file(p, key_file, &key, &key_len, res)) != TSL_OK
        || (code = read_pem_file(p, chain_file, &chain, &chain_len, res)) != TSL_OK) {
        return code;
    }
    return parse_parts(p, key, key_len, chain, chain_len,
                       apr_psprintf(p, "%s + %s", key_file, chain_file), out, res);
}

/* ---------------------------------------------------------------- fetch */

/* Path-escape a domain: RFC 3986 unreserved characters and '*' literal (so
 * the daemon's decoded path reads "*.x" for a wildcard), the rest %XX. */
static const char *path_escape(apr_pool_t *p, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, 3 * n + 1), *o = out;
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
            || c == '-' || c == '.' || c == '_' || c == '~' || c == '*') {
            *o++ = (char)c;
        }
        else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 0xf];
        }
    }
    *o = '\0';
    return out;
}

tsl_code tsl_cert_fetch(tsl_client *c, apr_pool_t *p, const char *domain,
                        apr_interval_time_t min_validity,
                        apr_interval_time_t timeout, tsl_cert_pair **out,
                        tsl_result *res)
{
    const char *path, *dom;
    size_t n;
    tsl_response *resp;
    tsl_code code;
    int status;

    tsl_result_init(res);
    *out = NULL;
    n = domain ? strlen(domain) : 0;
    if (n > 0 && domain[n - 1] == '.') {
        n--;
    }
    if (n == 0) {
        return tsl_result_set(res, p, TSL_ERR_INVALID, "no domain to fetch a "
                              "certificate for");
    }
    dom = apr_pstrndup(p, domain, n);
    path = apr_pstrcat(p, "cert/", path_escape(p, dom, n), "?type=pair", NULL);
    if (min_validity > 0) {
        apr_int64_t secs = (min_validity + APR_USEC_PER_SEC - 1) / APR_USEC_PER_SEC;
        path = apr_psprintf(p, "%s&min_validity=%" APR_INT64_T_FMT "s", path, secs);
    }
    code = tsl_client_get(c, p, path, timeout, &resp, res);
    if (code != TSL_OK) {
        return code;
    }
    status = resp->status;
    if (status != 200) {
        return tsl_result_from_response(res, p, resp);
    }
    code = tsl_cert_pair_parse(p, resp->body, resp->body_len, out, res);
    if (code == TSL_OK) {
        code = tsl_cert_pair_check_chain(*out, p, res);
    }
    if (code == TSL_OK) {
        code = tsl_cert_pair_check(*out, p, dom, apr_time_now(), res);
    }
    if (code != TSL_OK) {
        *out = NULL;
    }
    res->http_status = status;
    return code;
}
