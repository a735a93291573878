/* GET /localapi/v0/status?peers=false, reduced to what a web server needs. */
#include <string.h>
#include <strings.h>
#include <jansson.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include "tsl_addr.h"
#include "tsl_status.h"
#include "tsl_json.h"

static const char *strip_dot(apr_pool_t *p, const char *s)
{
    size_t n = strlen(s);

    if (n > 0 && s[n - 1] == '.') {
        return apr_pstrndup(p, s, n - 1);
    }
    return s;
}

static const char *st_object(json_t *root, const char *key, json_t **out)
{
    json_t *v = json_object_get(root, key);

    *out = NULL;
    if (!v || json_is_null(v)) {
        return NULL;
    }
    if (!json_is_object(v)) {
        return key;
    }
    *out = v;
    return NULL;
}

/* "svc:" and one DNS label (tailcfg.ServiceName). */
static int service_name_ok(const char *s)
{
    size_t i, n;

    if (strncmp(s, "svc:", 4) != 0) {
        return 0;
    }
    s += 4;
    n = strlen(s);
    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-') {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (!apr_isalnum(s[i]) && s[i] != '-') {
            return 0;
        }
    }
    return 1;
}

/* Self.CapMap["service-host"]: an array of objects, each mapping service
 * names to their VIP addresses (tailcfg.ServiceIPMappings). */
static const char *fill_services(apr_pool_t *p, json_t *self, tsl_status *st)
{
    json_t *capmap = self ? json_object_get(self, "CapMap") : NULL;
    json_t *host, *elem, *ips, *ip;
    const char *name;
    size_t i, j;

    if (!capmap || json_is_null(capmap)) {
        return NULL;
    }
    if (!json_is_object(capmap)) {
        return "Self.CapMap is not an object";
    }
    host = json_object_get(capmap, "service-host");
    if (!host || json_is_null(host)) {
        return NULL;
    }
    if (!json_is_array(host)) {
        return "Self.CapMap[\"service-host\"] is not an array";
    }
    json_array_foreach(host, i, elem) {
        if (!json_is_object(elem)) {
            return "an element of Self.CapMap[\"service-host\"] is not an object";
        }
        json_object_foreach(elem, name, ips) {
            tsl_service *svc;

            if (!service_name_ok(name)) {
                return "Self.CapMap[\"service-host\"] names a service that is not "
                       "svc:<DNS label>";
            }
            if (!json_is_array(ips)) {
                return apr_psprintf(p, "Self.CapMap[\"service-host\"]: the addresses of "
                                    "%s are not an array", name);
            }
            svc = apr_array_push(st->services);
            svc->name = apr_pstrdup(p, name);
            svc->vips = apr_array_make(p, (int)json_array_size(ips), sizeof(const char *));
            json_array_foreach(ips, j, ip) {
                const char *norm = json_is_string(ip)
                                   ? tsl_addr_normalize(p, json_string_value(ip)) : NULL;
                if (!norm) {
                    return apr_psprintf(p, "Self.CapMap[\"service-host\"]: an address of "
                                        "%s is not an IP address", name);
                }
                APR_ARRAY_PUSH(svc->vips, const char *) = norm;
            }
        }
    }
    return NULL;
}

static const char *fill_status(apr_pool_t *p, json_t *root, tsl_status *st)
{
    json_t *self, *tn;
    const char *err, *dns, *suffix;

    if (!json_is_object(root)) {
        return "status answer is not a JSON object";
    }
    if ((err = st_object(root, "Self", &self))
        || (err = st_object(root, "CurrentTailnet", &tn))) {
        return apr_psprintf(p, "status answer: %s is not an object", err);
    }
    if ((err = tsl_json_string(p, "status", root, "", "Version", 0, &st->version))
        || (err = tsl_json_string(p, "status", root, "", "BackendState", 1, &st->backend_state))
        || (err = tsl_json_string(p, "status", self, "Self.", "DNSName", 0, &dns))
        || (err = tsl_json_string(p, "status", tn, "CurrentTailnet.", "Name", 0, &st->tailnet_name))
        || (err = tsl_json_string(p, "status", tn, "CurrentTailnet.", "MagicDNSSuffix", 0,
                            &st->magic_dns_suffix))
        || (err = tsl_json_string(p, "status", root, "", "MagicDNSSuffix", 0, &suffix))
        || (err = tsl_json_strings(p, "status", root, "", "CertDomains", &st->cert_domains))
        || (err = tsl_json_strings(p, "status", root, "", "TailscaleIPs", &st->self_ips))) {
        return err;
    }
    if (!*st->backend_state) {
        return "status answer has an empty BackendState";
    }
    st->self_dns_name = strip_dot(p, dns);
    if (!*st->magic_dns_suffix) {
        st->magic_dns_suffix = suffix;   /* older daemons, or no CurrentTailnet */
    }
    st->magic_dns_suffix = strip_dot(p, st->magic_dns_suffix);
    /* Not understood service-host leaves the rest of the status usable. */
    st->services = apr_array_make(p, 2, sizeof(tsl_service));
    if ((st->services_error = fill_services(p, self, st))) {
        apr_array_clear(st->services);
    }
    return NULL;
}

tsl_code tsl_status_parse(apr_pool_t *p, const char *json, apr_size_t len,
                          tsl_status **out, tsl_result *res)
{
    json_t *root;
    tsl_status *st;
    const char *err;

    tsl_result_init(res);
    *out = NULL;
    if (tsl_json_load(p, "status", json, len, &root, res) != TSL_OK) {
        return res->code;
    }
    st = apr_pcalloc(p, sizeof(*st));
    err = fill_status(p, root, st);
    json_decref(root);
    if (err) {
        return tsl_result_set(res, p, TSL_ERR_PARSE, "%s", err);
    }
    *out = st;
    return TSL_OK;
}

tsl_code tsl_status_get(tsl_client *c, apr_pool_t *p, tsl_status **out,
                        tsl_result *res)
{
    tsl_response *resp;
    tsl_code code;
    int status;

    *out = NULL;
    code = tsl_client_get(c, p, "status?peers=false", 0, &resp, res);
    if (code != TSL_OK) {
        return code;
    }
    status = resp->status;
    if (status != 200) {
        return tsl_result_from_response(res, p, resp);
    }
    code = tsl_status_parse(p, resp->body, resp->body_len, out, res);
    res->http_status = status;
    return code;
}

int tsl_status_cert_domain_ok(const tsl_status *st, const char *domain)
{
    size_t n;
    int i, wildcard;

    if (!st || !st->cert_domains || !domain) {
        return 0;
    }
    n = strlen(domain);
    if (n > 0 && domain[n - 1] == '.') {
        n--;
    }
    wildcard = n > 2 && domain[0] == '*' && domain[1] == '.';
    for (i = 0; i < st->cert_domains->nelts; i++) {
        const char *d = APR_ARRAY_IDX(st->cert_domains, i, const char *);
        size_t dn = strlen(d);
        if (dn > 0 && d[dn - 1] == '.') {
            dn--;
        }
        if (dn == 0) {
            continue;
        }
        if (dn == n && strncasecmp(d, domain, n) == 0) {
            return 1;
        }
        if (wildcard && dn == n - 2 && strncasecmp(d, domain + 2, dn) == 0) {
            return 1;
        }
    }
    return 0;
}

const char *tsl_status_service_at(const tsl_status *st, const char *addr)
{
    int i, j;

    for (i = 0; st && st->services && addr && i < st->services->nelts; i++) {
        const tsl_service *svc = &APR_ARRAY_IDX(st->services, i, tsl_service);

        for (j = 0; j < svc->vips->nelts; j++) {
            if (!strcmp(APR_ARRAY_IDX(svc->vips, j, const char *), addr)) {
                return svc->name;
            }
        }
    }
    return NULL;
}

/* Go's %q for one string: printable ASCII as is, ", \ and the rest escaped. */
static const char *go_quote(apr_pool_t *p, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    char *out = apr_palloc(p, 4 * strlen(s) + 3), *o = out;
    const unsigned char *u;

    *o++ = '"';
    for (u = (const unsigned char *)s; *u; u++) {
        if (*u == '"' || *u == '\\') {
            *o++ = '\\';
            *o++ = (char)*u;
        }
        else if (*u >= 0x20 && *u != 0x7f) {
            *o++ = (char)*u;   /* UTF-8 of printable runes stays as is */
        }
        else {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[*u >> 4];
            *o++ = hex[*u & 0xf];
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

const char *tsl_status_cert_domains_str(apr_pool_t *p, const tsl_status *st)
{
    const char *s = "[";
    int i;

    for (i = 0; st && st->cert_domains && i < st->cert_domains->nelts; i++) {
        s = apr_pstrcat(p, s, i ? " " : "",
                        go_quote(p, APR_ARRAY_IDX(st->cert_domains, i, const char *)),
                        NULL);
    }
    return apr_pstrcat(p, s, "]", NULL);
}
