/* mod_authnz_tailscale: who is behind this request?
 *
 * The address asked about is the connection's real socket peer, as tailscaled
 * saw it: never a header, never the address mod_remoteip derived from a
 * PROXY header, unless that peer is an AuthTailscaleTrustedProxy; then the
 * forwarded client is looked up by IP as the request's identity, and the
 * peer's own identity stays available to tailscale-peer-* rules.
 */
#ifndef AZT_LOOKUP_H
#define AZT_LOOKUP_H

#include <httpd.h>
#include "tsl_identity.h"
#include "tsl_result.h"

typedef struct azt_lookup {
    tsl_code code;              /* TSL_OK: id set; TSL_ERR_NOT_FOUND: not a tailnet
                                 * peer; anything else: tailscaled unavailable */
    tsl_identity *id;           /* the request's identity */
    const char *addr;           /* the whois addr it was asked for */
    const char *error;          /* reason when code is an error */
    tsl_code peer_code;         /* the immediate connection peer ... */
    tsl_identity *peer_id;
    const char *peer_addr;
    int via_proxy;              /* id belongs to a client forwarded by a trusted proxy */
    int via_serve;              /* ... by tailscaled's own serve proxy on loopback */
    int funnel;                 /* serve said: a public Funnel client, not a peer */
    const char *dst;            /* the tailnet address the client connected to
                                 * (whois scoped the grants to it), or NULL */
} azt_lookup;

/* Look the request's identity up (once per request; subrequests and internal
 * redirects share it). Never NULL. */
const azt_lookup *azt_lookup_request(request_rec *r);

/* The lookup already made for r (or its main/previous request), or NULL. */
const azt_lookup *azt_lookup_get(request_rec *r);

/* The Tailscale Service (svc:name) this node hosts at lk->dst, or NULL. */
const char *azt_lookup_service(request_rec *r, const azt_lookup *lk);

/* True if code means tailscaled could not give a definite answer. */
int azt_lookup_unavailable(tsl_code code);

/* post_read_request: keep the request headers as they arrived (only where
 * a trusted proxy is configured) to tell which hop a forwarded client came
 * from after mod_remoteip rewrote them. */
int azt_lookup_post_read(request_rec *r);

/* post_read_request, before headers are stripped or rewritten: keep what
 * tailscale serve would have sent (rightmost X-Forwarded-For entry, the
 * Funnel marker) for the lookup, which believes it only from tailscaled. */
void azt_lookup_note_serve(request_rec *r);

/* Create the per-process clients and cache (child_init). */
void azt_lookup_child_init(apr_pool_t *pchild, server_rec *s);

/* Number of entries in this process's cache. */
int azt_lookup_cache_count(void);

#endif
