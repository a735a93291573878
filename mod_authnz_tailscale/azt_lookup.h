/* mod_authnz_tailscale: who is behind this request?
 *
 * A short pipeline, once per request (subrequests and internal redirects
 * share it): who is speaking (azt_peerkind: another node, this node, this
 * host, the public) -> tailscaled about the socket peer -> tailscale serve's
 * client (azt_serve) or a trusted proxy's forwarded client (azt_forwarded)
 * -> the connection slot, the process cache, tailscaled.  Every answer is
 * one of three outcomes (azt_outcome.h); rules, authentication and export
 * switch on the outcome only.
 */
#ifndef AZT_LOOKUP_H
#define AZT_LOOKUP_H

#include <httpd.h>
#include "tsl_identity.h"
#include "azt_outcome.h"

typedef struct azt_lookup {
    azt_outcome outcome;        /* the request's identity: */
    tsl_identity *id;           /* set exactly when outcome is AZT_IDENTIFIED */
    const char *addr;           /* whom it is about (logs, TAILSCALE_ADDR) */
    const char *error;          /* why there is no identity, when there is none */
    azt_outcome peer_outcome;   /* the connection's own peer (a proxy hop) ... */
    tsl_identity *peer_id;
    const char *peer_addr;
    int via_proxy;              /* id belongs to a client forwarded by a trusted proxy */
    int via_serve;              /* ... by tailscaled's own serve proxy on loopback */
    int funnel;                 /* serve said: a public Funnel client, not a peer */
    const char *dst;            /* the tailnet address the client connected to
                                 * (whois scoped the grants to it), or NULL */
} azt_lookup;

/* Look the request's identity up (once per request). Never NULL. */
const azt_lookup *azt_lookup_request(request_rec *r);

/* The lookup already made for r (or its main/previous request), or NULL. */
const azt_lookup *azt_lookup_get(request_rec *r);

/* The Tailscale Service (svc:name) this node hosts at lk->dst, or NULL. */
const char *azt_lookup_service(request_rec *r, const azt_lookup *lk);

/* post_read_request, before headers are stripped or rewritten: keep what
 * the forwarded-client and serve steps read later. */
int azt_lookup_post_read(request_rec *r);

/* Create the per-process clients and cache (child_init). */
void azt_lookup_child_init(apr_pool_t *pchild, server_rec *s);

/* Number of entries in this process's cache. */
int azt_lookup_cache_count(void);

#endif
