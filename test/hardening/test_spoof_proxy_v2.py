"""PROXY protocol version 2 (the binary preamble) on a listener with
RemoteIPProxyProtocol On: only a trusted proxy (AuthTailscaleTrustedProxy)
may speak for another address; from any other peer the preamble changes
neither the identity decided nor the one passed on.  test/authnz/test_proxy.py
covers the text (v1) preamble; this is the binary form, both address
families, and the LOCAL command."""

import re
import subprocess

from lib.httpd import APACHE2

from .conftest import SECRET

EDGE = """
Listen 100.100.0.1:@PORT2@
Listen [fd7a:115c:a1e0::1]:@PORT2@
<VirtualHost 100.100.0.1:@PORT2@ [fd7a:115c:a1e0::1]:@PORT2@>
  RemoteIPProxyProtocol On
  AuthTailscaleTrustedProxy tag:edge
  AliasMatch "^/p/" "@DOCROOT@/secret.txt"
  <Location /p/alice>
    Require tailscale-user alice@example.com
  </Location>
  <Location /p/users>
    Require tailscale-user *
  </Location>
  <Location /p/edge>
    Require tailscale-peer-node edge
  </Location>
</VirtualHost>
"""

ALICE_V4, ALICE_V6 = "100.101.102.103", "fd7a:115c:a1e0::e901:6667"


def v2(src, dst="100.100.0.1", cmd="PROXY"):
    return {"cmd": cmd, "src": src, "sport": 51234, "dst": dst, "dport": 443}


def test_trusted_edge_v2_preamble_is_believed(hsite, raw):
    """Control: the same preamble from the trusted edge does forward alice,
    so the refusals below are decisions, not a parser that ignores v2."""
    h = hsite(EDGE, modules=["remoteip"])
    port = h.extra_ports[0]
    r = raw("edge", port, "/p/alice", proxy_v2=v2(ALICE_V4))
    assert r.status == 200 and SECRET in r.body, r
    assert r.get("X-TS-Login") == "alice@example.com"
    assert r.get("X-TS-Proxy-Node") == "edge.tail1234.ts.net"
    r = raw("edge", port, "/p/alice", v6=True,
            proxy_v2=v2(ALICE_V6, dst="fd7a:115c:a1e0::1"))
    assert r.status == 200 and r.get("X-TS-Login") == "alice@example.com", r


def test_untrusted_peer_v2_preamble_changes_nothing(hsite, raw):
    h = hsite(EDGE, modules=["remoteip"])
    port = h.extra_ports[0]
    for client in ("phone", "ci-runner", "friend"):
        r = raw(client, port, "/p/alice", proxy_v2=v2(ALICE_V4))
        assert r.status == 403 and SECRET not in r.body, (client, r)
        r = raw(client, port, "/p/alice", v6=True,
                proxy_v2=v2(ALICE_V6, dst="fd7a:115c:a1e0::1"))
        assert r.status == 403 and SECRET not in r.body, (client, r)
        # the peer cannot pretend to be the edge either
        r = raw(client, port, "/p/edge", proxy_v2=v2("100.64.0.10"))
        assert r.status == 403, (client, r)
    # the identity passed on is the real peer's
    r = raw("phone", port, "/p/users", proxy_v2=v2(ALICE_V4))
    assert r.status == 200
    assert r.get("X-TS-Login") == "bob@example.com", r
    assert r.get("X-TS-Node") == "phone.tail1234.ts.net", r
    assert r.get("X-TS-Proxy-Node") is None, r


def test_v2_preamble_from_a_non_peer_claiming_a_tailnet_address(hsite, raw):
    """stranger is in the tailnet range but unknown to tailscaled: claiming
    alice's address gets it nothing."""
    h = hsite(EDGE, modules=["remoteip"])
    r = raw("stranger", h.extra_ports[0], "/p/users", proxy_v2=v2(ALICE_V4))
    assert r.status == 403 and SECRET not in r.body, r
    assert r.get("X-TS-Login") is None


# The first Apache whose mod_remoteip takes PROXY v2's LOCAL command (bookworm-security's
# and trixie's 2.4.71).  2.4.68, what a fresh bookworm gets from the main archive alone,
# logs AH03507 "unsupported command 20" and closes the connection unanswered.
REMOTEIP_LOCAL_SINCE = (2, 4, 71)


def apache_version():
    out = subprocess.run([APACHE2, "-v"], capture_output=True, text=True, check=True).stdout
    return tuple(int(n) for n in re.search(r"Apache/(\d+)\.(\d+)\.(\d+)", out).groups())


def test_v2_local_command_keeps_the_real_peer(hsite, raw):
    """LOCAL means "no address information": the connection's own peer.  An
    older mod_remoteip refuses LOCAL instead: then nothing at all is served."""
    h = hsite(EDGE, modules=["remoteip"])
    port = h.extra_ports[0]
    r = raw("phone", port, "/p/users", proxy_v2={"cmd": "LOCAL"})
    if apache_version() < REMOTEIP_LOCAL_SINCE:
        assert r.status == 0 and not r.headers and not r.body, r
        assert "AH03507: RemoteIPProxyProtocol: unsupported command 20" in h.error_log()
        assert "/p/users" not in h.access_log_path.read_text()
        return
    assert r.status == 200 and r.get("X-TS-Login") == "bob@example.com", r
    r = raw("phone", port, "/p/alice", proxy_v2={"cmd": "LOCAL"})
    assert r.status == 403, r
