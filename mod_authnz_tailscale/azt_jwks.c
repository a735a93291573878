/* mod_authnz_tailscale: the JWK Set handler (see azt_jwks.h). */
#include <stdlib.h>
#include <string.h>

#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_protocol.h>
#include <apr_strings.h>
#include <jansson.h>

#include "azt_config.h"
#include "azt_keys.h"
#include "azt_jwks.h"

#define DISCOVERY_NAME "openid-configuration"
#define JWKS_NAME "jwks.json"
/* Verifiers refetch at most this often; a new key is published (second)
 * at least this long before it signs. */
#define JWKS_MAX_AGE "public, max-age=300"

/* issuer and jwks_uri: the JWK Set is this handler's location with
 * "jwks.json" in place of "openid-configuration". */
static const char *discovery(request_rec *r, size_t dir_len)
{
    const char *jwks_uri = ap_construct_url(
        r->pool, apr_pstrcat(r->pool, apr_pstrmemdup(r->pool, r->uri, dir_len), JWKS_NAME,
                             NULL), r);
    json_t *doc = json_pack("{s:s,s:s,s:[s],s:[s],s:[s]}",
                            "issuer", azt_conf_assertion_issuer(r), "jwks_uri", jwks_uri,
                            "id_token_signing_alg_values_supported", "ES256",
                            "response_types_supported", "id_token",
                            "subject_types_supported", "public");
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    const char *out = text ? apr_pstrdup(r->pool, text) : NULL;

    free(text);
    json_decref(doc);
    return out;
}

int azt_jwks_handler(request_rec *r)
{
    const char *slash, *body;

    if (!r->handler || strcmp(r->handler, AZT_JWKS_HANDLER) != 0) {
        return DECLINED;
    }
    r->allowed |= (AP_METHOD_BIT << M_GET);
    if (r->method_number != M_GET) {
        return HTTP_METHOD_NOT_ALLOWED;
    }
    slash = strrchr(r->uri, '/');
    if (slash && strcmp(slash + 1, DISCOVERY_NAME) == 0) {
        body = discovery(r, (size_t)(slash + 1 - r->uri));
    }
    else {
        body = azt_keys_jwks(r->pool, azt_keys_of(azt_server_conf_get(r->server)));
    }
    if (!body) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ap_set_content_type(r, "application/json");
    apr_table_setn(r->headers_out, "Cache-Control", JWKS_MAX_AGE);
    ap_set_content_length(r, strlen(body));
    if (!r->header_only) {
        ap_rputs(body, r);
    }
    return OK;
}
