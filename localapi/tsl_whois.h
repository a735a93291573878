/* GET /localapi/v0/whois?addr=... */
#ifndef TSL_WHOIS_H
#define TSL_WHOIS_H

#include "tsl_client.h"
#include "tsl_identity.h"

/* tailscaled's whois text for an address no node owns (after a 404). */
#define TSL_WHOIS_NO_MATCH "no match for IP:port"

/* Ask tailscaled who owns ip:port (port 0: IP only). Only tailscaled's own
 * 404 TSL_WHOIS_NO_MATCH gives TSL_ERR_NOT_FOUND; any other 404 is
 * TSL_ERR_HTTP; every failure keeps tailscaled's status and text. */
tsl_code tsl_whois(tsl_client *c, apr_pool_t *p, const char *ip, int port,
                   tsl_identity **out, tsl_result *res);

/* The same, with CapMap scoped to the destination dst_ip (the address the
 * client connected to, e.g. a Tailscale Services VIP; tailscaled 1.100+;
 * older versions ignore it), within timeout (0: the client's).  dst_ip
 * NULL: no scope, as tsl_whois. */
tsl_code tsl_whois_dst(tsl_client *c, apr_pool_t *p, const char *ip, int port,
                       const char *dst_ip, apr_interval_time_t timeout,
                       tsl_identity **out, tsl_result *res);

#endif
