"""The identity cache shared by all httpd processes (AuthTailscaleCache,
mod_socache): tailscaled is asked about a node about once per cache timeout
for the whole server, under prefork and event alike, and every answer still
ages and is checked as a process's own would be."""

import json
import re
import time
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import unquote

import pytest

from lib import rawhttp
from lib.netns import CLIENTS

from .site import ADMITS
from .test_cache import child_pids

MPMS = ["event", "prefork"]

# Many processes, each with few workers, so that a burst spreads over them.
PROCESSES = {
    "prefork": "StartServers 8\nMinSpareServers 8\nMaxSpareServers 16\nServerLimit 32\n"
               "MaxRequestWorkers 32",
    "event": "StartServers 4\nServerLimit 4\nThreadsPerChild 4\nMaxRequestWorkers 16\n"
             "MinSpareThreads 16\nMaxSpareThreads 16",
}
EXPECTED_PROCESSES = {"prefork": 8, "event": 4}

# Which process served each request, from the access log.
STATUS_AND_PIDS = """
ExtendedStatus On
LogFormat "%a %P" tslpid
CustomLog @DIR@/logs/pid.log tslpid
<Location /server-status>
  SetHandler server-status
  Require ip 127.0.0.1
</Location>
"""

PEERS = ["laptop", "phone", "juergen-pc", "ci-runner", "edge", "friend"]
LOGINS = {"laptop": "alice@example.com", "phone": "bob@example.com"}

# A burst of connection-per-request requests, `per` from each named client,
# `conc` at a time: [client, status, X-TS-Login] for each.
_BURST = r"""
import http.client, json, sys
from concurrent.futures import ThreadPoolExecutor
srv, port, path, per, conc = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
src = dict(a.split("=") for a in sys.argv[6:])
def one(name):
    c = http.client.HTTPConnection(srv, port, source_address=(src[name], 0), timeout=20)
    c.request("GET", path, headers={"Connection": "close"})
    r = c.getresponse()
    r.read()
    c.close()
    return [name, r.status, r.getheader("X-TS-Login")]
jobs = [n for _ in range(per) for n in src]
with ThreadPoolExecutor(conc) as ex:
    print(json.dumps(list(ex.map(one, jobs))))
"""


def burst(site, clients, per=12, conc=8, path="/p/user-any", port=None):
    srcs = [f"{n}={CLIENTS[n][0]}" for n in clients]
    r = site.ns.run(["/usr/bin/python3", "-c", _BURST, "100.100.0.1",
                     str(port or site.httpd.ts_port), path, str(per), str(conc)] + srcs,
                    timeout=120)
    return json.loads(r.stdout)


def whois_by_node(emulator):
    """{client IP: [asking httpd pid, ...]} of every whois since the last reset
    (the module asks about ip:port; a tailnet node is its IP)."""
    out = defaultdict(list)
    for rec in emulator.requests():
        if rec.get("endpoint") != "whois":
            continue
        m = re.search(r"[?&]addr=([^&]+)", rec.get("target") or rec.get("path") or "")
        if m:
            addr = unquote(m.group(1))
            ip = addr[1:addr.index("]")] if addr.startswith("[") else addr.rsplit(":", 1)[0]
            out[ip].append(rec.get("pid"))
    return out


def serving_pids(site):
    """{client IP: {pid, ...}} from the access log."""
    out = defaultdict(set)
    log = Path(site.httpd.dir) / "logs" / "pid.log"
    for line in log.read_text().splitlines() if log.exists() else []:
        ip, pid = line.split()
        out[ip].add(int(pid))
    return out


def status(site):
    _, _, body = rawhttp.request("127.0.0.1", site.httpd.port, "/server-status?auto")
    return dict(l.split(": ", 1) for l in body.splitlines() if ": " in l)


def start_site(make_site, mpm, extra):
    site = make_site(PROCESSES[mpm] + "\n" + STATUS_AND_PIDS + extra, mpm=mpm,
                     modules=["socache_shmcb", "status"])
    deadline = time.time() + 20
    while len(child_pids(site.httpd)) < EXPECTED_PROCESSES[mpm] and time.time() < deadline:
        time.sleep(0.2)
    site.emulator.reset_counters()
    return site


def ip_of(name):
    return CLIENTS[name][0]


@pytest.mark.parametrize("mpm", MPMS)
def test_a_burst_from_each_node_asks_tailscaled_at_most_twice_for_all_processes(make_site, mpm):
    site = start_site(make_site, mpm, "AuthTailscaleCacheTimeout 60\n"
                      "AuthTailscaleNegativeCacheTimeout 60")
    results = burst(site, PEERS + ["stranger"])
    for name, code, login in results:
        assert code == (200 if name in ADMITS["user-any"] else 403), results
        if name in LOGINS:
            assert login == LOGINS[name], results
    asked = whois_by_node(site.emulator)
    served = serving_pids(site)
    # The burst did reach several processes: else this proves nothing.
    assert len(set().union(*served.values())) >= 2, served
    for name in PEERS + ["stranger"]:
        assert 1 <= len(asked[ip_of(name)]) <= 2, (name, dict(asked))
    st = status(site)
    assert st["TailscaleSharedCache"] == "shmcb"
    assert int(st["TailscaleSharedCacheEntries"]) >= len(PEERS) + 1
    assert int(st["TailscaleSharedCacheHits"]) > 0
    assert int(st["TailscaleSharedCacheMisses"]) >= len(PEERS) + 1


@pytest.mark.parametrize("mpm", MPMS)
def test_cache_none_asks_in_each_process(make_site, mpm):
    """AuthTailscaleCache none: the behaviour before the shared cache, each
    process asks tailscaled once per node on its own."""
    site = start_site(make_site, mpm, "AuthTailscaleCache none\n"
                      "AuthTailscaleCacheTimeout 60")
    results = burst(site, ["laptop", "phone"], per=24)
    assert all(code == 200 for _, code, _ in results), results
    asked = whois_by_node(site.emulator)
    served = serving_pids(site)
    for name in ("laptop", "phone"):
        pids = asked[ip_of(name)]
        assert len(pids) == len(set(pids)), "one whois per node per process"
        assert set(pids) == served[ip_of(name)], (name, pids, served)
    assert status(site)["TailscaleSharedCache"] == "none"


@pytest.mark.parametrize("mpm", MPMS)
def test_every_node_is_asked_again_after_the_timeout(make_site, mpm):
    site = start_site(make_site, mpm, "AuthTailscaleCacheTimeout 2\n"
                      "AuthTailscaleNegativeCacheTimeout 2")
    nodes = ["laptop", "phone", "ci-runner", "stranger"]
    burst(site, nodes, per=8)
    first = whois_by_node(site.emulator)
    time.sleep(2.5)
    site.emulator.reset_counters()
    burst(site, nodes, per=8)
    again = whois_by_node(site.emulator)
    for name in nodes:
        assert 1 <= len(first[ip_of(name)]) <= 2, (name, dict(first))
        assert 1 <= len(again[ip_of(name)]) <= 2, (name, dict(again))


@pytest.mark.parametrize("mpm", MPMS)
def test_a_reassigned_address_is_its_new_owner_in_every_process_after_one_timeout(
        make_site, mpm):
    site = start_site(make_site, mpm, "AuthTailscaleCacheTimeout 2")
    before = burst(site, ["laptop"], per=24)
    assert {login for _, _, login in before} == {"alice@example.com"}, before
    # laptop's address now belongs to bob's phone, phone's to alice's laptop.
    tailnet = site.emulator.tailnet()
    nodes = tailnet["nodes"]
    nodes["laptop"]["addresses"], nodes["phone"]["addresses"] = \
        nodes["phone"]["addresses"], nodes["laptop"]["addresses"]
    site.emulator.set_tailnet(tailnet)
    time.sleep(2.3)
    after = burst(site, ["laptop"], per=24)
    assert {login for _, _, login in after} == {"bob@example.com"}, after
    assert len(set().union(*serving_pids(site).values())) >= 2


VHOSTS = """
AuthTailscaleCacheTimeout 1h
Listen 100.100.0.1:@PORT2@
<VirtualHost 100.100.0.1:@PORT2@>
  ServerName long.test
  AliasMatch "^/p/" "@DOCROOT@/secret.txt"
  Header always set X-TS-Login "%{TAILSCALE_USER_LOGIN}e" env=TAILSCALE_USER_LOGIN
  <Location /p/cap>
    Require tailscale-cap example.com/cap/web
  </Location>
</VirtualHost>
<VirtualHost 100.100.0.1:@PORT2@>
  ServerName short.test
  AuthTailscaleCacheTimeout 1
  AliasMatch "^/p/" "@DOCROOT@/secret.txt"
  <Location /p/cap>
    Require tailscale-cap example.com/cap/web
  </Location>
</VirtualHost>
"""

_HOST_BURST = _BURST.replace('headers={"Connection": "close"}',
                             'headers={"Connection": "close", "Host": sys.argv[6]}').replace(
    "for a in sys.argv[6:]", "for a in sys.argv[7:]")


@pytest.mark.parametrize("mpm", MPMS)
def test_a_revoked_grant_stops_within_the_serving_vhosts_timeout(make_site, mpm):
    """An answer another process shared, fresh for a vhost that keeps it an
    hour, serves a vhost with a 1 s timeout for at most 1 s."""
    site = start_site(make_site, mpm, VHOSTS)
    port = site.httpd.extra_ports[0]

    def hosted(host):
        r = site.ns.run(["/usr/bin/python3", "-c", _HOST_BURST, "100.100.0.1", str(port),
                         "/p/cap", "16", "8", host, f"laptop={ip_of('laptop')}"], timeout=120)
        return [code for _, code, _ in json.loads(r.stdout)]

    assert set(hosted("long.test")) == {200}
    site.emulator.patch_node("laptop", cap_map={})
    time.sleep(1.3)
    assert set(hosted("short.test")) == {403}
    assert len(set().union(*serving_pids(site).values())) >= 2


def shared_mappings_holding(pid, needle):
    """[(address, bytes)] of the shared memory mappings of process pid (the
    shmcb segment) that hold needle."""
    found = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb") as mem:
        for line in maps:
            fields = line.split()
            if len(fields) < 2 or not fields[1].startswith("rw") or fields[1][3] != "s":
                continue
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except OSError:
                continue
            if needle in data:
                found.append((lo, bytearray(data)))
    return found


@pytest.mark.parametrize("mpm", MPMS)
@pytest.mark.parametrize("damage", ["login", "version", "magic"])
def test_a_damaged_shared_entry_is_a_miss_never_an_identity(make_site, mpm, damage):
    """An entry altered in shared memory (its identity, its format version,
    its magic as if another program wrote it) is not used: the next process
    asks tailscaled and gets alice, never the altered login."""
    site = start_site(make_site, mpm, "AuthTailscaleCacheTimeout 60")
    assert burst(site, ["laptop"], per=1, conc=1)[0][1:] == [200, "alice@example.com"]
    key = f"{site.emulator.socket_path}|{ip_of('laptop')}".encode()
    pid = child_pids(site.httpd)[0]
    segs = shared_mappings_holding(pid, key)
    assert len(segs) == 1, [hex(a) for a, _ in segs]
    base, data = segs[0]
    at = data.index(b"TSLI", data.index(key) - 28)   # the header precedes the key
    assert data[at + 28:at + 28 + len(key)] == key
    assert data[at:at + 4] == b"TSLI"
    if damage == "login":
        i = data.index(b"alice@example.com", at)
        data[i:i + 5] = b"mallo"
    elif damage == "version":
        data[at + 4] = 99
    else:
        data[at:at + 4] = b"XXXX"
    with open(f"/proc/{pid}/mem", "r+b") as mem:
        mem.seek(base + at)
        mem.write(bytes(data[at:at + 28 + len(key) + 4096]))
    seen = set()
    for _ in range(10):
        results = burst(site, ["laptop"], per=16)
        seen |= {login for _, _, login in results}
        if int(status(site).get("TailscaleSharedCacheUnreadable", 0)) > 0:
            break
    assert seen == {"alice@example.com"}, seen
    assert int(status(site)["TailscaleSharedCacheUnreadable"]) >= 1
    assert len(whois_by_node(site.emulator)[ip_of("laptop")]) >= 1


@pytest.mark.parametrize("line,needle", [
    ("AuthTailscaleCache nosuch", "'nosuch' is not a loaded mod_socache provider"),
    ("AuthTailscaleCache shmcb:/tmp/x(12", "AuthTailscaleCache: shmcb:/tmp/x(12"),
    ("<VirtualHost 127.0.0.1:@PORT2@>\nAuthTailscaleCache none\n</VirtualHost>",
     "cannot occur within <VirtualHost> section"),
])
def test_a_bad_cache_directive_fails_configtest(make_httpd, tmp_dir, line, needle):
    h = make_httpd(line, start=False, modules=["socache_shmcb"],
                   socket_path=str(tmp_dir / "none.sock"))
    rc, out = h.configtest()
    assert rc != 0, out
    assert needle in out, out


def test_without_shmcb_answers_stay_per_process_and_the_server_says_so(make_httpd):
    h = make_httpd(STATUS_AND_PIDS.replace("@DIR@/logs/pid.log", "/dev/null"),
                   modules=["status"])
    assert "TS01070" in h.error_log()
    _, _, body = rawhttp.request("127.0.0.1", h.port, "/server-status?auto")
    assert "TailscaleSharedCache: none" in body
    assert "TailscaleSharedCacheEntries" not in body


def test_cache_none_is_quiet(make_httpd):
    h = make_httpd("AuthTailscaleCache none\n" + STATUS_AND_PIDS.replace(
        "@DIR@/logs/pid.log", "/dev/null"), modules=["status"])
    assert "TS01070" not in h.error_log()


@pytest.mark.parametrize("mpm", MPMS)
def test_a_graceful_restart_shares_through_the_new_generations_cache(make_site, mpm):
    # Processes wait for another's pending lookup up to a quarter of
    # AuthTailscaleTimeout: 2 s here, so a slow machine right after the
    # restart does not make them give up and ask themselves.
    site = start_site(make_site, mpm, "AuthTailscaleCacheTimeout 60\nAuthTailscaleTimeout 8")
    assert {c for _, c, _ in burst(site, ["laptop", "phone"], per=8)} == {200}
    site.httpd.graceful()
    deadline = time.time() + 20
    while len(child_pids(site.httpd)) < EXPECTED_PROCESSES[mpm] and time.time() < deadline:
        time.sleep(0.2)
    site.emulator.reset_counters()
    results = burst(site, ["laptop", "phone"], per=16)
    assert {c for _, c, _ in results} == {200}, results
    asked = whois_by_node(site.emulator)
    for name in ("laptop", "phone"):
        assert len(asked[ip_of(name)]) <= 2, (name, dict(asked))
    assert status(site)["TailscaleSharedCache"] == "shmcb"
    assert "TS0107" not in site.httpd.error_log().replace("TS01077", "")
