/* mod_authnz_tailscale: who owns the other end of a loopback TCP
 * connection?  Asked of the kernel (sock_diag / inet_diag netlink), which
 * any process may ask about one exact socket; used to tell tailscaled's
 * `tailscale serve` proxy from any other local process. */
#ifndef AZT_SOCKUID_H
#define AZT_SOCKUID_H

#include <sys/types.h>
#include <apr_network_io.h>

/* True if sa is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x.y.z). */
int azt_sockuid_is_loopback(const apr_sockaddr_t *sa);

/* The uid owning the TCP socket whose local end is peer and remote end is
 * local (the client side of our connection local<-peer).  APR_SUCCESS and
 * *uid, or an error (no such socket, netlink unavailable). */
apr_status_t azt_sockuid_of_peer(const apr_sockaddr_t *local, const apr_sockaddr_t *peer,
                                 uid_t *uid);

#endif
