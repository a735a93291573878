/* mod_authnz_tailscale: the signed identity assertion for backends
 * (AuthTailscaleAssertion): an ES256 JWT with tsidp-style claims, reused
 * per process while it would say exactly the same and has most of its
 * lifetime left, so that signing costs next to nothing per request. */
#ifndef AZT_ASSERTION_H
#define AZT_ASSERTION_H

#include <httpd.h>
#include "tsl_identity.h"

#define AZT_ASSERTION_HEADER "Tailscale-Jwt-Assertion"

/* The compact JWS asserting id for r (audience, issuer, lifetime and
 * accepted capabilities from r's configuration; via_proxy: a trusted proxy
 * forwarded the client; service: the Tailscale Service reached, or NULL).
 * NULL, logged, when it cannot be made. */
const char *azt_assertion_token(request_rec *r, const tsl_identity *id, int via_proxy,
                                const char *service);

/* Create this process's token cache (child_init). */
void azt_assertion_child_init(apr_pool_t *pchild);

#endif
