/* GET /localapi/v0/whois?addr=<ip[:port]> */
#include <apr_strings.h>
#include "tsl_whois.h"
#include "tsl_addr.h"

tsl_code tsl_whois(tsl_client *c, apr_pool_t *p, const char *ip, int port,
                   tsl_identity **out, tsl_result *res)
{
    return tsl_whois_dst(c, p, ip, port, NULL, 0, out, res);
}

tsl_code tsl_whois_dst(tsl_client *c, apr_pool_t *p, const char *ip, int port,
                       const char *dst_ip, apr_interval_time_t timeout,
                       tsl_identity **out, tsl_result *res)
{
    const char *addr;
    tsl_response *resp;
    tsl_code code;
    int status;

    tsl_result_init(res);
    *out = NULL;
    addr = tsl_addr_format(p, ip, port);
    if (!addr) {
        return tsl_result_set(res, p, TSL_ERR_INVALID,
                              "whois: \"%s\" port %d is not an IP address and port",
                              ip ? ip : "", port);
    }
    code = tsl_client_get(c, p, apr_pstrcat(p, "whois?addr=",
                                            tsl_query_escape(p, addr),
                                            dst_ip ? "&dst_ip=" : "",
                                            dst_ip ? tsl_query_escape(p, dst_ip) : "",
                                            NULL),
                          timeout, &resp, res);
    if (code != TSL_OK) {
        return code;
    }
    status = resp->status;
    if (status != 200) {
        code = tsl_result_from_response(res, p, resp);
        /* Only tailscaled's own answer says "not a peer": a 404 from another
         * program on the socket (docker, a proxy: "404 page not found") or
         * with any other text is an error like any other. */
        if (status == 404 && !strcmp(res->text, TSL_WHOIS_NO_MATCH)) {
            res->code = code = TSL_ERR_NOT_FOUND;
        }
        return code;
    }
    code = tsl_identity_parse(p, resp->body, resp->body_len, out, res);
    res->http_status = status;
    return code;
}
