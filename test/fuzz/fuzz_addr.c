/* Fuzz target: peer addresses (tsl_addr_normalize, tsl_addr_format,
 * tsl_addr_is_tailnet, tsl_addr_is_loopback) and the query escaping of the
 * whois "addr" value, on arbitrary strings.
 *
 * Invariants: normalising is idempotent and agrees with inet_pton; the range
 * checks give the same answer for a string and its normal form; format is
 * NULL exactly when normalize is (for a valid port) and reads back as
 * "ip:port" / "[ip]:port" / bare ip; the escaped value only holds
 * unreserved characters and %XX.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "tsl_addr.h"
#include "tsl_client.h"
#include "fuzz_common.h"

static void check_format(apr_pool_t *p, const char *ip, const char *norm, int port)
{
    const char *f = tsl_addr_format(p, ip, port);
    const char *want;

    if (port < 0 || port > 65535 || !norm) {
        FZ_CHECK(f == NULL, "format(%s, %d) = %s, want NULL", ip, port, f);
        return;
    }
    if (port == 0) {
        want = norm;
    }
    else if (strchr(norm, ':')) {
        want = apr_psprintf(p, "[%s]:%d", norm, port);
    }
    else {
        want = apr_psprintf(p, "%s:%d", norm, port);
    }
    FZ_CHECK(f && strcmp(f, want) == 0, "format(%s, %d) = %s, want %s", ip, port,
             f ? f : "NULL", want);
}

static void check_escape(apr_pool_t *p, const char *s)
{
    const char *e = tsl_query_escape(p, s);
    const char *c;

    for (c = e; *c; c++) {
        if (*c == '%') {
            FZ_CHECK(strchr("0123456789ABCDEF", c[1]) && c[1] && strchr("0123456789ABCDEF", c[2])
                     && c[2], "bad escape in %s", e);
            c += 2;
            continue;
        }
        FZ_CHECK((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')
                 || strchr("-_.~+", *c), "unescaped %c in %s", *c, e);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int ports[] = { 0, 1, 443, 65535, 65536, -1, 2147483647 };
    apr_pool_t *p = fz_begin();
    char *ip = fz_cstr(data, size);
    const char *norm, *norm2;
    unsigned char raw[16];
    size_t i;

    norm = tsl_addr_normalize(p, ip);
    if (norm) {
        norm2 = tsl_addr_normalize(p, norm);
        FZ_CHECK(norm2 && strcmp(norm, norm2) == 0, "not idempotent: %s -> %s -> %s", ip,
                 norm, norm2 ? norm2 : "NULL");
        FZ_CHECK(inet_pton(strchr(norm, ':') ? AF_INET6 : AF_INET, norm, raw) == 1,
                 "normal form %s does not parse", norm);
        FZ_CHECK(strncmp(norm, "::ffff:", 7) != 0 || strchr(norm + 7, ':'),
                 "IPv4-mapped form kept: %s", norm);
        FZ_CHECK(tsl_addr_is_tailnet(ip) == tsl_addr_is_tailnet(norm),
                 "is_tailnet differs for %s and %s", ip, norm);
        FZ_CHECK(tsl_addr_is_loopback(ip) == tsl_addr_is_loopback(norm),
                 "is_loopback differs for %s and %s", ip, norm);
        check_escape(p, norm);
    }
    else {
        FZ_CHECK(!tsl_addr_is_tailnet(ip) && !tsl_addr_is_loopback(ip),
                 "%s is not an IP but is in a range", ip);
    }
    for (i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        check_format(p, ip, norm, ports[i]);
    }
    check_escape(p, ip);
    free(ip);
    fz_end(p);
    return 0;
}
