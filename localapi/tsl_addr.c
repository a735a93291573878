/* IP literals for whois: normalisation, "ip:port" formatting, range checks. */
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <apr_strings.h>
#include "tsl_addr.h"

/* Parse an IP literal (optionally bracketed IPv6) into raw bytes. Returns the
 * family (AF_INET/AF_INET6) or 0. IPv4-mapped IPv6 is returned as AF_INET. */
static int addr_parse(const char *ip, unsigned char out[16])
{
    char buf[INET6_ADDRSTRLEN + 2];
    size_t n;
    struct in_addr a4;
    struct in6_addr a6;

    if (!ip) {
        return 0;
    }
    n = strlen(ip);
    if (n == 0 || n >= sizeof(buf)) {
        return 0;
    }
    if (ip[0] == '[') {
        if (n < 3 || ip[n - 1] != ']') {
            return 0;
        }
        memcpy(buf, ip + 1, n - 2);
        buf[n - 2] = '\0';
        if (!strchr(buf, ':')) {
            return 0; /* brackets are for IPv6 only */
        }
    }
    else {
        memcpy(buf, ip, n + 1);
    }
    if (inet_pton(AF_INET, buf, &a4) == 1) {
        memcpy(out, &a4, 4);
        return AF_INET;
    }
    /* inet_pton rejects zones ("%eth0"), ports and host names. */
    if (inet_pton(AF_INET6, buf, &a6) == 1) {
        static const unsigned char mapped[12] = {0,0,0,0,0,0,0,0,0,0,0xff,0xff};
        if (memcmp(a6.s6_addr, mapped, sizeof(mapped)) == 0) {
            memcpy(out, a6.s6_addr + 12, 4);
            return AF_INET;
        }
        memcpy(out, a6.s6_addr, 16);
        return AF_INET6;
    }
    return 0;
}

/* Decimal digits of v (0..65535) at out; returns the end. */
static char *put_uint(char *out, unsigned v)
{
    char tmp[5];
    int n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) {
        *out++ = tmp[--n];
    }
    return out;
}

/* The canonical text of a parsed address into text (INET6_ADDRSTRLEN):
 * dotted quad written here (glibc's inet_ntop goes through sprintf, and this
 * runs for every new connection), IPv6 by inet_ntop (RFC 5952 form). */
static int addr_text(int af, const unsigned char *raw, char *text, size_t size)
{
    if (af == AF_INET) {
        char *o = text;
        int i;
        for (i = 0; i < 4; i++) {
            if (i) {
                *o++ = '.';
            }
            o = put_uint(o, raw[i]);
        }
        *o = '\0';
        return 1;
    }
    return inet_ntop(af, raw, text, (socklen_t)size) != NULL;
}

const char *tsl_addr_normalize(apr_pool_t *p, const char *ip)
{
    unsigned char raw[16];
    char text[INET6_ADDRSTRLEN];
    int af = addr_parse(ip, raw);

    if (!af || !addr_text(af, raw, text, sizeof(text))) {
        return NULL;
    }
    return apr_pstrdup(p, text);
}

const char *tsl_addr_format(apr_pool_t *p, const char *ip, int port)
{
    unsigned char raw[16];
    char text[INET6_ADDRSTRLEN + 8], *o = text;
    int af;

    if (port < 0 || port > 65535) {
        return NULL;
    }
    af = addr_parse(ip, raw);
    /* Hot path (one call per new connection): one copy, no printf. */
    if (af == AF_INET6 && port) {
        *o++ = '[';
    }
    if (!af || !addr_text(af, raw, o, INET6_ADDRSTRLEN)) {
        return NULL;
    }
    if (port) {
        o += strlen(o);
        if (af == AF_INET6) {
            *o++ = ']';
        }
        *o++ = ':';
        o = put_uint(o, (unsigned)port);
        *o = '\0';
    }
    return apr_pstrdup(p, text);
}

int tsl_addr_is_tailnet(const char *ip)
{
    unsigned char raw[16];
    int af = addr_parse(ip, raw);

    if (af == AF_INET) {
        /* 100.64.0.0/10 */
        return raw[0] == 100 && (raw[1] & 0xc0) == 64;
    }
    if (af == AF_INET6) {
        /* fd7a:115c:a1e0::/48 */
        static const unsigned char prefix[6] = {0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0};
        return memcmp(raw, prefix, sizeof(prefix)) == 0;
    }
    return 0;
}

int tsl_addr_is_loopback(const char *ip)
{
    unsigned char raw[16];
    int af = addr_parse(ip, raw);

    if (af == AF_INET) {
        return raw[0] == 127;
    }
    if (af == AF_INET6) {
        static const unsigned char one[16] = {0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1};
        return memcmp(raw, one, 16) == 0;
    }
    return 0;
}
