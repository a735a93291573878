"""An identity nobody can choose or borrow (issue 23): tailscale serve's
X-Forwarded-For never overrides what tailscaled maps for a loopback ip:port,
a process on this host is not the node's owner, a public client costs no
whois, a trusted proxy's client is exactly the hop mod_remoteip read (no
other header, whatever mod_headers did to it), and a subrequest finds it."""

import socket
import subprocess

from lib import rawhttp
from lib.netns import SERVER_V4, _ip
from .site import SECRET
from .test_behind_serve import CONF as SERVE_CONF, ALICE, BOB
from .test_proxy import EDGE, proxy_v1


def free_local_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def whois_targets(emulator):
    return [q["target"] for q in emulator.requests() if "whois" in q["target"]]


# ---- tailscale serve / userspace networking -----------------------------------

def test_serve_xff_never_overrides_the_peer_tailscaled_maps(make_httpd, emulator):
    # userspace networking: tailscaled (the socket owner, root here) dials
    # loopback for bob's connection; bob writes alice's address himself.
    h = make_httpd(SERVE_CONF, modules=["headers"])
    h.write_file("secret.txt", "SECRET\n")
    port = free_local_port()
    emulator.proxymap(f"127.0.0.1:{port}", "phone")
    status, hdrs, body = rawhttp.request("127.0.0.1", h.port, "/p/alice", src="127.0.0.1",
                                         sport=port, headers=[f"X-Forwarded-For: {ALICE}"])
    assert status == 403 and "SECRET" not in body
    port = free_local_port()
    emulator.proxymap(f"127.0.0.1:{port}", "phone")
    status, hdrs, body = rawhttp.request("127.0.0.1", h.port, "/p/any", src="127.0.0.1",
                                         sport=port, headers=[f"X-Forwarded-For: {ALICE}"])
    assert status == 200 and hdrs.get("x-ts-login") == "bob@example.com"


def test_serve_client_only_after_tailscaled_says_no_match(make_httpd, emulator):
    h = make_httpd(SERVE_CONF, modules=["headers"])
    h.write_file("secret.txt", "SECRET\n")
    port = free_local_port()
    emulator.reset_requests()
    status, hdrs, _ = rawhttp.request("127.0.0.1", h.port, "/p/alice", src="127.0.0.1",
                                      sport=port, headers=[f"X-Forwarded-For: {ALICE}"])
    assert status == 200 and hdrs.get("x-ts-login") == "alice@example.com"
    targets = whois_targets(emulator)
    assert targets[0] == f"/localapi/v0/whois?addr=127.0.0.1%3A{port}", targets
    assert targets[1:] == [f"/localapi/v0/whois?addr={ALICE}"], targets


def test_serve_without_a_usable_forwarded_address_is_unavailable(make_httpd, emulator):
    h = make_httpd(SERVE_CONF, modules=["headers"])
    h.write_file("secret.txt", "SECRET\n")
    for headers in ([], ["X-Forwarded-For: not-an-address"]):
        status, _, body = rawhttp.request("127.0.0.1", h.port, "/p/not-bob", headers=headers)
        assert status == 503 and "SECRET" not in body, headers


def test_serve_when_tailscaled_cannot_answer_is_unavailable(make_httpd, emulator):
    h = make_httpd(SERVE_CONF + "AuthTailscaleTimeout 700ms\n", modules=["headers"])
    h.write_file("secret.txt", "SECRET\n")
    emulator.fault("http500")
    status, _, body = rawhttp.request("127.0.0.1", h.port, "/p/not-bob",
                                      headers=[f"X-Forwarded-For: {ALICE}"])
    assert status == 503 and "SECRET" not in body


# ---- a process on this host ------------------------------------------------------

SELF_CONF = """
<Location /p/alice-self>
  Require tailscale-user alice@example.com
</Location>
<Location /p/any-self>
  Require tailscale-user *
</Location>
<Location /p/auth-self>
  AuthType tailscale
  Require valid-user
</Location>
"""


def host_get(site, path, src):
    url = f"http://{SERVER_V4}:{site.httpd.ts_port}{path}"
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface",
                        src, url], capture_output=True, text=True, timeout=30)
    return int(r.stdout or 0)


def test_a_local_process_on_the_nodes_own_address_is_not_its_owner(make_site, emulator):
    # web1 (this node, 100.100.0.1) belongs to alice: tailscaled answers
    # whois for it with the self node.  A CGI script, a cron job or an SSRF
    # connecting from that address is a process here, not alice.
    site = make_site(SELF_CONF)
    emulator.reset_requests()
    assert host_get(site, "/p/alice-self", SERVER_V4) == 403
    assert host_get(site, "/p/any-self", SERVER_V4) == 403
    assert host_get(site, "/p/auth-self", SERVER_V4) == 401
    assert whois_targets(emulator) == []
    assert site.get("laptop", "/p/alice-self")[0] == 200


def test_the_self_node_named_by_tailscaled_is_not_a_peer(make_site, emulator):
    # A tailnet address not assigned here that tailscaled says is this node
    # (the node owns the address the client reached) is this node too.
    site = make_site(SELF_CONF + "AuthTailscaleCacheTimeout 0\n")
    assert site.get("laptop", "/p/alice-self")[0] == 200
    # laptop's address now belongs to web1 (this node, alice's too).
    emulator.patch_node("laptop", addresses=["100.101.102.200", "fd7a:115c:a1e0::e901:6668"])
    emulator.patch_node("web1", addresses=["100.100.0.1", "100.101.102.103",
                                           "fd7a:115c:a1e0::1"])
    assert site.get("laptop", "/p/alice-self")[0] == 403
    assert site.get("laptop", "/p/auth-self")[0] == 401


# ---- a public client -----------------------------------------------------------

PUBLIC = "198.51.100.7"


def test_a_public_client_costs_no_whois(make_site, emulator, tailnet_ns):
    site = make_site(SELF_CONF)
    ns = tailnet_ns
    _ip("addr", "add", f"{PUBLIC}/32", "dev", ns.ns_if, ns=ns.ns)
    _ip("route", "add", f"{PUBLIC}/32", "dev", ns.host_if)
    try:
        emulator.reset_requests()
        url = f"http://{SERVER_V4}:{site.httpd.ts_port}/p/any-self"
        for _ in range(20):
            r = ns.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface",
                        PUBLIC, url])
            assert r.stdout.strip() == "403", r.stdout
        assert whois_targets(emulator) == []
    finally:
        _ip("route", "del", f"{PUBLIC}/32", "dev", ns.host_if, check=False)
        _ip("addr", "del", f"{PUBLIC}/32", "dev", ns.ns_if, ns=ns.ns, check=False)


# ---- a trusted proxy's client: exactly one hop -----------------------------------

MALLORY = "100.64.0.2"     # bob, whom the edge forwards

EARLY_ACTIONS = [
    "RequestHeader unset Proxy early",
    "RequestHeader set Proxy 100.101.102.103 early",
    "RequestHeader edit Proxy ^ 100.101.102.103, early",
    "RequestHeader append Proxy 100.101.102.103 early",
    "RequestHeader unset X-Forwarded-For early",
]


def edge_with(early):
    return EDGE.replace("  AuthTailscaleTrustedProxy tag:edge",
                        f"  AuthTailscaleTrustedProxy tag:edge\n  {early}")


def test_no_early_header_action_moves_the_proxy_protocol_client(make_site):
    for early in EARLY_ACTIONS:
        site = make_site(edge_with(early), modules=["remoteip"])
        port = site.httpd.extra_ports[0]
        for forged in (f"Proxy: {ALICE}", f"X-Forwarded-For: {ALICE}"):
            status, _, body = site.raw("edge", "/p/user-alice", port=port,
                                       proxy=proxy_v1(MALLORY), headers=[forged])
            assert status == 403 and SECRET not in body, (early, forged, status)
        site.httpd.stop()


HEADER_EDGE = """
Listen 100.100.0.1:@PORT2@
<VirtualHost 100.100.0.1:@PORT2@>
  RemoteIPHeader X-Forwarded-For
  RemoteIPInternalProxy 100.64.0.0/10
  AuthTailscaleTrustedProxy tag:edge
  EARLY
  AliasMatch "^/p/" "@DOCROOT@/secret.txt"
  DirectoryIndex index.html
  <Location /p/user-alice>
    Require tailscale-user alice@example.com
  </Location>
  <Location /p/not-bob>
    <RequireAll>
      Require ip 100.64.0.0/10
      Require not tailscale-user bob@example.com
    </RequireAll>
  </Location>
</VirtualHost>
"""


def test_the_forwarded_client_is_the_last_entry_the_edge_appended(make_site):
    for early in EARLY_ACTIONS[:4] + [""]:
        site = make_site(HEADER_EDGE.replace("EARLY", early), modules=["remoteip"])
        port = site.httpd.extra_ports[0]
        # The edge appended bob; alice is what bob wrote himself.
        xff = f"X-Forwarded-For: {ALICE}, {MALLORY}"
        for extra in ([], [f"Proxy: {ALICE}"]):
            status, _, body = site.raw("edge", "/p/user-alice", port=port,
                                       headers=[xff] + extra)
            assert status == 403 and SECRET not in body, (early, extra, status)
            status, _, body = site.raw("edge", "/p/not-bob", port=port, headers=[xff] + extra)
            assert status == 403 and SECRET not in body, (early, extra, status)
        status, _, body = site.raw("edge", "/p/user-alice", port=port,
                                   headers=[f"X-Forwarded-For: {MALLORY}, {ALICE}"])
        assert status == 200 and SECRET in body, early
        site.httpd.stop()


def test_a_trusted_proxy_that_forwards_no_client_is_unavailable(make_site):
    site = make_site(HEADER_EDGE.replace("EARLY", ""), modules=["remoteip"])
    port = site.httpd.extra_ports[0]
    for headers in ([], ["X-Forwarded-For: garbage"], ["X-Forwarded-For: "]):
        status, _, body = site.raw("edge", "/p/not-bob", port=port, headers=headers)
        assert status == 503 and SECRET not in body, (headers, status)


def test_a_proxy_protocol_unknown_command_from_a_trusted_proxy_is_unavailable(make_site):
    # A health check or a tunnel: the preamble names no client.
    site = make_site(EDGE.replace("  <Location /p/edge-only>", """  <Location /p/not-bob>
    <RequireAll>
      Require ip 100.64.0.0/10
      Require not tailscale-user bob@example.com
    </RequireAll>
  </Location>
  <Location /p/edge-only>"""), modules=["remoteip"])
    port = site.httpd.extra_ports[0]
    status, _, body = site.raw("edge", "/p/not-bob", port=port, proxy="PROXY UNKNOWN 100.64.0.7 100.100.0.1 51234 443")
    assert status == 503 and SECRET not in body, (status, site.httpd.error_log()[-3000:])


def test_a_subrequest_finds_the_forwarded_client(make_site):
    # Only the index is protected: the first lookup happens in mod_dir's
    # subrequest for it.
    site = make_site(HEADER_EDGE.replace("EARLY", "").replace(
        "  <Location /p/user-alice>",
        "  Alias /dir/ \"@DOCROOT@/dir/\"\n  <Location /dir/index.html>\n    "
        "Require tailscale-user alice@example.com\n  </Location>\n  <Location /p/user-alice>"),
        modules=["remoteip"])
    site.httpd.write_file("dir/index.html", SECRET + "\n")
    port = site.httpd.extra_ports[0]
    status, _, body = site.raw("edge", "/dir/", port=port,
                               headers=[f"X-Forwarded-For: {ALICE}"])
    assert status == 200 and SECRET in body, status
    status, _, body = site.raw("edge", "/dir/", port=port,
                               headers=[f"X-Forwarded-For: {MALLORY}"])
    assert status == 403 and SECRET not in body, status
