/* Peer address handling for whois: tailscaled wants "ip:port" with IPv6 in
 * brackets, IPv4-mapped IPv6 unmapped, or a bare IP (port 0).
 */
#ifndef TSL_ADDR_H
#define TSL_ADDR_H

#include <apr_pools.h>

/* Normalise an IP literal: strips brackets and IPv6 zone-less "::ffff:" mapping
 * (returns the IPv4 form), lower-cases IPv6. NULL if ip is not an IP literal. */
const char *tsl_addr_normalize(apr_pool_t *p, const char *ip);

/* The whois "addr" value for ip and port: "100.64.1.2:443", "[fd7a::1]:443",
 * or the bare IP when port is 0. NULL if ip is not an IP literal. */
const char *tsl_addr_format(apr_pool_t *p, const char *ip, int port);

/* True if ip (normalised) lies in Tailscale's ranges 100.64.0.0/10 or
 * fd7a:115c:a1e0::/48, i.e. identifies a node by address alone. */
int tsl_addr_is_tailnet(const char *ip);

/* True if ip (normalised) is a loopback address (127.0.0.0/8, ::1). */
int tsl_addr_is_loopback(const char *ip);

#endif
