"""Whose identity: the connection's real peer, never a header or a PROXY
preamble - unless that peer is a trusted proxy (edge topology: a public
proxy node forwards TLS with PROXY protocol to this origin over the
tailnet)."""

from .site import SECRET

# Port @PORT2@ on the tailnet address speaks PROXY protocol (mod_remoteip);
# only the node tagged tag:edge is trusted to speak for its clients.
EDGE = """
Listen 100.100.0.1:@PORT2@
<VirtualHost 100.100.0.1:@PORT2@>
  RemoteIPProxyProtocol On
  AuthTailscaleTrustedProxy tag:edge
  AliasMatch "^/p/" "@DOCROOT@/secret.txt"
  <Location /p/user-alice>
    Require tailscale-user alice@example.com
  </Location>
  <Location /p/from-edge>
    <RequireAll>
      Require tailscale-peer-tag tag:edge
      Require tailscale-user alice@example.com
    </RequireAll>
  </Location>
  <Location /p/edge-only>
    Require tailscale-peer-node edge
  </Location>
</VirtualHost>
"""

# The tailnet is also declared a trusted proxy range to mod_remoteip's
# header mode, which must not sway the identity either.
XFF = """
RemoteIPHeader X-Forwarded-For
RemoteIPInternalProxy 100.64.0.0/10
"""

ALICE = "100.101.102.103"


def proxy_v1(src, dst="100.100.0.1", sport=51234, dport=443):
    return f"PROXY TCP4 {src} {dst} {sport} {dport}"


def test_trusted_edge_proxy_forwards_its_clients_identity(make_site):
    site = make_site(EDGE, modules=["remoteip"])
    port = site.httpd.extra_ports[0]
    status, headers, body = site.raw("edge", "/p/user-alice", port=port,
                                     proxy=proxy_v1(ALICE))
    assert status == 200 and SECRET in body
    assert headers.get("x-ts-login") == "alice@example.com"
    assert headers.get("x-ts-proxy-node") == "edge.tail1234.ts.net"
    status, _, body = site.raw("edge", "/p/from-edge", port=port, proxy=proxy_v1(ALICE))
    assert status == 200 and SECRET in body


def test_edge_proxy_itself_can_be_required_when_the_client_is_not_on_the_tailnet(make_site):
    site = make_site(EDGE, modules=["remoteip"])
    port = site.httpd.extra_ports[0]
    # A public client (documentation range) behind the edge: no tailnet identity.
    status, _, body = site.raw("edge", "/p/edge-only", port=port,
                               proxy=proxy_v1("198.51.100.7"))
    assert status == 200 and SECRET in body
    status, _, body = site.raw("edge", "/p/user-alice", port=port,
                               proxy=proxy_v1("198.51.100.7"))
    assert status == 403 and SECRET not in body


def test_untrusted_peer_cannot_claim_another_identity_with_proxy_protocol(make_site):
    site = make_site(EDGE, modules=["remoteip"])
    port = site.httpd.extra_ports[0]
    # bob's phone is not tag:edge: its PROXY preamble is not believed.
    status, headers, body = site.raw("phone", "/p/user-alice", port=port,
                                     proxy=proxy_v1(ALICE))
    assert status == 403 and SECRET not in body
    status, _, body = site.raw("phone", "/p/edge-only", port=port, proxy=proxy_v1(ALICE))
    assert status == 403


def test_x_forwarded_for_does_not_change_the_identity(make_site):
    site = make_site(XFF, modules=["remoteip"])
    for hdr in [f"X-Forwarded-For: {ALICE}", f"X-Real-IP: {ALICE}",
                f"Forwarded: for={ALICE}"]:
        status, headers, body = site.raw("phone", "/p/user-alice", headers=[hdr])
        assert status == 403 and SECRET not in body, hdr
    status, headers, _ = site.raw("phone", "/p/user-glob",
                                  headers=[f"X-Forwarded-For: {ALICE}"])
    assert status == 200
    assert headers.get("x-ts-login") == "bob@example.com"


def test_forged_identity_headers_are_removed(make_site):
    site = make_site()
    forged = ["Tailscale-User-Login: alice@example.com",
              "Tailscale-User-Name: Alice Example",
              "Tailscale_User_Login: alice@example.com",
              "Tailscale-App-Capabilities: {\"example.com/cap/web\":[{\"role\":\"admin\"}]}"]
    status, headers, body = site.raw("phone", "/p/user-alice", headers=forged)
    assert status == 403 and SECRET not in body


# mod_remoteip without a proxy list trusts every hop of X-Forwarded-For; the
# trusted edge only vouches for the one entry it added (the rightmost).
XFF_EDGE = """
Listen 100.100.0.1:@PORT3@
<VirtualHost 100.100.0.1:@PORT3@>
  RemoteIPHeader X-Forwarded-For
  AuthTailscaleTrustedProxy tag:edge
  AliasMatch "^/p/" "@DOCROOT@/secret.txt"
  <Location /p/user-alice>
    Require tailscale-user alice@example.com
  </Location>
  <Location /p/edge-node>
    Require tailscale-node edge
  </Location>
  <Location /p/edge-peer>
    Require tailscale-peer-node edge
  </Location>
</VirtualHost>
"""


def test_trusted_proxy_vouches_only_for_the_hop_it_added(make_site):
    site = make_site(XFF_EDGE, modules=["remoteip"])
    port = site.httpd.extra_ports[1]
    status, _, body = site.raw("edge", "/p/user-alice", port=port,
                               headers=[f"X-Forwarded-For: {ALICE}"])
    assert status == 200 and SECRET in body
    # A public client wrote alice's address in front of its own.
    for xff in [f"{ALICE}, 198.51.100.7", f"{ALICE},198.51.100.7"]:
        status, _, body = site.raw("edge", "/p/user-alice", port=port,
                                   headers=[f"X-Forwarded-For: {xff}"])
        assert status == 403 and SECRET not in body, xff
    status, _, body = site.raw("edge", "/p/user-alice", port=port,
                               headers=[f"X-Forwarded-For: {ALICE}",
                                        "X-Forwarded-For: 198.51.100.7"])
    assert status == 403 and SECRET not in body


def test_trusted_proxy_forwarding_no_address_is_not_identified_as_itself(make_site):
    site = make_site(XFF_EDGE, modules=["remoteip"])
    port = site.httpd.extra_ports[1]
    status, _, body = site.raw("edge", "/p/edge-node", port=port)
    # the client may be anyone: unavailable, never the edge, never "not a peer"
    assert status == 503 and SECRET not in body
    # Its own identity stays available to the tailscale-peer-* rules.
    status, _, body = site.raw("edge", "/p/edge-peer", port=port)
    assert status == 200 and SECRET in body


# PROXY protocol and a forwarding header on one vhost: the preamble is what
# the trusted edge itself says; a header entry may come from its client.
PROXY_AND_XFF = XFF_EDGE.replace("  RemoteIPHeader X-Forwarded-For\n",
                                 "  RemoteIPProxyProtocol On\n"
                                 "  RemoteIPHeader X-Forwarded-For\n")
assert PROXY_AND_XFF != XFF_EDGE


def test_with_proxy_protocol_and_a_header_only_the_preamble_vouches(make_site):
    site = make_site(PROXY_AND_XFF, modules=["remoteip"])
    port = site.httpd.extra_ports[1]
    # A public client behind the edge claims alice in the header.
    status, _, body = site.raw("edge", "/p/user-alice", port=port,
                               proxy=proxy_v1("198.51.100.7"),
                               headers=[f"X-Forwarded-For: {ALICE}"])
    assert status == 403 and SECRET not in body
    # alice behind the edge, whatever a header says.
    status, _, body = site.raw("edge", "/p/user-alice", port=port, proxy=proxy_v1(ALICE),
                               headers=["X-Forwarded-For: 198.51.100.7"])
    assert status == 200 and SECRET in body
    # Not the edge: neither the preamble nor the header is believed.
    status, _, body = site.raw("phone", "/p/user-alice", port=port, proxy=proxy_v1(ALICE),
                               headers=[f"X-Forwarded-For: {ALICE}"])
    assert status == 403 and SECRET not in body
