"""Caching: per connection and per process, bounded, with TTL and negative
caching; tailnet changes take effect within the TTL."""

import re
import time
from pathlib import Path

from .site import SECRET


def child_pids(httpd):
    parent = httpd.pid()
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == parent:
                pids.append(int(d.name))
    return pids


def whois_calls(emulator):
    return emulator.counters()["by_endpoint"].get("whois", 0)


def test_keepalive_connection_asks_tailscaled_once(make_site):
    site = make_site("AuthTailscaleCacheSize 0")   # only the connection remembers
    site.emulator.reset_counters()
    url = site.ns.server_url(site.httpd.ts_port, "/p/user-alice")
    # curl reuses one connection for repeated URLs.
    status, body, _ = site.ns.curl("laptop", url, *([url] * 9))
    assert body.count(SECRET) == 10
    assert whois_calls(site.emulator) == 1


def test_new_connections_share_the_process_cache(make_site):
    site = make_site("AuthTailscaleCacheTimeout 60")
    site.emulator.reset_counters()
    for _ in range(12):
        assert site.get("laptop", "/p/user-alice")[0] == 200
    procs = len(child_pids(site.httpd))
    assert 1 <= whois_calls(site.emulator) <= procs


def test_not_a_peer_is_cached_negatively(make_site):
    site = make_site("AuthTailscaleNegativeCacheTimeout 60")
    site.emulator.reset_counters()
    for _ in range(10):
        assert site.get("stranger", "/p/user-any")[0] == 403
    assert 1 <= whois_calls(site.emulator) <= len(child_pids(site.httpd))


def test_tag_removed_takes_effect_within_ttl(make_site):
    site = make_site("AuthTailscaleCacheTimeout 1")
    assert site.get("ci-runner", "/p/tag")[0] == 200
    site.emulator.patch_node("ci-runner", tags=["tag:build"])
    time.sleep(1.3)
    status, body, _ = site.get("ci-runner", "/p/tag")
    assert status == 403 and SECRET not in body


def test_node_removed_takes_effect_within_ttl(make_site):
    site = make_site("AuthTailscaleCacheTimeout 1")
    assert site.get("laptop", "/p/user-alice")[0] == 200
    tailnet = site.emulator.tailnet()
    del tailnet["nodes"]["laptop"]
    site.emulator.set_tailnet(tailnet)
    time.sleep(1.3)
    assert site.get("laptop", "/p/user-alice")[0] == 403


def test_cache_size_is_bounded(make_httpd, emulator):
    """Many distinct userspace-networking peers (127.0.0.1:port) never grow
    a process cache beyond AuthTailscaleCacheSize."""
    from lib import rawhttp
    h = make_httpd("""
AuthTailscaleURL @SOCKET@
ExtendedStatus On
AuthTailscaleCacheSize 5
AuthTailscaleNegativeCacheTimeout 60
<Location /p>
  Require tailscale-user *
</Location>
<Location /server-status>
  SetHandler server-status
  Require ip 127.0.0.1
</Location>
""", mpm="prefork", modules=["status"])
    for _ in range(30):
        status, _, _ = rawhttp.request("127.0.0.1", h.port, "/p")
        assert status == 403
    counts = set()
    for _ in range(10):
        _, _, body = rawhttp.request("127.0.0.1", h.port, "/server-status?auto")
        m = re.search(r"TailscaleCacheEntries: (\d+)", body)
        assert m, body
        counts.add(int(m.group(1)))
    assert max(counts) <= 5
    assert "TailscaleNotTailnetPeers" in body


_EVICTION_CLIENT = r"""
import http.client, json, sys
srv, port = sys.argv[1], int(sys.argv[2])
src = dict(a.split("=") for a in sys.argv[3:])
def conn(name):
    return http.client.HTTPConnection(srv, port, source_address=(src[name], 0), timeout=10)
def get(c, label):
    c.request("GET", "/p/user-any")
    r = c.getresponse()
    r.read()
    return [label, r.status, r.getheader("X-TS-Login")]
out = []
w = conn("laptop"); out.append(get(w, "laptop fills the cache")); w.close()
a = conn("laptop"); out.append(get(a, "A: cache hit"))
b = conn("phone"); out.append(get(b, "B: evicts laptop"))
out.append(get(a, "A after eviction"))
c = conn("juergen-pc"); out.append(get(c, "C: evicts phone"))
out.append(get(a, "A again")); out.append(get(b, "B after eviction"))
a.close(); b.close(); c.close()
n = conn("laptop"); out.append(get(n, "laptop again, new connection")); n.close()
print(json.dumps(out))
"""


def test_connection_keeps_its_identity_when_the_cache_evicts_it(make_site):
    """A cache hit hands the connection the cached identity itself, not a
    copy; evicting the entry (cache of one) must not take it away from the
    connections still holding it (run under build/check-sanitizers, a
    use-after-free here is a report)."""
    from lib.netns import CLIENTS, SERVER_V4
    # AuthTailscaleCache none: laptop's answer must come from tailscaled
    # again, not from the shared cache, wherever socache_shmcb is loaded.
    site = make_site("AuthTailscaleCacheSize 1\nAuthTailscaleCacheTimeout 60\n"
                     "AuthTailscaleCache none\n"
                     "StartServers 1\nServerLimit 1\nMaxRequestWorkers 25\n"
                     "MinSpareThreads 1\nMaxSpareThreads 25")
    site.emulator.reset_counters()
    srcs = [f"{n}={CLIENTS[n][0]}" for n in ("laptop", "phone", "juergen-pc")]
    r = site.ns.run(["/usr/bin/python3", "-c", _EVICTION_CLIENT, SERVER_V4,
                     str(site.httpd.ts_port)] + srcs)
    import json
    steps = json.loads(r.stdout)
    want_login = {"laptop": "alice@example.com", "A": "alice@example.com",
                  "B": "bob@example.com", "C": "juergen@example.com"}
    for label, status, login in steps:
        assert status == 200, steps
        assert login == want_login[label.split()[0].rstrip(":")], steps
    # laptop, phone, juergen-pc, then laptop once more: its entry was evicted
    assert whois_calls(site.emulator) == 4


# Two name-based vhosts on one port: the main server remembers for an hour,
# zero.test not at all.  Revoking alice's grant must take effect at once on
# zero.test, for new connections and on a keep-alive connection that asked
# the main server first.
VHOSTS = """
AuthTailscaleCacheTimeout 1h
Listen 100.100.0.1:@PORT2@
<VirtualHost 100.100.0.1:@PORT2@>
  ServerName long.test
  AliasMatch "^/p/" "@DOCROOT@/secret.txt"
  <Location /p/cap>
    Require tailscale-cap example.com/cap/web
  </Location>
</VirtualHost>
<VirtualHost 100.100.0.1:@PORT2@>
  ServerName zero.test
  AuthTailscaleCacheTimeout 0
  AuthTailscaleNegativeCacheTimeout 0
  AliasMatch "^/p/" "@DOCROOT@/secret.txt"
  <Location /p/cap>
    Require tailscale-cap example.com/cap/web
  </Location>
</VirtualHost>
"""

KEEPALIVE_TWO_HOSTS = r"""
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), source_address=(sys.argv[3], 0))
def ask(host):
    s.sendall(f"GET /p/cap HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < n:
        body += s.recv(65536)
    return head.split(b" ")[1].decode() + " " + body.decode().strip()
print(ask("long.test"), flush=True)
sys.stdin.readline()
print(ask("zero.test"), flush=True)
"""


def test_each_hit_honours_the_serving_vhosts_cache_timeout(make_site):
    import subprocess
    from lib import netns
    site = make_site(VHOSTS)
    port = site.httpd.extra_ports[0]
    url = f"http://100.100.0.1:{port}/p/cap"
    src = netns.CLIENTS["laptop"][0]
    # Keep-alive: one connection, first long.test, then (after the revocation) zero.test.
    p = subprocess.Popen(["ip", "netns", "exec", site.ns.ns, "/usr/bin/python3", "-c",
                          KEEPALIVE_TWO_HOSTS, "100.100.0.1", str(port), src],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().split()[0] == "200"
        assert site.ns.curl("laptop", url, "-H", "Host: long.test")[0] == 200
        site.emulator.patch_node("laptop", cap_map={})
        p.stdin.write("\n")
        p.stdin.flush()
        answer = p.stdout.readline()
        assert answer.split()[0] == "403" and SECRET not in answer, answer
    finally:
        p.kill()
        p.wait()
    # New connections: the process cache holds alice's old answer for long.test.
    for _ in range(4):
        status, body, _ = site.ns.curl("laptop", url, "-H", "Host: zero.test")
        assert status == 403 and SECRET not in body
