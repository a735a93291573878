/* mod_authnz_tailscale: SetHandler tailscale-jwks - the public keys that
 * verify Tailscale-Jwt-Assertion as a JWK Set, and an OpenID-style
 * discovery document (issuer, jwks_uri) at a URL ending in
 * /openid-configuration. */
#ifndef AZT_JWKS_H
#define AZT_JWKS_H

#include <httpd.h>

#define AZT_JWKS_HANDLER "tailscale-jwks"

/* handler hook. */
int azt_jwks_handler(request_rec *r);

#endif
