/* mod_authnz_tailscale: owner of a loopback peer's socket (see azt_sockuid.h). */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/inet_diag.h>
#include <apr_errno.h>

#include "azt_sockuid.h"

static const unsigned char V4_MAPPED[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* The address as the kernel indexes the socket: family and 4 or 16 bytes
 * (an IPv4-mapped IPv6 address is an IPv4 socket on the other side). */
static int diag_addr(const apr_sockaddr_t *sa, int *family, __be32 out[4])
{
    memset(out, 0, 4 * sizeof(__be32));
    if (sa->family == AF_INET) {
        *family = AF_INET;
        memcpy(out, &sa->sa.sin.sin_addr, 4);
        return 1;
    }
#if APR_HAVE_IPV6
    if (sa->family == AF_INET6) {
        const unsigned char *b = sa->sa.sin6.sin6_addr.s6_addr;
        if (!memcmp(b, V4_MAPPED, sizeof(V4_MAPPED))) {
            *family = AF_INET;
            memcpy(out, b + 12, 4);
        }
        else {
            *family = AF_INET6;
            memcpy(out, b, 16);
        }
        return 1;
    }
#endif
    return 0;
}

int azt_sockuid_is_loopback(const apr_sockaddr_t *sa)
{
    __be32 a[4];
    int family;
    static const unsigned char v6_loopback[16] = { [15] = 1 };

    if (!diag_addr(sa, &family, a)) {
        return 0;
    }
    if (family == AF_INET) {
        return ((const unsigned char *)a)[0] == 127;
    }
    return !memcmp(a, v6_loopback, 16);
}

apr_status_t azt_sockuid_of_peer(const apr_sockaddr_t *local, const apr_sockaddr_t *peer,
                                 uid_t *uid)
{
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 req;
    } msg;
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    struct timeval tv = { 1, 0 };
    union { struct nlmsghdr align; char bytes[8192]; } buf;
    int fd, lfamily, pfamily;
    ssize_t n;
    struct nlmsghdr *h;
    apr_status_t rv = APR_ENOENT;

    memset(&msg, 0, sizeof(msg));
    if (!diag_addr(peer, &pfamily, msg.req.id.idiag_src)
        || !diag_addr(local, &lfamily, msg.req.id.idiag_dst) || lfamily != pfamily) {
        return APR_EINVAL;
    }
    msg.nlh.nlmsg_len = sizeof(msg);
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST;       /* one exact socket, no dump */
    msg.nlh.nlmsg_seq = 1;
    msg.req.sdiag_family = (__u8)pfamily;
    msg.req.sdiag_protocol = IPPROTO_TCP;
    msg.req.idiag_states = ~0U;
    msg.req.id.idiag_sport = htons(peer->port);
    msg.req.id.idiag_dport = htons(local->port);
    msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
    msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;

    fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) {
        return APR_FROM_OS_ERROR(errno);
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
        rv = APR_FROM_OS_ERROR(errno);
        close(fd);
        return rv;
    }
    n = recv(fd, &buf, sizeof(buf), 0);
    if (n < 0) {
        rv = APR_FROM_OS_ERROR(errno);
    }
    for (h = &buf.align; n > 0 && NLMSG_OK(h, (unsigned int)n); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type == NLMSG_ERROR) {
            const struct nlmsgerr *e = NLMSG_DATA(h);
            rv = e->error ? APR_FROM_OS_ERROR(-e->error) : APR_ENOENT;
            break;
        }
        if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY
            && h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
            const struct inet_diag_msg *m = NLMSG_DATA(h);
            if (m->id.idiag_sport == msg.req.id.idiag_sport
                && m->id.idiag_dport == msg.req.id.idiag_dport) {
                *uid = (uid_t)m->idiag_uid;
                rv = APR_SUCCESS;
            }
            break;
        }
    }
    close(fd);
    return rv;
}
