#!/usr/bin/python3
"""The mod_tailscale benchmark: what tailnet identity costs, measured side by
side with the same server without authorization, in one run.

Run it as root through build/bench (which installs the tools and builds
first), or directly:  /usr/bin/python3 test/bench/run.py [--quick] [--json F]

One Apache httpd (event MPM, our modules loaded) serves the same small static
file from three locations that differ only in authorization:

    base    Require all granted                               (the baseline)
    user    Require tailscale-user *@example.com
    ident   AuthType tailscale + Require valid-user + AuthTailscaleHeaders on
            + mod_headers copying TAILSCALE_USER_LOGIN into the response

Clients live in a network namespace holding tailnet addresses, so the module
sees real tailnet peers and asks the tailscaled emulator about them.  The
three locations are measured in alternating order, several rounds; the table
shows medians and the median of the per-round ratios to the baseline.
Row 7 (`--only hang`) is issue 11's hanging tailscaled: a server of its own
per module tree (this one and, with --modules-from, the other, side by side),
40 clients from 25 new tailnet nodes asking a protected URL for 12 s while
the emulator accepts and never answers (test/bench/hang_load.py), then the
time to normal service once it answers again.
Row 8 (`--only shared`) is issue 21's whois count for the whole host: per
module tree and MPM (prefork with 32 children, event with 4 processes) a
fresh server, 10 nodes new to it sending 300 connection-per-request requests
each within one cache timeout; it prints the whois each node cost.
`--mpm prefork` runs rows 1-3 under prefork (32 children) instead of event.
Row 9 (`--only assertion`): the identity location of row 3 with and without
AuthTailscaleAssertion (a signed JWT per request, reused while fresh), keep-alive,
alternating rounds.
Nothing here asserts timings: it prints figures.  docs/benchmark.md explains
every row.
"""

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "test"))

from lib.emulator import Emulator  # noqa: E402
import lib.httpd  # noqa: E402
from lib.httpd import Httpd, module_path  # noqa: E402
from lib import staging  # noqa: E402
from lib.netns import _ip  # noqa: E402
from lib.netns import (SERVER_V4, TailnetNamespace, pick_subnet, subnet_addrs,  # noqa: E402
                       subnet_nets)

DOMAIN = "web1.tail1234.ts.net"
BENCH_USER = "alice@example.com"
# Eight extra nodes of the sample tailnet (user-owned by alice), one client
# address each in the namespace: the "8 distinct tailnet addresses"
# (100.90.N.1-8; N is chosen at start so that concurrent runs do not collide).
BENCH_NODES = []
# The hanging-tailscaled row (issue 11): 25 more nodes of alice's, new to the
# server of each run of that row (100.90.N.101-125).
HANG_NODES = []
HANG_CLIENTS = 40
HANG_REQUESTS = 20        # per client: 800 requests scheduled over the phase
HANG_SECONDS = 12
# The shared-cache row (issue 21): nodes new to each of its servers
# (100.90.N.201-210), each sending SHARED_PER_NODE requests.
SHARED_NODES = []
SHARED_PER_NODE = 300
SHARED_MPMS = [
    ("prefork", 32, "StartServers 32\nMinSpareServers 32\nMaxSpareServers 32\n"
                    "ServerLimit 32\nMaxRequestWorkers 32"),
    ("event", 4, "StartServers 4\nServerLimit 4\nThreadsPerChild 25\nMaxRequestWorkers 100\n"
                 "MinSpareThreads 100\nMaxSpareThreads 100"),
]
DEFAULT_TTL = 10          # AuthTailscaleCacheTimeout default, seconds
ROWS = [
    ("base", "Require all granted"),
    ("user", "Require tailscale-user *@example.com"),
    ("ident", "AuthType tailscale + identity env/headers"),
]
# Row 8: the identity location of row 3 without (its own /ident/) and with a
# signed assertion (the same location plus AuthTailscaleAssertion on).
ASSERT_ROWS = [
    ("ident", "AuthType tailscale, assertion off"),
    ("assert", "AuthType tailscale, AuthTailscaleAssertion on"),
]
BODY = "<!doctype html><title>bench</title><p>" + "x" * 180 + "</p>\n"   # ~230 bytes

# The baseline and the tailnet rule, as rows 1-3 and row 7 serve them.
BASE_AND_USER = r"""<Location /base/>
  Require all granted
</Location>
<Location /user/>
  Require tailscale-user *@example.com
</Location>
"""

SERVER_CONFIG = r"""
AuthTailscaleURL @SOCKET@
Protocols h2c http/1.1
H2Direct on
""" + BASE_AND_USER + r"""<Location /ident/>
  AuthType tailscale
  Require valid-user
  AuthTailscaleHeaders on
  Header set X-Tailscale-User "%{TAILSCALE_USER_LOGIN}e"
</Location>
"""

# Row 9's locations: only when it runs (a module tree from before issue 20
# does not know the directive, and rows 1-3 compare trees).
ASSERT_CONFIG = r"""<Location /assert/>
  AuthType tailscale
  Require valid-user
  AuthTailscaleHeaders on
  AuthTailscaleAssertion on
  Header set X-Tailscale-User "%{TAILSCALE_USER_LOGIN}e"
</Location>
<Location /assert-check/>
  AuthType tailscale
  Require valid-user
  AuthTailscaleAssertion on
  Header set X-Assertion "expr=%{req:Tailscale-Jwt-Assertion}"
</Location>
"""

# Only for the callgrind server: the status request that marks each dump.
CG_EXTRA = r"""
ExtendedStatus Off
<Location /server-status>
  SetHandler server-status
  Require ip 127.0.0.1
</Location>
"""

# The hanging-tailscaled row: a server of its own per module tree.
HANG_CONFIG = r"""
AuthTailscaleURL @SOCKET@
%(timeout)s
""" + BASE_AND_USER

# The shared-cache row: one server per module tree and MPM (%(procs)s is
# the MPM's process settings).
SHARED_CONFIG = r"""
AuthTailscaleURL @SOCKET@
%(procs)s
""" + BASE_AND_USER

MEMORY_CONFIG = r"""
AuthTailscaleURL @SOCKET@
%(size)s
<Location /user/>
  Require tailscale-user *@example.com
</Location>
"""

TLS_STATIC = r"""
<VirtualHost 127.0.0.1:@TLS_PORT@>
  ServerName web1.tail1234.ts.net
  SSLEngine on
  SSLCertificateFile %(cert)s
  SSLCertificateKeyFile %(key)s
</VirtualHost>
"""

TLS_MD = r"""
<MDomain web1.tail1234.ts.net>
  MDCertificateProtocol tailscale
  MDCertificateAuthority @SOCKET@
</MDomain>
<VirtualHost 127.0.0.1:@TLS_PORT@>
  ServerName web1.tail1234.ts.net
  SSLEngine on
</VirtualHost>
"""


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------

def ensure_tools():
    """wrk, h2load and ab come from Debian packages; install the missing ones."""
    need = {"wrk": "wrk", "h2load": "nghttp2-client", "ab": "apache2-utils", "gcc": "gcc"}
    missing = [pkg for tool, pkg in need.items() if not shutil.which(tool)]
    if missing:
        log(f"installing {' '.join(missing)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
                       check=True, env=env)


def build_loadgen(outdir):
    exe = Path(outdir) / "tsl_load"
    subprocess.run(["gcc", "-O2", "-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread",
                    "-o", str(exe), str(HERE / "tsl_load.c")], check=True)
    return str(exe)


def first_line(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        out = (p.stdout + p.stderr).strip().splitlines()
        return out[0].strip() if out else "?"
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def versions():
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kb / 1048576:.1f} GiB"
    except (OSError, AttributeError):
        pass
    httpd = first_line(["apache2", "-v"]).replace("Server version: ", "")
    return {
        "httpd": httpd,
        "wrk": first_line(["wrk", "--version"]).split(" Copyright")[0],
        "h2load": first_line(["h2load", "--version"]),
        "ab": first_line(["ab", "-V"]).replace("This is ApacheBench, Version", "ab").split(" <")[0],
        "kernel": platform.release(),
        "cpu": f"{cpu}, {os.cpu_count()} CPUs, {mem} RAM",
        "python": sys.version.split()[0],
    }


# ---------------------------------------------------------------------------
# Load generators (all run inside the network namespace)
# ---------------------------------------------------------------------------

def run_wrk(ns, url, conns, secs):
    threads = max(1, min(conns, os.cpu_count() or 1))
    r = ns.run(["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{secs:g}s", "--latency", url],
               check=False, timeout=secs + 60)
    out = r.stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError(f"wrk failed: {out}{r.stderr}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors: (.*)", out)

    def pct(p):
        mm = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not mm:
            return None
        return float(mm.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[mm.group(2)]
    n = re.search(r"(\d+) requests in", out)
    return {"rps": float(m.group(1)), "p50": pct(50), "p99": pct(99),
            "requests": int(n.group(1)) if n else None,
            "errors": int(bad.group(1)) if bad else 0, "socket_errors": errs.group(1) if errs else ""}


def run_h2load(ns, url, conns, streams, secs, workdir):
    logf = Path(workdir) / "h2load.log"
    logf.unlink(missing_ok=True)
    # The namespace shares the file system: h2load writes its per-request log here.
    r = ns.run(["h2load", "-t", "1", "-c", str(conns), "-m", str(streams), "-D", f"{secs:g}",
                "--log-file", str(logf), url],
               check=False, timeout=secs + 60)
    out = r.stdout
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    ok = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                   r"(\d+) errored", out)
    st = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    if not m or not ok:
        raise RuntimeError(f"h2load failed: {out}{r.stderr}")
    lat = []
    try:
        for line in logf.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3:
                lat.append(int(parts[2]) / 1000.0)   # microseconds -> ms
    except OSError:
        pass
    lat.sort()

    def pct(p):
        return lat[int((len(lat) - 1) * p)] if lat else None
    non2xx = sum(int(x) for x in st.groups()[1:]) if st else 0
    return {"rps": float(m.group(1)), "p50": pct(0.50), "p99": pct(0.99),
            "requests": int(ok.group(1)),
            "errors": int(ok.group(3)) + int(ok.group(4)) + non2xx}


def run_ab(ns, url, conns, secs):
    r = ns.run(["ab", "-q", "-c", str(conns), "-t", str(max(1, round(secs))), "-n", "10000000", "-s", "10", url],
               check=False, timeout=secs + 60)
    out = r.stdout
    m = re.search(r"Requests per second:\s+([\d.]+)", out)
    if not m:
        raise RuntimeError(f"ab failed: {out}{r.stderr}")
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    failed = re.search(r"Failed requests:\s+(\d+)", out)

    def pct(p):
        mm = re.search(rf"^\s+{p}%\s+(\d+)", out, re.M)
        return float(mm.group(1)) if mm else None
    n = re.search(r"Complete requests:\s+(\d+)", out)
    return {"rps": float(m.group(1)), "p50": pct(50), "p99": pct(99),
            "requests": int(n.group(1)) if n else None,
            "errors": (int(non2xx.group(1)) if non2xx else 0) + (int(failed.group(1)) if failed else 0)}


def run_loadgen(exe, args, ns=None, timeout=600):
    cmd = [exe, *args]
    if ns is not None:
        r = ns.run(cmd, check=False, timeout=timeout)
    else:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"tsl_load failed ({r.returncode}): {r.stderr}")
    d = json.loads(r.stdout)
    d["p50"] = d["lat_us"]["p50"] / 1000.0
    d["p99"] = d["lat_us"]["p99"] / 1000.0
    return d


# ---------------------------------------------------------------------------
# httpd helpers
# ---------------------------------------------------------------------------

def children(httpd):
    """PIDs of the httpd parent's children (the worker processes)."""
    parent = httpd.pid()
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            st = (d / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...
        ppid = int(st.rsplit(")", 1)[1].split()[1])
        if ppid == parent:
            out.append(int(d.name))
    return sorted(out)


def rss_kib(pid):
    try:
        m = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
        return int(m.group(1)) if m else 0
    except OSError:
        return 0


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    """utime + stime of these processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])     # utime, stime
    return total / CLK_TCK


def callgrind_total(path):
    """Instructions in one callgrind dump file."""
    text = Path(path).read_text(errors="replace")
    m = re.search(r"^(?:totals|summary):\s+(\d+)", text, re.M)
    return int(m.group(1)) if m else 0


def wait_gone(pid, timeout=20):
    deadline = time.time() + timeout
    while pid and time.time() < deadline:
        if not lib.httpd.alive(pid):
            return
        time.sleep(0.02)


def whois_target_addr(target):
    m = re.search(r"[?&]addr=([^&]+)", target or "")
    if not m:
        return None
    from urllib.parse import unquote
    a = unquote(m.group(1))
    # The module asks about ip:port (what tailscaled needs for userspace peers);
    # a tailnet node is the IP alone.
    if a.startswith("["):
        return a[1:a.index("]")] if "]" in a else a
    return a.rsplit(":", 1)[0] if a.count(":") == 1 else a


# ---------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------

class Bench:
    def __init__(self, args, only):
        self.a = args
        self.assertion_row = "assertion" in only
        self.base = Path(tempfile.mkdtemp(prefix="tsl-bench-"))
        os.chmod(self.base, 0o755)
        staging.use(self.base / "staged")   # the modules as www-data can read them
        self.emu = None
        self.ns = None
        self.httpd = None
        self.results = {}
        self.notes = []
        self.whois_log = []      # (address, httpd pid, time) of every whois in row 2

    # -- setup ---------------------------------------------------------
    def setup(self):
        self.loadgen = build_loadgen(self.base)
        (self.base / "emu").mkdir()
        self.emu = Emulator().start(self.base / "emu")
        subnet = pick_subnet()
        BENCH_NODES[:] = [(f"bench{i}", *subnet_addrs(subnet, i)) for i in range(1, 9)]
        HANG_NODES[:] = [(f"hang{i}", *subnet_addrs(subnet, 100 + i)) for i in range(1, 26)]
        SHARED_NODES[:] = [(f"shared{i}", *subnet_addrs(subnet, 200 + i)) for i in range(1, 11)]
        for name, v4, v6 in BENCH_NODES + HANG_NODES + SHARED_NODES:
            self.emu.add_node(name, user=BENCH_USER, addresses=[v4, v6], os="linux")
        # Only this run's subnet is routed to the namespace (concurrent test
        # runs and benchmarks keep their own routes).
        self.ns = TailnetNamespace(clients=[(v4, v6) for _, v4, v6
                                            in BENCH_NODES + HANG_NODES + SHARED_NODES],
                                   routes=subnet_nets(subnet), prefix="tslb").create()
        conf = SERVER_CONFIG + (ASSERT_CONFIG if self.assertion_row else "")
        if self.a.core_dir:
            # Crashes leave a core file (httpd makes its children dumpable when
            # CoreDumpDirectory is set); RLIMIT_CORE is inherited from us.
            import resource
            resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            Path(self.a.core_dir).mkdir(parents=True, exist_ok=True)
            os.chmod(self.a.core_dir, 0o1777)
            conf += f"\nCoreDumpDirectory {Path(self.a.core_dir).resolve()}\n"
        # socache_shmcb: the identity cache shared between processes (a
        # module tree from before it ignores the module).
        self.httpd = Httpd(self.base / "httpd", config=conf, mpm=self.a.mpm,
                           modules=["headers", "http2", "socache_shmcb"], our=["authnz_tailscale"],
                           socket_path=self.emu.socket_path, tailnet=True)
        rows = [r for r, _ in ROWS] + ([r for r, _ in ASSERT_ROWS] + ["assert-check"]
                                       if self.assertion_row else [])
        for row in rows:
            self.httpd.write_file(f"{row}/bench.html", BODY)
        self.httpd.start()
        self.check_rows()

    def url(self, row):
        return TailnetNamespace.server_url(self.httpd.ts_port, f"/{row}/bench.html")

    def check_rows(self):
        """Each location must answer 200 (a 403 would be fast and meaningless);
        the identity row must carry the login in the response."""
        srcs = [v4 for _, v4, _ in BENCH_NODES]
        for row, _ in ROWS:
            for src in srcs:
                r = self.ns.run(["curl", "-sS", "-o", "/dev/null", "-D", "-", "--interface", src,
                                 "--max-time", "10", self.url(row)], check=False)
                status = r.stdout.split(" ", 2)[1] if r.stdout.startswith("HTTP/") else "?"
                if status != "200":
                    raise RuntimeError(f"/{row}/ from {src} answered {status}: {r.stdout}{r.stderr}"
                                       f"\n{self.httpd.error_log()[-2000:]}")
                if row == "ident" and f"x-tailscale-user: {BENCH_USER}" not in r.stdout.lower():
                    raise RuntimeError(f"/ident/ did not export the identity: {r.stdout}")
        if not self.assertion_row:
            return self.check_h2c()
        # Row 9's location must really carry a signed assertion.
        r = self.ns.run(["curl", "-sS", "-o", "/dev/null", "-D", "-", "--interface", srcs[0],
                         "--max-time", "10", self.url("assert-check")], check=False)
        if "x-assertion: eyj" not in r.stdout.lower():
            raise RuntimeError(f"/assert-check/ got no Tailscale-Jwt-Assertion: {r.stdout}"
                               f"\n{self.httpd.error_log()[-2000:]}")
        self.check_h2c()

    def check_h2c(self):
        if self.a.mpm != "event":
            return      # mod_http2 stays inactive under prefork
        # h2c with prior knowledge must really be HTTP/2.
        r = self.ns.run(["curl", "-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-w",
                         "%{http_version} %{http_code}", "--max-time", "10", self.url("ident")],
                        check=False)
        if r.stdout.strip() != "2 200":
            raise RuntimeError(f"h2c check failed: {r.stdout} {r.stderr}")

    # -- rows 1-3: interleaved rounds ------------------------------------
    def measured(self, measure, row):
        """Run one measurement; add the httpd processes' CPU time per request."""
        pids = [self.httpd.pid()] + children(self.httpd)
        cpu0 = cpu_seconds(pids)
        res = measure(row)
        pids += [p for p in children(self.httpd) if p not in pids]
        done = res.get("requests") or res["rps"] * self.a.duration
        cpu = cpu_seconds(pids) - cpu0
        # A child that exited during the measurement takes its CPU time along.
        res["cpu_us"] = 1e6 * cpu / max(1, done) if cpu >= 0 else None
        return res

    def rounds(self, key, measure):
        per_row = {row: [] for row, _ in ROWS}
        for rnd in range(self.a.rounds):
            order = ROWS[rnd % len(ROWS):] + ROWS[:rnd % len(ROWS)]
            for row, _ in order:
                res = self.measured(measure, row)
                res["round"] = rnd
                per_row[row].append(res)
                log(f"{key} round {rnd + 1} {row}: {res['rps']:.0f} req/s, httpd {fmt(res['cpu_us'])} "
                    f"CPU us/req, p50 {res['p50']} ms "
                    f"p99 {res['p99']} ms errors {res.get('errors', 0)}")
        self.results[key] = per_row
        return per_row

    def keepalive(self):
        secs = self.a.duration
        for row, _ in ROWS:   # warm-up: children up, caches filled
            run_wrk(self.ns, self.url(row), self.a.connections, 1)
        self.rounds("keepalive", lambda row: run_wrk(self.ns, self.url(row),
                                                     self.a.connections, secs))

    def assertion(self):
        """Row 8: keep-alive throughput of the identity location with and
        without the signed assertion, alternating rounds."""
        secs = self.a.duration
        for row, _ in ASSERT_ROWS:
            run_wrk(self.ns, self.url(row), self.a.connections, 1)
        per_row = {row: [] for row, _ in ASSERT_ROWS}
        for rnd in range(self.a.rounds):
            order = ASSERT_ROWS if rnd % 2 == 0 else ASSERT_ROWS[::-1]
            for row, _ in order:
                res = self.measured(lambda rw: run_wrk(self.ns, self.url(rw), self.a.connections,
                                                       secs), row)
                res["round"] = rnd
                per_row[row].append(res)
                log(f"assertion round {rnd + 1} {row}: {res['rps']:.0f} req/s, httpd "
                    f"{fmt(res['cpu_us'])} CPU us/req, p50 {res['p50']} ms p99 {res['p99']} ms "
                    f"errors {res.get('errors', 0)}")
        self.results["assertion"] = per_row

    def newconn(self):
        secs = self.a.duration
        srcs = ",".join(v4 for _, v4, _ in BENCH_NODES)
        target = f"{SERVER_V4}:{self.httpd.ts_port}"

        def measure(row):
            self.emu.reset_counters()
            self.emu.reset_requests()
            pids_before = set(children(self.httpd))
            t0 = time.time()
            res = run_loadgen(self.loadgen, ["--connect", target, "--src", srcs,
                                             "--path", f"/{row}/bench.html",
                                             "--concurrency", str(self.a.connections),
                                             "--duration", str(secs)], ns=self.ns,
                              timeout=secs + 60)
            elapsed = time.time() - t0
            procs = pids_before | set(children(self.httpd))
            whois = [r for r in self.emu.requests() if r.get("endpoint") == "whois"]
            per = {}
            for r in whois:
                k = (whois_target_addr(r.get("target") or r.get("path")), r.get("pid"))
                per[k] = per.get(k, 0) + 1
                self.whois_log.append((k[0], k[1], r.get("time")))
            res["whois"] = self.emu.counters()["by_endpoint"].get("whois", 0)
            res["whois_per_1k"] = 1000.0 * res["whois"] / max(1, res["requests"])
            res["whois_max_per_node_proc"] = max(per.values()) if per else 0
            res["whois_nodes"] = len({k[0] for k in per})
            res["procs"] = len(procs)
            res["windows"] = int(elapsed // DEFAULT_TTL) + 1
            res["errors"] = res["errors"]
            return res

        run_loadgen(self.loadgen, ["--connect", target, "--src", srcs, "--path", "/user/bench.html",
                                   "--concurrency", str(self.a.connections), "--duration", "1"],
                    ns=self.ns)
        self.rounds("newconn", measure)

    def ab_crosscheck(self):
        """ab: a second opinion on the new-connection rows (one source address,
        HTTP/1.0, server closes), one pass per row."""
        per_row = {}
        for row, _ in ROWS:
            res = self.measured(lambda rw: run_ab(self.ns, self.url(rw), self.a.connections,
                                                  max(3, self.a.duration)), row)
            res["round"] = 0
            per_row[row] = [res]
            log(f"ab {row}: {res['rps']:.0f} req/s p50 {res['p50']} ms p99 {res['p99']} ms "
                f"errors {res['errors']}")
        self.results["ab"] = per_row

    def http2(self):
        secs = self.a.duration
        for row, _ in ROWS:
            run_h2load(self.ns, self.url(row), self.a.h2_connections, self.a.h2_streams, 1, self.base)
        self.rounds("http2", lambda row: run_h2load(self.ns, self.url(row), self.a.h2_connections,
                                                    self.a.h2_streams, secs, self.base))

    # -- row 4: the emulator itself ------------------------------------
    def emulator(self):
        out = {}
        paths = []
        for _, v4, _ in BENCH_NODES:
            paths += ["--path", f"/localapi/v0/whois?addr={v4}"]
        for conc in (1, 8):
            res = run_loadgen(self.loadgen, ["--unix", self.emu.socket_path, "--host",
                                             "local-tailscaled.sock", "--keepalive", *paths,
                                             "--concurrency", str(conc),
                                             "--duration", str(max(2, self.a.duration / 2))])
            out[conc] = res
            log(f"emulator whois c={conc}: {res['rps']:.0f}/s p50 {res['p50']} ms p99 {res['p99']} ms")
        self.results["emulator"] = out

    # -- row 7: a hanging tailscaled (issue 11) -------------------------
    def hang(self):
        """tailscaled accepts and never answers; HANG_CLIENTS clients from the
        25 HANG_NODES (new to this server) ask /user/ for HANG_SECONDS, one
        client per bench node asks /base/ alongside; then the fault is cleared
        and the time until every answer is 200 again is taken.  With
        --modules-from, the same scenario runs against this tree's modules
        and the other tree's, alternating, each with its own fresh server."""
        trees = [("this tree", self.a.own_module_path, REPO)]
        if self.a.modules_from:
            trees.append(("--modules-from", lib.httpd.module_path, Path(self.a.modules_from).resolve()))
        runs = []
        for rnd in range(self.a.hang_rounds):
            for i, tree in enumerate(trees if rnd % 2 == 0 else trees[::-1]):
                res = self.hang_one(tree, f"hang-{rnd}-{i}")
                res["round"] = rnd
                runs.append(res)
        self.results["hang"] = runs

    def hang_one(self, tree, name):
        label, modpath, root = tree
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip() or "?"
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        timeout = f"AuthTailscaleTimeout {self.a.hang_timeout}" if self.a.hang_timeout else ""
        saved = lib.httpd.module_path
        lib.httpd.module_path = modpath
        try:
            h = Httpd(self.base / name, config=HANG_CONFIG % {"timeout": timeout}, mpm="event",
                      our=["authnz_tailscale"], socket_path=self.emu.socket_path, tailnet=True)
            for row in ("base", "user"):
                h.write_file(f"{row}/bench.html", BODY)
            h.start()
        finally:
            lib.httpd.module_path = saved
        try:
            # Up and authorizing (from a bench node: the hang nodes stay new).
            src = BENCH_NODES[0][1]
            for path in ("/base/bench.html", "/user/bench.html"):
                url = TailnetNamespace.server_url(h.ts_port, path)
                r = self.ns.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                                 "--interface", src, "--max-time", "10", url], check=False)
                if r.stdout.strip() != "200":
                    raise RuntimeError(f"hang row: {path} answered {r.stdout} {r.stderr}")
            self.emu.fault("hang")
            self.emu.reset_counters()
            start = time.time() + 1.0
            cmd = ["ip", "netns", "exec", self.ns.ns, "/usr/bin/python3", str(HERE / "hang_load.py"),
                   "--server", f"{SERVER_V4}:{h.ts_port}", "--protected", "/user/bench.html",
                   "--open", "/base/bench.html", "--marker", "x" * 40,
                   "--nodes", ",".join(v4 for _, v4, _ in HANG_NODES),
                   "--open-src", ",".join(v4 for _, v4, _ in BENCH_NODES[:4]),
                   "--clients", str(HANG_CLIENTS), "--requests", str(HANG_REQUESTS),
                   "--seconds", str(HANG_SECONDS), "--recover-seconds", "4",
                   "--start", repr(start)]
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # The load phase ends at start + HANG_SECONDS; the recovery
            # clients then get 503s for half a second before tailscaled answers.
            time.sleep(max(0.0, start + HANG_SECONDS + 0.5 - time.time()))
            whois_hang = self.emu.counters()["by_endpoint"].get("whois", 0)
            cleared = time.time()
            self.emu.clear_fault()
            out, err = p.communicate(timeout=120)
            if p.returncode != 0:
                raise RuntimeError(f"hang_load.py failed: {err[-2000:]}")
            res = json.loads(out)
            res["whois_hang"] = whois_hang
            res["whois_total"] = self.emu.counters()["by_endpoint"].get("whois", 0)
            res["procs"] = len(children(h))
            # Requests sent once tailscaled answers again (one sent before,
            # stuck on a connection the hanging daemon accepted, ends at its
            # timeout whatever the module does): (answered, status, sent).
            after = [(t, st, t0) for t, st, t0 in res["recovery"] if t0 >= cleared]
            first_ok = next((t for t, st, _ in after if st == 200), None)
            bad = [t0 for t, st, t0 in after if st != 200]
            res["first_200_s"] = None if first_ok is None else first_ok - cleared
            # normal service: every request sent from then on got 200
            res["normal_s"] = None if (first_ok is None or (after and after[-1][1] != 200)) \
                else (max(bad) - cleared if bad else 0.0)
            res["recovery_answers"] = len(after)
            res["label"] = f"{label} ({commit}{'+' if dirty else ''})"
            res["timeout"] = self.a.hang_timeout or "2 (default)"
            pr = res["protected"]
            log(f"hang {res['label']}: {pr['answered']}/{res['scheduled']} answered in "
                f"{HANG_SECONDS}s, statuses {pr['status']}, granted {pr['granted']}, whois "
                f"{whois_hang} (+{res['whois_total'] - whois_hang} after clear), open "
                f"{res['open']['answered']} {res['open']['status']} p99 {fmt(res['open_p99_ms'], '.1f')} ms, "
                f"normal service {fmt(res['normal_s'], '.2f')} s after clear "
                f"(first 200 after {fmt(res['first_200_s'], '.2f')} s)")
            return res
        finally:
            self.emu.clear_fault()
            h.stop(check_crashes=False)
            crashes = h.crashes()
            if crashes:
                self.notes.append(f"httpd crashes in the hang row ({label}): " + "; ".join(crashes[:3]))

    # -- row 8: whois per node per timeout for the whole host ------------
    def shared(self):
        """Per module tree (this one and, with --modules-from, the other) and
        MPM: a fresh server with all its processes up, then 10 nodes new to
        it send SHARED_PER_NODE connection-per-request requests each (32 at a
        time); the whois each node cost, and in how many cache timeouts."""
        trees = [("this tree", self.a.own_module_path, REPO)]
        if self.a.modules_from:
            trees.append(("--modules-from", lib.httpd.module_path,
                          Path(self.a.modules_from).resolve()))
        runs = []
        for mpm, procs, procs_conf in SHARED_MPMS:
            for tree in trees:
                runs.append(self.shared_one(tree, mpm, procs, procs_conf))
        self.results["shared"] = runs

    def shared_one(self, tree, mpm, want_procs, procs_conf):
        label, modpath, root = tree
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip() or "?"
        saved = lib.httpd.module_path
        lib.httpd.module_path = modpath
        try:
            h = Httpd(self.base / f"shared-{mpm}-{'other' if label.startswith('--') else 'this'}",
                      config=SHARED_CONFIG % {"procs": procs_conf}, mpm=mpm,
                      modules=["socache_shmcb"], our=["authnz_tailscale"],
                      socket_path=self.emu.socket_path, tailnet=True)
            h.write_file("user/bench.html", BODY)
            h.start()
        finally:
            lib.httpd.module_path = saved
        try:
            deadline = time.time() + 30
            while len(children(h)) < want_procs and time.time() < deadline:
                time.sleep(0.2)
            procs_up = len(children(h))
            nodes = {v4 for _, v4, _ in SHARED_NODES}
            self.emu.reset_counters()
            self.emu.reset_requests()
            t0 = time.time()
            res = run_loadgen(self.loadgen, ["--connect", f"{SERVER_V4}:{h.ts_port}",
                                             "--src", ",".join(sorted(nodes)),
                                             "--path", "/user/bench.html",
                                             "--concurrency", "32",
                                             "--requests", str(SHARED_PER_NODE * len(nodes)),
                                             "--duration", "60"], ns=self.ns, timeout=120)
            elapsed = time.time() - t0
            per_node = {n: 0 for n in nodes}
            asking = set()
            for r in self.emu.requests():
                if r.get("endpoint") != "whois":
                    continue
                a = whois_target_addr(r.get("target") or r.get("path"))
                if a in per_node:
                    per_node[a] += 1
                    asking.add(r.get("pid"))
            windows = int(elapsed // DEFAULT_TTL) + 1
            out = {"label": f"{label} ({commit})", "mpm": mpm, "procs": procs_up,
                   "requests": res.get("requests"), "ok": res.get("ok"),
                   "errors": res.get("errors", 0), "elapsed_s": elapsed, "windows": windows,
                   "whois": sum(per_node.values()),
                   "max_per_node": max(per_node.values()),
                   "mean_per_node": sum(per_node.values()) / len(per_node),
                   "asking_procs": len(asking)}
            log(f"shared {mpm} {out['label']}: {out['procs']} procs, {out['requests']} requests "
                f"({out['ok']} ok) in {elapsed:.1f}s, whois per node max {out['max_per_node']} "
                f"mean {out['mean_per_node']:.1f} (asked by {len(asking)} processes)")
            return out
        finally:
            h.stop(check_crashes=False)
            crashes = h.crashes()
            if crashes:
                self.notes.append(f"httpd crashes in the shared row ({label}, {mpm}): "
                                  + "; ".join(crashes[:3]))

    # -- row 5: certificate start-up -----------------------------------
    def cert_startup(self):
        try:
            md_so = lib.httpd.module_path("md_tailscale")
        except FileNotFoundError:
            md_so = Path("/nonexistent")
        # The pair tailscaled holds (fetching it once also pre-warms the emulator).
        r = subprocess.run(["curl", "-sS", "--max-time", "30", "--unix-socket", self.emu.socket_path,
                            f"http://local-tailscaled.sock/localapi/v0/cert/{DOMAIN}?type=pair"],
                           capture_output=True, check=True)
        pem = r.stdout.decode()
        key = re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----\n?",
                        pem, re.S)
        certs = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", pem, re.S)
        if not key or not certs:
            raise RuntimeError(f"cert pair from the emulator looks wrong: {pem[:200]!r}")
        tls = self.base / "tls"
        tls.mkdir(exist_ok=True)
        os.chmod(tls, 0o755)
        (tls / "cert.pem").write_text("".join(certs))
        (tls / "key.pem").write_text(key.group(0))
        os.chmod(tls / "key.pem", 0o600)
        ca = self.emu.ca_pem_path

        variants = [("static", TLS_STATIC % {"cert": tls / "cert.pem", "key": tls / "key.pem"},
                     ["ssl", "socache_shmcb"], [])]
        md_note = None
        if md_so.exists():
            # "md": a first start, the store empty, tailscaled holding the cert;
            # "md-store": a start that finds the certificate in its own store.
            variants.append(("md", TLS_MD, ["ssl", "socache_shmcb"], ["md_tailscale"]))
            variants.append(("md-store", TLS_MD, ["ssl", "socache_shmcb"], ["md_tailscale"]))
            # Diagnosis: the static server with the module merely loaded (no MDomain).
            variants.append(("static+load", TLS_STATIC % {"cert": tls / "cert.pem", "key": tls / "key.pem"},
                             ["ssl", "socache_shmcb"], ["md_tailscale"]))
        else:
            md_note = "n/a (module not built)"
        servers = {}
        for name, conf, mods, our in variants:
            servers[name] = Httpd(self.base / f"tls-{name}", config=conf, mpm="event",
                                  modules=mods, our=our, socket_path=self.emu.socket_path)
        times = {name: [] for name in servers}
        phases = {name: [] for name in servers}
        names = list(servers)
        for rep in range(self.a.cert_reps):
            for name in (names if rep % 2 == 0 else names[::-1]):
                h = servers[name]
                store = h.dir / "md_tailscale"
                if name == "md":
                    shutil.rmtree(store, ignore_errors=True)
                elif name == "md-store" and not store.exists():
                    self.time_to_tls(h, ca)      # fill the store once, not measured
                t, t_cmd, t_tcp = self.time_to_tls(h, ca)
                times[name].append(t)
                phases[name].append((t_cmd, t_tcp))
                log(f"cert start-up {name} rep {rep + 1}: handshake {t * 1000 if t else float('nan'):.0f} ms "
                    f"(start command returned {t_cmd * 1000:.0f} ms, port open "
                    f"{t_tcp * 1000 if t_tcp else float('nan'):.0f} ms)")
        self.results["cert"] = {"times": times, "phases": phases, "md_note": md_note}

    def time_to_tls(self, h, cafile, timeout=30):
        """Seconds from `apache2 -k start` to the first TLS handshake whose
        chain verifies against cafile for DOMAIN; also when the start command
        returned and when the port first accepted a TCP connection."""
        ctx = ssl.create_default_context(cafile=str(cafile))
        t0 = time.monotonic()
        h.start(wait=False)
        t_cmd = time.monotonic() - t0
        ok = t_tcp = None
        try:
            while time.monotonic() - t0 < timeout:
                try:
                    with socket.create_connection(("127.0.0.1", h.tls_port), timeout=2) as s:
                        if t_tcp is None:
                            t_tcp = time.monotonic() - t0
                        with ctx.wrap_socket(s, server_hostname=DOMAIN):
                            ok = time.monotonic() - t0
                            break
                except (ssl.SSLError, OSError):
                    time.sleep(0.001)
        finally:
            pid = h.pid()
            h.stop(check_crashes=False)
            wait_gone(pid)
            try:
                h.pid_path.unlink()
            except FileNotFoundError:
                pass
        if ok is None:
            self.notes.append(f"cert start-up: no verified handshake within {timeout}s "
                              f"({h.error_log()[-500:]})")
        return ok, t_cmd, t_tcp

    # -- row 6: memory -------------------------------------------------
    def memory(self):
        out = {}
        total = self.a.peers
        for size in (None, self.a.cache_size2):
            label = size or 1000
            conf = MEMORY_CONFIG % {"size": f"AuthTailscaleCacheSize {size}" if size else ""}
            h = Httpd(self.base / f"mem-{label}", config=conf, mpm="event",
                      our=["authnz_tailscale"], socket_path=self.emu.socket_path)
            h.write_file("user/bench.html", BODY)
            h.start()
            try:
                out[label] = self.memory_one(h, total)
            finally:
                h.stop(check_crashes=False)
            m = out[label]
            log(f"memory cache {label}: RSS/child {m['rss0']} -> {m['rss_half']} -> {m['rss_end']} KiB, "
                f"whois {m['whois']}, errors {m['errors']}")
        self.results["memory"] = out

    def memory_one(self, h, total):
        target = f"127.0.0.1:{h.port}"
        # Distinct, never reused source address:port pairs: 3 addresses x 40000 ports.
        srcs = "127.0.0.1,127.0.0.2,127.0.0.3"

        def load(n, ports):
            return run_loadgen(self.loadgen, ["--connect", target, "--src", srcs,
                                              "--src-ports", ports, "--path", "/user/bench.html",
                                              "--expect", "403", "--concurrency", "16",
                                              "--requests", str(n), "--duration", "600"],
                               timeout=700)

        def rss():
            pids = children(h)
            vals = [rss_kib(p) for p in pids]
            return (max(vals) if vals else 0), sum(vals), len(pids)
        load(400, "60000-60399")              # warm-up: threads, pools, libcurl
        time.sleep(0.3)
        rss0, sum0, n0 = rss()
        self.emu.reset_counters()
        half = total // 2
        a = load(half, "10000-29999")
        rss_half, sum_half, _ = rss()
        b = load(total - half, "30000-49999")
        rss_end, sum_end, n_end = rss()
        whois = self.emu.counters()["by_endpoint"].get("whois", 0)
        return {"rss0": rss0, "rss_half": rss_half, "rss_end": rss_end,
                "sum0": sum0, "sum_half": sum_half, "sum_end": sum_end, "procs": n_end,
                "requests": a["requests"] + b["requests"], "errors": a["errors"] + b["errors"],
                "status": [a["status"], b["status"]], "whois": whois,
                "rps": (a["requests"] + b["requests"]) / max(0.001, a["elapsed"] + b["elapsed"])}

    # -- public clients (issue 23) ----------------------------------------
    def public(self):
        """1,000 new-connection requests from a public address (TEST-NET-3,
        added to the namespace) to the tailscale-user location: the whois
        calls they cost.  Such an address can never be a tailnet peer."""
        src = f"203.0.113.{os.getpid() % 250 + 1}"
        _ip("addr", "add", f"{src}/32", "dev", self.ns.ns_if, ns=self.ns.ns)
        _ip("route", "add", f"{src}/32", "dev", self.ns.host_if)
        try:
            self.emu.reset_counters()
            res = run_loadgen(self.loadgen, ["--connect", f"{SERVER_V4}:{self.httpd.ts_port}",
                                             "--src", src, "--path", "/user/bench.html",
                                             "--expect", "403", "--concurrency", "8",
                                             "--requests", "1000", "--duration", "300"],
                              ns=self.ns, timeout=360)
            whois = self.emu.counters()["by_endpoint"].get("whois", 0)
        finally:
            _ip("route", "del", f"{src}/32", "dev", self.ns.host_if, check=False)
            _ip("addr", "del", f"{src}/32", "dev", self.ns.ns_if, ns=self.ns.ns, check=False)
        per_1000 = 1000.0 * whois / max(1, res["requests"])
        self.results["public"] = {"requests": res["requests"], "errors": res["errors"],
                                  "whois": whois, "per_1000": per_1000}
        log(f"public: {res['requests']} requests from {src}, {res['errors']} errors, "
            f"{whois} whois")
        self.notes.append(f"Public clients: {per_1000:.0f} whois per 1,000 new-connection "
                          f"requests from a public address to /user/ ({res['requests']} "
                          f"requests, {res['errors']} not 403); fe4265f asked once per "
                          f"connection")

    # -- instructions per request (callgrind): noise-free cost -----------
    def callgrind(self):
        """Instructions executed by a single-process httpd (apache2 -X under
        valgrind --tool=callgrind) per request, for each row: a figure that
        other load on the machine cannot disturb.  A request to
        /server-status calls our azt_status_hook, and callgrind dumps (and
        zeroes) its counters right before that function: the dump after a
        row's N requests holds those N requests (plus the first half of the
        one status request, under 0.1%)."""
        if not shutil.which("valgrind"):
            self.notes.append("callgrind rows skipped: valgrind is not installed")
            return
        conf = SERVER_CONFIG + CG_EXTRA
        h = Httpd(self.base / "cg-httpd", config=conf, mpm="event",
                  modules=["headers", "http2", "status"], our=["authnz_tailscale"],
                  socket_path=self.emu.socket_path, tailnet=True)
        for row, _ in ROWS:
            h.write_file(f"{row}/bench.html", BODY)
        outdir = self.base / "cg"
        outdir.mkdir()
        os.chmod(outdir, 0o777)
        cmd = ["valgrind", "--tool=callgrind", "--vgdb=no", "--dump-instr=no", "--dump-line=no",
               "--dump-before=azt_status_hook", f"--callgrind-out-file={outdir}/cg.out",
               *h._cmd("-X")]
        vglog = open(outdir / "vg.log", "w")
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=vglog, start_new_session=True)
        srcs = ",".join(v4 for _, v4, _ in BENCH_NODES)
        target = f"{SERVER_V4}:{h.ts_port}"
        n_ka, n_nc = self.a.cg_requests, max(200, self.a.cg_requests // 2)
        out = {}
        try:
            deadline = time.time() + 180
            while not h._port_open(h.port):
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError("httpd under callgrind did not start: "
                                       + (outdir / "vg.log").read_text()[-2000:])
                time.sleep(0.2)

            def load(row, mode, n):
                if mode == "http2":
                    url = TailnetNamespace.server_url(h.ts_port, f"/{row}/bench.html")
                    r = self.ns.run(["h2load", "-t", "1", "-c", "4", "-m", "8", "-n", str(n), url],
                                    check=False, timeout=700)
                    ok = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded",
                                   r.stdout)
                    if not ok:
                        raise RuntimeError(f"h2load failed: {r.stdout}{r.stderr}")
                    return {"requests": int(ok.group(1)),
                            "errors": int(ok.group(1)) - int(ok.group(2))}
                args = ["--connect", target, "--src", srcs, "--path", f"/{row}/bench.html",
                        "--concurrency", "4", "--requests", str(n), "--duration", "600"]
                return run_loadgen(self.loadgen, args + (["--keepalive"] if mode == "keepalive" else []),
                                   ns=self.ns, timeout=700)

            dumps = [0]

            def marker():
                """One status request; returns the path of the dump it caused."""
                with socket.create_connection(("127.0.0.1", h.port), timeout=60) as sk:
                    sk.sendall(b"GET /server-status?auto HTTP/1.0\r\nHost: x\r\n\r\n")
                    while sk.recv(65536):
                        pass
                dumps[0] += 1
                f = outdir / f"cg.out.{dumps[0]}"
                t_end = time.time() + 60
                while not f.exists() and time.time() < t_end:
                    time.sleep(0.05)
                return f

            for row, _ in ROWS:       # warm-up: threads, caches, libcurl handles
                for mode in ("keepalive", "newconn", "http2"):
                    load(row, mode, 100)
            marker()
            for mode, n in (("keepalive", n_ka), ("newconn", n_nc), ("http2", n_ka)):
                for row, _ in ROWS:
                    res = load(row, mode, n)
                    f = marker()
                    ir = callgrind_total(f)
                    done = res["requests"]
                    out[f"{mode}:{row}"] = {"ir_per_req": ir / max(1, done), "requests": done,
                                            "errors": res["errors"], "dump": str(f)}
                    log(f"callgrind {mode} {row}: {ir / max(1, done):.0f} instructions/request "
                        f"({done} requests, {res['errors']} errors)")
        finally:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(60)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(30)
            vglog.close()
        self.results["callgrind"] = out

    # -- profiling (not part of the table) -------------------------------
    def profile(self, spec):
        """--profile keepalive|newconn|http2: sample the httpd children with
        perf (cpu-clock, call graphs) while each row runs, and print the top
        symbols of each row side by side."""
        secs = self.a.duration
        srcs = ",".join(v4 for _, v4, _ in BENCH_NODES)
        target = f"{SERVER_V4}:{self.httpd.ts_port}"
        loads = {
            "keepalive": lambda row: run_wrk(self.ns, self.url(row), self.a.connections, secs),
            "newconn": lambda row: run_loadgen(self.loadgen, [
                "--connect", target, "--src", srcs, "--path", f"/{row}/bench.html",
                "--concurrency", str(self.a.connections), "--duration", f"{secs:g}"], ns=self.ns),
            "http2": lambda row: run_h2load(self.ns, self.url(row), self.a.h2_connections,
                                            self.a.h2_streams, secs, self.base),
        }
        load = loads[spec]
        for row, _ in ROWS:
            load(row)     # warm-up
        events = ",".join(["raw_syscalls:sys_enter", "context-switches", "task-clock"] + [
            f"syscalls:sys_enter_{n}" for n in ("futex", "read", "write", "writev", "openat", "newfstatat",
                                                "mmap", "munmap", "madvise", "brk", "mprotect",
                                                "epoll_wait", "poll", "sendfile64", "getrandom")])
        for row, label in ROWS:      # event counts per request, without sampling
            pids = ",".join(str(p) for p in children(self.httpd))
            st = subprocess.Popen(["perf", "stat", "-x", ",", "-e", events, "-p", pids],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            time.sleep(0.3)
            res = load(row)
            st.send_signal(signal.SIGINT)
            _, err = st.communicate(timeout=30)
            n = res.get("requests") or res["rps"] * secs
            counts = []
            for line in err.splitlines():
                f = line.split(",")
                if len(f) > 2 and f[0].replace(".", "").isdigit():
                    counts.append(f"{f[2]} {float(f[0]) / n:.2f}")
            print(f"perf stat {spec} {row}: {res['rps']:.0f} req/s; per request: " + "; ".join(counts))
        for row, label in ROWS:      # who maps memory (munmap = TLB shootdown IPIs)
            data = self.base / f"perf-mmap-{spec}-{row}.data"
            pids = ",".join(str(p) for p in children(self.httpd))
            perf = subprocess.Popen(["perf", "record", "-q", "-e", "syscalls:sys_enter_mmap",
                                     "--call-graph", "dwarf,16384", "-o", str(data), "-p", pids],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.3)
            load(row)
            perf.send_signal(signal.SIGINT)
            perf.wait(60)
            rep = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--stdio",
                                  "-G", "--percent-limit", "3"], capture_output=True, text=True).stdout
            (self.base / f"perf-mmap-{spec}-{row}.txt").write_text(rep)
            print(f"mmap call graphs {spec} {row}: {self.base / f'perf-mmap-{spec}-{row}.txt'}")
        for row, label in ROWS:
            data = self.base / f"perf-{spec}-{row}.data"
            pids = ",".join(str(p) for p in children(self.httpd))
            perf = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "4999", "-g",
                                     "-o", str(data), "-p", pids], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(0.3)
            res = load(row)
            perf.send_signal(signal.SIGINT)
            perf.wait(30)
            rep = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--stdio",
                                  "--sort", "dso,sym", "-g", "none", "--percent-limit", "0.7"],
                                 capture_output=True, text=True).stdout
            samples = re.search(r"# Samples: (\S+)", rep)
            print(f"\n===== perf {spec} {row} ({label}): {res['rps']:.0f} req/s, "
                  f"{samples.group(1) if samples else '?'} samples; {data}")
            print("\n".join(l for l in rep.splitlines() if l.strip() and not l.startswith("#")))

    # -- teardown ------------------------------------------------------
    def teardown(self):
        if self.httpd:
            try:
                self.httpd.stop(check_crashes=False)
                crashes = self.httpd.crashes()
                if crashes:
                    self.notes.append("httpd crashes during the run: " + "; ".join(crashes[:3]))
            except Exception as e:   # keep tearing down
                self.notes.append(f"httpd stop: {e}")
        if self.ns:
            self.ns.destroy()
        if self.emu:
            self.emu.stop()
        if not self.a.keep:
            shutil.rmtree(self.base, ignore_errors=True)


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def verdict(ratios, target):
    """yes / NO when the rounds agree, else say that noise decides."""
    if not ratios:
        return "n/a"
    med = median(ratios)
    if len(ratios) < 3:
        return ("yes" if med >= target else "NO") + " (1-2 rounds)"
    lo, hi = sorted(ratios)[len(ratios) // 4], sorted(ratios)[-(len(ratios) // 4) - 1]
    if lo >= target:
        return "yes"
    if hi < target:
        return "NO"
    return ("yes?" if med >= target else "NO?") + " (rounds disagree)"


def fmt(x, spec=".0f", none="—"):
    return none if x is None else format(x, spec)


def table(bench, settings, vers):
    R = bench.results
    lines = []
    hdr = ["#", "scenario", "variant", "throughput", "ratio", "httpd CPU µs/req", "p50 ms",
           "p99 ms", "+p50 ms", "+p99 ms", "notes", "target", "met"]
    rows = []

    def section(num, key, title, target_ratio, extra=None, variants=ROWS):
        per = R.get(key)
        if not per:
            return
        first = variants[0][0]
        base = per[first]
        base_rps = median(r["rps"] for r in base)
        base_p50 = median(r["p50"] for r in base)
        base_p99 = median(r["p99"] for r in base)
        base_cpu = median(r.get("cpu_us") for r in base)
        for row, label in variants:
            rs = per[row]
            rps = median(r["rps"] for r in rs)
            p50 = median(r["p50"] for r in rs)
            p99 = median(r["p99"] for r in rs)
            cpu = median(r.get("cpu_us") for r in rs)
            cpu_s = fmt(cpu, ".1f")
            if row != first and cpu is not None and base_cpu:
                cpu_s += f" ({cpu / base_cpu:.2f}×)"
            ratios = []
            for r in rs:
                b = next((x for x in base if x["round"] == r["round"]), None)
                if b and b["rps"]:
                    ratios.append(r["rps"] / b["rps"])
            ratio = median(ratios) if ratios else None
            note = []
            errs = sum(r.get("errors", 0) for r in rs)
            if errs:
                note.append(f"{errs} errors")
            if extra:
                note.append(extra(row, rs))
            if len(ratios) > 1 and row != first:
                note.append(f"ratios {min(ratios):.3f}–{max(ratios):.3f}")
            met = ""
            tgt = ""
            if row != first and target_ratio:
                tgt = f"≥ {target_ratio:.2f}×"
                met = verdict(ratios, target_ratio)
            if row == first and len(rs) > 1:
                lo, hi = min(r["rps"] for r in rs), max(r["rps"] for r in rs)
                note.append(f"baseline spread across rounds {lo:.0f}–{hi:.0f} req/s")
            rows.append([str(num) if row == first else "", title if row == first else "",
                         label, f"{fmt(rps)} req/s", "1.000" if row == first else fmt(ratio, ".3f"),
                         cpu_s, fmt(p50, ".2f"), fmt(p99, ".2f"),
                         "" if row == first else fmt(p50 - base_p50 if p50 is not None and base_p50 is not None else None, "+.2f"),
                         "" if row == first else fmt(p99 - base_p99 if p99 is not None and base_p99 is not None else None, "+.2f"),
                         "; ".join(n for n in note if n), tgt, met])

    c = settings["connections"]
    section(1, "keepalive", f"keep-alive HTTP/1.1 (wrk, {c} conns)", 0.97)

    def whois_note(row, rs):
        w = sum(r["whois"] for r in rs)
        n = sum(r["requests"] for r in rs)
        mx = max(r["whois_max_per_node_proc"] for r in rs)
        win = max(r["windows"] for r in rs)
        procs = max(r["procs"] for r in rs)
        bench.whois_ok = getattr(bench, "whois_ok", True) and (mx <= win)
        return (f"whois {1000.0 * w / max(1, n):.2f}/1k req ({w} total; max {mx} per node per "
                f"process in a {settings['duration']}s run, limit {win}; {procs} procs)")
    section(2, "newconn", f"new conn per request (tsl_load, 8 nodes, {c} conc)", 0.90, whois_note)
    # The whois-per-TTL criterion of row 2, as a row of its own.
    if R.get("newconn"):
        ok = getattr(bench, "whois_ok", None)
        # Across all of row 2: the shortest time between two whois calls for the
        # same node from the same process must be at least the TTL.
        by = {}
        for addr, pid, t in bench.whois_log:
            if t is not None:
                by.setdefault((addr, pid), []).append(t)
        gaps = [b - a for ts in by.values() for a, b in zip(sorted(ts), sorted(ts)[1:])]
        min_gap = min(gaps) if gaps else None
        gap_ok = min_gap is None or min_gap >= settings["ttl"] * 0.99
        total = len(bench.whois_log)
        rows.append(["2w", "whois per node per TTL per process", "(all of row 2, tailnet rules)", "", "",
                     "", "", "", "", "",
                     f"{total} whois for {len({k[0] for k in by})} nodes x {len({k[1] for k in by})} "
                     f"processes; shortest interval between two whois for one node in one process: "
                     f"{'none repeated' if min_gap is None else f'{min_gap:.2f} s'} (TTL {settings['ttl']} s)",
                     "≤ 1", "yes" if ok and gap_ok else "NO"])

    section("2b", "ab", f"new conn per request (ab, 1 node, {c} conc, 1 pass)", None)
    section(3, "http2", f"HTTP/2 h2c (h2load, {settings['h2_connections']}x"
                        f"{settings['h2_streams']} streams)", 0.97)

    cg = R.get("callgrind")
    if cg:
        titles = {"keepalive": "1c", "newconn": "2c", "http2": "3c"}
        for mode, num in titles.items():
            base = cg.get(f"{mode}:base")
            if not base:
                continue
            for row, label in ROWS:
                v = cg.get(f"{mode}:{row}")
                if not v:
                    continue
                first = row == "base"
                rows.append([num if first else "",
                             f"{mode}: user-space instructions/request (callgrind, apache2 -X)" if first else "",
                             label, f"{v['ir_per_req'] / 1000:.1f}k instr/req",
                             "1.000" if first else f"{v['ir_per_req'] / base['ir_per_req']:.3f}",
                             "", "", "", "", "",
                             "" if first else f"{(v['ir_per_req'] - base['ir_per_req']) / 1000:+.1f}k "
                                              f"instructions/request ({v['requests']} requests)",
                             "", ""])

    emu = R.get("emulator")
    if emu:
        for i, (conc, res) in enumerate(sorted(emu.items())):
            rows.append(["4" if i == 0 else "", "emulator whois (LocalAPI, keep-alive)" if i == 0 else "",
                         f"{conc} client{'s' if conc > 1 else ''}", f"{res['rps']:.0f} whois/s", "", "",
                         fmt(res["p50"], ".2f"), fmt(res["p99"], ".2f"), "", "",
                         "the module's cost when it does ask", "", ""])

    cert = R.get("cert")
    if cert:
        def phase_note(name):
            ph = cert.get("phases", {}).get(name) or []
            cmd = median(p[0] for p in ph)
            tcp = median(p[1] for p in ph)
            return (f"median of {len(cert['times'][name])}; start command returned "
                    f"{fmt(cmd * 1000 if cmd else None)} ms, port open {fmt(tcp * 1000 if tcp else None)} ms")
        st = median(cert["times"].get("static", []))
        rows.append(["5", "start to first verified TLS handshake", "static SSLCertificateFile",
                     f"{fmt(st * 1000 if st else None)} ms", "1.000", "", "", "", "", "",
                     phase_note("static"), "", ""])
        labels = {"md": "mod_md_tailscale, tailscaled has the cert",
                  "md-store": "mod_md_tailscale, restart from its store",
                  "static+load": "static, mod_md_tailscale only loaded"}
        if "md" in cert["times"]:
            for name, label in labels.items():
                md = median(cert["times"].get(name, []))
                ratio = md / st if (st and md) else None
                diag = name == "static+load"
                rows.append(["", "", label, f"{fmt(md * 1000 if md else None)} ms",
                             fmt(ratio, ".3f"), "", "", "", "", "",
                             phase_note(name) + ("; diagnosis: the cost of loading the module "
                                                 "and its libraries" if diag else ""),
                             "" if diag else "≤ 1.10×",
                             "" if diag else ("yes" if ratio is not None and ratio <= 1.10 else "NO")])
        else:
            rows.append(["", "", "mod_md_tailscale", cert["md_note"], "", "", "", "",
                         "", "", "", "≤ 1.10×", "n/a"])

    mem = R.get("memory")
    if mem:
        first = True
        for size, m in mem.items():
            grow_total = m["rss_end"] - m["rss0"]
            grow_2nd = m["rss_end"] - m["rss_half"]
            bound_kib = size * 8.5   # one 8 KiB APR pool per entry + hash/LRU overhead
            filled = m["requests"] / 2 / max(1, m["procs"]) >= size   # full after the 1st half?
            bounded = grow_total <= bound_kib + 4096 and (
                not filled or grow_2nd <= max(1024, 0.1 * max(grow_total, 1)))
            rows.append(["6" if first else "",
                         f"memory: {m['requests']} distinct ip:port peers" if first else "",
                         f"AuthTailscaleCacheSize {size}{' (default)' if size == 1000 else ''}",
                         f"{m['rss0'] / 1024:.1f}→{m['rss_half'] / 1024:.1f}→{m['rss_end'] / 1024:.1f} MiB",
                         "", "", "", "", "", "",
                         f"max child RSS start→half→end; growth {grow_total / 1024:.1f} MiB "
                         f"(2nd half {grow_2nd / 1024:+.1f}); bound ≈ {bound_kib / 1024:.1f} MiB/process; "
                         f"{m['procs']} procs, {m['whois']} whois, {m['errors']} unexpected statuses"
                         + ("" if filled else "; cache not full after the 1st half"),
                         "bounded", "yes" if bounded else "NO"])
            first = False

    hang = R.get("hang")
    if hang:
        for i, h in enumerate(hang):
            pr, op = h["protected"], h["open"]
            others = {k: v for k, v in pr["status"].items() if k != "503"}
            open_bad = {k: v for k, v in op["status"].items() if k != "200"}
            met = (pr["answered"] >= 0.75 * h["scheduled"] and pr["granted"] == 0 and not open_bad
                   and h["normal_s"] is not None and h["normal_s"] <= 1.0)
            rows.append(["7" if i == 0 else "",
                         f"hanging tailscaled ({HANG_CLIENTS} clients, {len(HANG_NODES)} new nodes, "
                         f"{HANG_SECONDS} s, AuthTailscaleTimeout {h['timeout']})" if i == 0 else "",
                         h["label"] + (f" round {h['round'] + 1}" if settings.get("hang_rounds", 1) > 1 else ""),
                         f"{pr['answered']}/{h['scheduled']} answered", "", "",
                         fmt(h["protected_p50_ms"], ".2f"), fmt(h["protected_p99_ms"], ".2f"), "", "",
                         f"{pr['status'].get('503', 0)} × 503"
                         + (f", other {others}" if others else "")
                         + f", {pr['granted']} granted; {h['whois_hang']} whois during the hang; "
                         f"unprotected: {op['answered']} answers, "
                         + (f"not 200: {open_bad}" if open_bad else "all 200")
                         + f", p99 {fmt(h['open_p99_ms'], '.1f')} ms; normal service "
                         f"{fmt(h['normal_s'], '.2f')} s after tailscaled answered (first 200 after "
                         f"{fmt(h['first_200_s'], '.2f')} s; {h['recovery_answers']} answers in the 3.5 s after); "
                         f"{h['procs']} procs",
                         "≥ 600/800, 0 granted, ≤ 1 s", "yes" if met else "NO"])

    shared = R.get("shared")
    if shared:
        for i, sr in enumerate(shared):
            per_timeout = sr["max_per_node"] / max(1, sr["windows"])
            rows.append(["8" if i == 0 else "",
                         f"whois per node per timeout, whole host ({len(SHARED_NODES)} new nodes "
                         f"x {SHARED_PER_NODE} new-connection requests)" if i == 0 else "",
                         f"{sr['mpm']} {sr['procs']} procs, {sr['label']}",
                         f"{per_timeout:.1f} max per node", "", "", "", "", "", "",
                         f"mean {sr['mean_per_node']:.1f} per node, {sr['whois']} whois in all, "
                         f"asked by {sr['asking_procs']} processes; {sr['requests']} requests "
                         f"({sr['ok']} 200) in {sr['elapsed_s']:.1f} s = {sr['windows']} timeout(s)",
                         "≤ 2", "yes" if per_timeout <= 2 else "NO"])
    section(9, "assertion", f"signed assertion, keep-alive (wrk, {c} conns)", 0.95,
            variants=ASSERT_ROWS)

    widths = [max(len(str(r[i])) for r in rows + [hdr]) for i in range(len(hdr))]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    lines.append(line(hdr))
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        lines.append(line(r))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="about one minute instead of about five")
    ap.add_argument("--duration", type=float, help="seconds per measurement (default 2, quick 1)")
    ap.add_argument("--rounds", type=int, help="alternating rounds (default 6, quick 2)")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--h2-connections", type=int, default=8)
    ap.add_argument("--h2-streams", type=int, default=16)
    ap.add_argument("--peers", type=int, help="distinct peers for the memory row (default 100000, quick 10000)")
    ap.add_argument("--cache-size2", type=int, help="second AuthTailscaleCacheSize (default 4000, quick 2000)")
    ap.add_argument("--cert-reps", type=int, help="start-ups per variant (default 5, quick 3)")
    ap.add_argument("--only", help="comma list of: keepalive,newconn,ab,http2,callgrind,emulator,"
                                   "cert,memory,hang,shared,public,assertion")
    ap.add_argument("--mpm", choices=["event", "prefork"], default="event",
                    help="MPM of rows 1-3's server (default event; prefork: 32 children)")
    ap.add_argument("--json", help="also write the raw results to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--cg-requests", type=int, help="requests per row under callgrind (default 2000, quick 600)")
    ap.add_argument("--modules-from", metavar="DIR",
                    help="load our modules from another build tree (e.g. a patched copy) "
                         "to compare before/after")
    ap.add_argument("--core-dir", metavar="DIR",
                    help="let crashing httpd children of rows 1-3 write core files here")
    ap.add_argument("--hang-timeout", metavar="DURATION",
                    help="AuthTailscaleTimeout of the hang row's servers (default: the module's, 2 s)")
    ap.add_argument("--hang-rounds", type=int, default=1,
                    help="runs of the hang row per module tree, alternating (default 1)")
    ap.add_argument("--profile", choices=["keepalive", "newconn", "http2"],
                    help="instead of the table: perf profiles of the httpd children per row")
    a = ap.parse_args()
    q = a.quick
    a.duration = a.duration or (1 if q else 2)
    a.rounds = a.rounds or (2 if q else 6)
    a.peers = a.peers or (10000 if q else 100000)
    a.cache_size2 = a.cache_size2 or (2000 if q else 4000)
    a.cert_reps = a.cert_reps or (3 if q else 5)
    a.cg_requests = a.cg_requests or (400 if q else 2000)
    if a.peers > 120000:
        ap.error("--peers: at most 120000 distinct source pairs are available")
    if os.geteuid() != 0:
        sys.exit("the benchmark needs root (network namespaces, httpd as www-data); use build/bench")
    a.own_module_path = lib.httpd.module_path   # the hang row runs this tree's too
    if a.modules_from:
        other = Path(a.modules_from).resolve()

        def other_module_path(name):
            p = other / f"mod_{name}" / ".libs" / f"mod_{name}.so"
            if not p.exists():
                raise FileNotFoundError(f"{p} is not built")
            return p
        lib.httpd.module_path = other_module_path
    try:
        lib.httpd.module_path("authnz_tailscale")
    except FileNotFoundError as e:
        sys.exit(str(e))
    ensure_tools()
    only = set((a.only or "keepalive,newconn,ab,http2,callgrind,emulator,cert,memory,hang,shared,public,"
                          "assertion")
               .split(","))
    if a.mpm != "event":
        only.discard("http2")    # mod_http2 stays inactive under prefork
    vers = versions()
    settings = {"connections": a.connections, "duration": a.duration, "rounds": a.rounds,
                "h2_connections": a.h2_connections, "h2_streams": a.h2_streams, "mpm": a.mpm,
                "ttl": DEFAULT_TTL, "peers": a.peers, "cache_size2": a.cache_size2,
                "cert_reps": a.cert_reps, "hang_rounds": a.hang_rounds}
    b = Bench(a, only)
    t_start = time.time()

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    try:
        b.setup()
        if a.profile:
            b.profile(a.profile)
            return
        steps = [("keepalive", b.keepalive), ("newconn", b.newconn), ("ab", b.ab_crosscheck),
                 ("http2", b.http2), ("callgrind", b.callgrind), ("emulator", b.emulator), ("cert", b.cert_startup),
                 ("memory", b.memory), ("hang", b.hang), ("shared", b.shared),
                 ("public", b.public), ("assertion", b.assertion)]
        for name, fn in steps:
            if name in only:
                log(f"== {name}")
                fn()
    finally:
        b.teardown()
    total = time.time() - t_start
    print()
    print("mod_tailscale benchmark — figures measured side by side in this run")
    print()
    print(table(b, settings, vers))
    print()
    print(f"Tools:    httpd {vers['httpd']}; {vers['wrk']}; {vers['h2load']}; {vers['ab']}; "
          f"tsl_load (test/bench/tsl_load.c, gcc -O2); Python {vers['python']}")
    print(f"Machine:  Linux {vers['kernel']}; {vers['cpu']}")
    mpm_settings = ("event (StartServers 2, ServerLimit 4, ThreadsPerChild 25)" if a.mpm == "event"
                    else "prefork (StartServers 3, MaxRequestWorkers 32)")
    print(f"Settings: rows 1-3 MPM {mpm_settings}, KeepAlive On, "
          f"access log on; {a.connections} connections, {a.duration:g}s per measurement, "
          f"{a.rounds} alternating round(s), medians; h2load -c {a.h2_connections} -m {a.h2_streams}; "
          f"AuthTailscaleCacheTimeout {DEFAULT_TTL}s (default), negative 5s; "
          f"clients in a network namespace over a veth pair; emulator {REPO / 'test/emulator/tailscaled_emu.py'}")
    print(f"Run time: {total:.0f}s")
    for n in b.notes:
        print(f"Note: {n}")
    if a.json:
        Path(a.json).write_text(json.dumps({"settings": settings, "versions": vers,
                                            "results": b.results, "notes": b.notes},
                                           indent=1, default=str))


if __name__ == "__main__":
    main()
