/* mod_authnz_tailscale: connections tailscale serve forwards on loopback.
 *
 * With AuthTailscaleBehindServe on, a loopback peer whose socket belongs to
 * tailscaled's uid may be serve's proxy.  The lookup first asks tailscaled
 * about that ip:port (in userspace-networking mode tailscaled dials loopback
 * for every tailnet peer and maps the ip:port to it); only tailscaled's own
 * "no match" makes the connection serve's, whose client is the single
 * X-Forwarded-For entry serve wrote, or a public Funnel client.
 */
#ifndef AZT_SERVE_H
#define AZT_SERVE_H

#include <httpd.h>

/* post_read_request, before headers are stripped or rewritten: keep what
 * serve would have sent (the last X-Forwarded-For entry, the Funnel
 * marker) with the connection's first request. */
void azt_serve_post_read(request_rec *r);

/* Is the loopback peer sa tailscaled itself (owner of socket_path)?
 * *memo caches the answer for the connection (0 not asked, 1 yes, -1 no). */
int azt_serve_is_tailscaled(request_rec *r, const char *socket_path,
                            const apr_sockaddr_t *sa, int *memo);

typedef enum {
    AZT_SERVED_NONE = 0,        /* no usable X-Forwarded-For: *client says what came */
    AZT_SERVED_CLIENT,          /* *client: the normalized address serve forwarded */
    AZT_SERVED_FUNNEL           /* a public Funnel client (*client its address, if any) */
} azt_served;

/* What serve said about the request's client. */
azt_served azt_serve_client(request_rec *r, const char **client);

#endif
