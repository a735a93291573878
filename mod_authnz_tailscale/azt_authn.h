/* mod_authnz_tailscale: AuthType tailscale and the access check that turns
 * an unreachable tailscaled into 503 before any Require rule is evaluated. */
#ifndef AZT_AUTHN_H
#define AZT_AUTHN_H

#include <httpd.h>

/* check_authn hook: REMOTE_USER from the tailnet identity under AuthType tailscale. */
int azt_authn_check(request_rec *r);

/* note_auth_failure hook for AuthType tailscale: a "Tailscale" challenge
 * (RFC 9110 wants one on every 401) and a page saying why and what to do. */
int azt_note_auth_failure(request_rec *r, const char *auth_type);

/* access_checker hook: look the identity up where this section needs it;
 * 503 when tailscaled cannot answer (AuthTailscaleUnavailable error). */
int azt_access_check(request_rec *r);

/* True if this request's section needs a tailnet identity. */
int azt_needs_identity(request_rec *r);

#endif
