/* Fuzz target: status answer (tsl_status_parse) and the cert-domain checks
 * mod_md_tailscale makes with it.
 *
 * Two readings of every input:
 *  1. the input is a status body: parse it; for each CertDomain d check that
 *     d, "d.", upper-cased d and "*.d" are accepted, and that "x.d" is not
 *     (unless "x.d" is itself listed); format the domains for errors.
 *  2. the input is lines "domain\ncertdomain\ncertdomain...": a synthetic
 *     status with those cert domains, checked against a naive reference.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <apr_strings.h>
#include "tsl_status.h"
#include "fuzz_common.h"

static size_t nodot_len(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && s[n - 1] == '.' ? n - 1 : n;
}

/* Reference for tsl_status_cert_domain_ok, written independently. */
static int reference_ok(const apr_array_header_t *domains, const char *domain)
{
    size_t n = nodot_len(domain);
    int i;

    for (i = 0; i < domains->nelts; i++) {
        const char *d = APR_ARRAY_IDX(domains, i, const char *);
        size_t dn = nodot_len(d);
        if (dn == 0) {
            continue;
        }
        if (dn == n && strncasecmp(d, domain, n) == 0) {
            return 1;
        }
        if (n > 2 && domain[0] == '*' && domain[1] == '.' && n - 2 == dn
            && strncasecmp(d, domain + 2, dn) == 0) {
            return 1;
        }
    }
    return 0;
}

static void check_domain(const tsl_status *st, const char *domain)
{
    int got = tsl_status_cert_domain_ok(st, domain);
    int want = reference_ok(st->cert_domains, domain);

    FZ_CHECK(got == want, "cert_domain_ok(%s) = %d, reference says %d", domain, got, want);
}

static void exercise(apr_pool_t *p, const tsl_status *st)
{
    const char *s;
    int i;

    FZ_CHECK(st->version && st->backend_state && *st->backend_state && st->self_dns_name
             && st->tailnet_name && st->magic_dns_suffix && st->cert_domains
             && st->self_ips, "status has a NULL member");
    for (i = 0; i < st->cert_domains->nelts; i++) {
        const char *d = APR_ARRAY_IDX(st->cert_domains, i, const char *);
        char *upper = apr_pstrdup(p, d), *u;
        for (u = upper; *u; u++) {
            *u = (char)toupper((unsigned char)*u);
        }
        if (nodot_len(d) > 0) {
            FZ_CHECK(tsl_status_cert_domain_ok(st, d), "listed domain %s refused", d);
            FZ_CHECK(tsl_status_cert_domain_ok(st, upper), "upper-case %s refused", upper);
            FZ_CHECK(tsl_status_cert_domain_ok(st, apr_pstrcat(p, "*.", d, NULL)),
                     "wildcard of %s refused", d);
        }
        check_domain(st, d);
        check_domain(st, apr_pstrcat(p, d, ".", NULL));
        check_domain(st, apr_pstrcat(p, "x.", d, NULL));
        check_domain(st, apr_pstrcat(p, "*.", d, NULL));
        check_domain(st, apr_pstrcat(p, "*", d, NULL));
    }
    check_domain(st, "");
    check_domain(st, ".");
    check_domain(st, "*.");
    check_domain(st, st->self_dns_name);
    check_domain(st, st->magic_dns_suffix);
    FZ_CHECK(!tsl_status_cert_domain_ok(st, NULL), "NULL domain accepted");
    s = tsl_status_cert_domains_str(p, st);
    FZ_CHECK(s && s[0] == '[' && s[strlen(s) - 1] == ']', "domains_str: %s", s);
}

static void synthetic(apr_pool_t *p, const uint8_t *data, size_t size)
{
    char *text = apr_pstrmemdup(p, (const char *)data, size), *line, *last = NULL;
    tsl_status st;
    const char *domain = NULL;

    memset(&st, 0, sizeof(st));
    st.cert_domains = apr_array_make(p, 4, sizeof(const char *));
    for (line = apr_strtok(text, "\n", &last); line; line = apr_strtok(NULL, "\n", &last)) {
        if (!domain) {
            domain = line;
        }
        else {
            APR_ARRAY_PUSH(st.cert_domains, const char *) = line;
        }
    }
    if (domain) {
        check_domain(&st, domain);
    }
    (void)tsl_status_cert_domains_str(p, &st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p = fz_begin();
    char *buf = fz_buf(data, size);
    tsl_status *st = NULL;
    tsl_result res;
    tsl_code code;

    code = tsl_status_parse(p, buf, size, &st, &res);
    FZ_CHECK(res.text != NULL, "result text is NULL");
    if (code == TSL_OK) {
        FZ_CHECK(st != NULL, "TSL_OK without a status");
        exercise(p, st);
    }
    else {
        FZ_CHECK(st == NULL && code == TSL_ERR_PARSE && *res.text, "bad failure %d", (int)code);
    }
    if (size < 4096) {
        synthetic(p, data, size);
    }
    free(buf);
    fz_end(p);
    return 0;
}
