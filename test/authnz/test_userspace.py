"""Userspace-networking tailscaled proxies tailnet connections to
127.0.0.1:ephemeral; whois then needs the port, and each port is its own
peer."""

import socket

from lib import rawhttp

CONF = """
AuthTailscaleURL @SOCKET@
AliasMatch "^/p/" "@DOCROOT@/secret.txt"
<Location /p/alice>
  Require tailscale-user alice@example.com
</Location>
"""


def free_local_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_loopback_peer_is_looked_up_by_ip_and_port(make_httpd, emulator):
    h = make_httpd(CONF)
    h.write_file("secret.txt", "SECRET\n")
    mapped, unmapped = free_local_port(), free_local_port()
    emulator.proxymap(f"127.0.0.1:{mapped}", "laptop")
    status, _, body = rawhttp.request("127.0.0.1", h.port, "/p/alice", src="127.0.0.1",
                                      sport=mapped)
    assert status == 200 and "SECRET" in body
    status, _, body = rawhttp.request("127.0.0.1", h.port, "/p/alice", src="127.0.0.1",
                                      sport=unmapped)
    assert status == 403 and "SECRET" not in body
    targets = [r["target"] for r in emulator.requests() if "whois" in r["target"]]
    assert any(f"127.0.0.1%3A{mapped}" in t for t in targets), targets


def test_reused_local_port_does_not_inherit_an_identity(make_httpd, emulator):
    # The mapping lives as long as tailscaled's proxied connection; a later
    # connection from the same 127.0.0.1 port may be any local process.
    h = make_httpd(CONF + "AuthTailscaleCacheTimeout 1h\n")
    h.write_file("secret.txt", "SECRET\n")
    port = free_local_port()
    emulator.proxymap(f"127.0.0.1:{port}", "laptop")
    status, _, body = rawhttp.request("127.0.0.1", h.port, "/p/alice", src="127.0.0.1",
                                      sport=port)
    assert status == 200 and "SECRET" in body
    emulator.clear_proxymap(f"127.0.0.1:{port}")
    for _ in range(6):
        status, _, body = rawhttp.request("127.0.0.1", h.port, "/p/alice", src="127.0.0.1",
                                          sport=port)
        assert status == 403 and "SECRET" not in body
