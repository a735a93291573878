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
