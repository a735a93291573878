/* mod_authnz_tailscale: who is speaking, before anyone is asked.
 *
 * The socket peer's address decides how (and whether) tailscaled is asked:
 * another node's tailnet address by IP; loopback or another address of this
 * host by ip:port (tailscaled in userspace-networking mode and tailscale
 * serve connect from there, and map the ip:port while the connection
 * lives); this node's own tailnet address is a local process, and any
 * other address is public: neither can be a tailnet peer, so neither is
 * asked about. */
#ifndef AZT_PEERKIND_H
#define AZT_PEERKIND_H

typedef enum azt_peer_kind {
    AZT_PEER_UNREADABLE = 0,    /* the address could not be read or tested */
    AZT_PEER_TAILNET,           /* another node's tailnet address: whois by IP */
    AZT_PEER_SELF,              /* this node's own tailnet address: a local process */
    AZT_PEER_LOCAL,             /* loopback or this host's other address: whois by ip:port */
    AZT_PEER_PUBLIC             /* anything else: never a tailnet peer */
} azt_peer_kind;

/* The kind of a normalized IP address (tsl_addr_normalize). */
azt_peer_kind azt_peer_kind_of(const char *ip);

/* Why a kind that is not asked about has no identity, for logs. */
const char *azt_peer_kind_reason(azt_peer_kind kind);

#endif
