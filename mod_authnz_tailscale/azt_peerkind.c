/* mod_authnz_tailscale: who is speaking (see azt_peerkind.h). */
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "tsl_addr.h"
#include "azt_peerkind.h"

/* Is ip assigned to this host?  bind() says so without a lookup of our
 * own: only a local address can be bound (EADDRNOTAVAIL otherwise).
 * 1 yes, 0 no, -1 cannot tell. */
static int assigned_here(const char *ip)
{
    struct sockaddr_in6 s6;
    struct sockaddr_in s4;
    struct sockaddr *sa;
    socklen_t len;
    int fd, rc, saved;

    memset(&s4, 0, sizeof(s4));
    memset(&s6, 0, sizeof(s6));
    if (inet_pton(AF_INET, ip, &s4.sin_addr) == 1) {
        s4.sin_family = AF_INET;
        sa = (struct sockaddr *)&s4;
        len = sizeof(s4);
    }
    else if (inet_pton(AF_INET6, ip, &s6.sin6_addr) == 1) {
        s6.sin6_family = AF_INET6;
        sa = (struct sockaddr *)&s6;
        len = sizeof(s6);
    }
    else {
        return -1;
    }
    fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    rc = bind(fd, sa, len);
    saved = errno;
    close(fd);
    if (rc == 0) {
        return 1;
    }
    return saved == EADDRNOTAVAIL ? 0 : -1;
}

static int is_loopback(const char *ip)
{
    return !strncmp(ip, "127.", 4) || !strcmp(ip, "::1");
}

azt_peer_kind azt_peer_kind_of(const char *ip)
{
    int here;

    if (!ip) {
        return AZT_PEER_UNREADABLE;
    }
    if (is_loopback(ip)) {
        return AZT_PEER_LOCAL;
    }
    here = assigned_here(ip);
    if (here < 0) {
        return AZT_PEER_UNREADABLE;
    }
    if (tsl_addr_is_tailnet(ip)) {
        return here ? AZT_PEER_SELF : AZT_PEER_TAILNET;
    }
    return here ? AZT_PEER_LOCAL : AZT_PEER_PUBLIC;
}

const char *azt_peer_kind_reason(azt_peer_kind kind)
{
    switch (kind) {
    case AZT_PEER_SELF:
        return "one of this node's own tailnet addresses: a process on this host, "
               "not a tailnet peer";
    case AZT_PEER_PUBLIC:
        return "neither a tailnet address nor one of this host's: never a tailnet peer";
    case AZT_PEER_UNREADABLE:
        return "the peer address could not be read or tested";
    case AZT_PEER_TAILNET:
    case AZT_PEER_LOCAL:
        break;
    }
    return "asked of tailscaled";
}
