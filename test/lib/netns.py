"""Real tailnet addresses for test clients: a network namespace joined to the
host by a veth pair.  The host end carries the server's tailnet addresses
(100.100.0.1, fd7a:115c:a1e0::1 - node web1 in the sample tailnet); the
namespace end carries the client addresses, and a client picks its source
address with curl --interface.

Two layouts:

- TailnetNamespace() - the test suite's: every client address of the sample
  tailnet (CLIENTS) in the namespace, and the whole 100.64.0.0/10 and
  fd7a:115c:a1e0::/48 on the host interface.
- TailnetNamespace(clients=[...], routes=subnet_nets(n), prefix="tslb") - the
  benchmark's: its own client addresses only, from a 100.90.N.0/24 and
  fd7a:115c:a1e0::5aNN:0/112 picked free by pick_subnet(); the host end gets
  the server's addresses as /32 and /128 and routes only those two subnets to
  the veth.  So a benchmark can run while the test suite or another benchmark
  has its namespace up: routes do not collide, and removing either namespace
  leaves the other working.
"""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

RAWHTTP = Path(__file__).resolve().parent / "rawhttp.py"

SERVER_V4 = "100.100.0.1"
SERVER_V6 = "fd7a:115c:a1e0::1"
# The VIPs of svc:web, the Tailscale Service the sample tailnet's server hosts.
SERVICE_V4 = "100.100.100.50"
SERVICE_V6 = "fd7a:115c:a1e0::50"

# client label -> (IPv4, IPv6); the labels are the node names in
# test/emulator/tailnet.json, except "friend" (node friend-laptop) and
# "stranger" (no node).
CLIENTS = {
    "laptop": ("100.101.102.103", "fd7a:115c:a1e0::e901:6667"),   # alice@example.com
    "phone": ("100.64.0.2", "fd7a:115c:a1e0::2"),                  # bob@example.com
    "juergen-pc": ("100.64.0.3", "fd7a:115c:a1e0::3"),             # Jürgen Müller
    "ci-runner": ("100.88.1.2", "fd7a:115c:a1e0::5801:102"),       # tag:ci, tag:build
    "edge": ("100.64.0.10", "fd7a:115c:a1e0::a"),                  # tag:edge
    "friend": ("100.64.0.9", "fd7a:115c:a1e0::9"),                 # friend-laptop, shared in
    "stranger": ("100.64.0.99", "fd7a:115c:a1e0::99"),             # in range, unknown
}

# How long create() waits for the veth link to pass traffic.
READY_TIMEOUT = 15.0


class NetnsUnavailable(Exception):
    pass


def _ip(*args, check=True, ns=None):
    """Run ip(8); a failure raises NetnsUnavailable with its stderr."""
    cmd = ["ip"] + (["-n", ns] if ns else []) + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise NetnsUnavailable(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r


# ---- per-run client subnets (the benchmark) ---------------------------------

def subnet_nets(n):
    """Client subnet n (0..249): (IPv4 net, IPv6 net)."""
    return f"100.90.{n}.0/24", f"fd7a:115c:a1e0::5a{n:02x}:0/112"


def subnet_addrs(n, i):
    """Client address i (1..254) of subnet n: (IPv4, IPv6)."""
    return f"100.90.{n}.{i}", f"fd7a:115c:a1e0::5a{n:02x}:{i:x}"


def pick_subnet():
    """A subnet number whose routes no other namespace on this host uses."""
    start = os.getpid() % 250
    for k in range(250):
        n = (start + k) % 250
        v4, v6 = subnet_nets(n)
        if not _ip("route", "show", v4, check=False).stdout.strip() and \
           not _ip("-6", "route", "show", v6, check=False).stdout.strip():
            return n
    raise NetnsUnavailable("no free 100.90.N.0/24 subnet for the clients")


# ---- the namespace -------------------------------------------------------------

class TailnetNamespace:
    def __init__(self, clients=None, routes=None, prefix="tslc"):
        """clients: (IPv4, IPv6) pairs to put in the namespace (default: every
        address of CLIENTS).  routes: None puts the server's addresses on the
        host end as /10 and /48 (the whole tailnet range goes to the veth);
        (IPv4 net, IPv6 net) puts them there as /32 and /128 and routes only
        these nets to the veth.  prefix (4 characters, "tslc" or "tslb"): the
        namespace is <prefix>PID, the host and namespace interfaces
        <host>PID and <ns>PID with the last letter replaced by h / n
        ("tslc" -> tslh, tsln) or appended ("tslb" -> tslbh, tslbn)."""
        tag = os.getpid() % 100000
        self.prefix = prefix
        self.ns = f"{prefix}{tag}"
        self.host_if, self.ns_if = (f"{p}{tag}" for p in self._if_prefixes(prefix))
        self.clients = list(clients) if clients is not None else list(CLIENTS.values())
        if not self.clients:
            raise ValueError("a namespace needs at least one client address")
        self.routes = tuple(routes) if routes is not None else None
        self.up = False

    @staticmethod
    def _if_prefixes(prefix):
        return ("tslh", "tsln") if prefix == "tslc" else (prefix + "h", prefix + "n")

    @classmethod
    def cleanup_stale(cls, prefix="tslc"):
        """Remove namespaces/links of this prefix left behind by runs that
        were killed (their creator's pid is gone)."""
        host_p, _ = cls._if_prefixes(prefix)
        out = _ip("netns", "list", check=False).stdout
        for line in out.splitlines():
            m = re.match(re.escape(prefix) + r"(\d+)\b", line)
            if m and not Path(f"/proc/{m.group(1)}").exists():
                _ip("link", "del", f"{host_p}{m.group(1)}", check=False)
                _ip("netns", "del", f"{prefix}{m.group(1)}", check=False)

    def create(self):
        if os.geteuid() != 0:
            raise NetnsUnavailable("network namespaces need root")
        self.cleanup_stale(self.prefix)
        _ip("netns", "add", self.ns)
        try:
            _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            _ip("link", "set", self.ns_if, "netns", self.ns)
            v4len, v6len = ("32", "128") if self.routes else ("10", "48")
            _ip("addr", "add", f"{SERVER_V4}/{v4len}", "dev", self.host_if)
            _ip("-6", "addr", "add", f"{SERVER_V6}/{v6len}", "dev", self.host_if, "nodad")
            _ip("link", "set", self.host_if, "up")
            if self.routes:
                net_v4, net_v6 = self.routes
                _ip("route", "add", net_v4, "dev", self.host_if)
                _ip("-6", "route", "add", net_v6, "dev", self.host_if)
            _ip("link", "set", "lo", "up", ns=self.ns)
            for v4, v6 in self.clients:
                _ip("addr", "add", f"{v4}/10", "dev", self.ns_if, ns=self.ns)
                _ip("-6", "addr", "add", f"{v6}/48", "dev", self.ns_if, "nodad", ns=self.ns)
            _ip("link", "set", self.ns_if, "up", ns=self.ns)
            self.up = True
            self.wait_ready()
        except BaseException:
            self.destroy()
            raise
        return self

    def wait_ready(self, timeout=READY_TIMEOUT):
        """The veth carrier comes up asynchronously: probe from the first
        client address to the server until the link passes traffic, up to
        timeout seconds; NetnsUnavailable after that."""
        src = self.clients[0][0]
        if shutil.which("ping"):
            probe = ["ping", "-n", "-c", "1", "-W", "1", "-I", src, SERVER_V4]
        else:
            # No ping: a TCP connection attempt to a port nobody listens on.
            # "refused" means the server's kernel answered, so the link works.
            probe = ["/usr/bin/python3", "-c", _TCP_PROBE, src, SERVER_V4]
        deadline = time.monotonic() + timeout
        attempts = 0
        while True:
            attempts += 1
            r = self.run(probe, check=False, timeout=10)
            if r.returncode == 0:
                return
            if time.monotonic() >= deadline:
                raise NetnsUnavailable(
                    f"namespace link does not pass traffic after {timeout:g}s "
                    f"({attempts} probes): {r.stdout}{r.stderr}")
            time.sleep(0.1)

    def destroy(self):
        _ip("link", "del", self.host_if, check=False)
        _ip("netns", "del", self.ns, check=False)
        self.up = False

    def add_server_address(self, addr):
        """One more local address on the server side (a service VIP), until
        remove_server_address() or destroy()."""
        if ":" in addr:
            _ip("-6", "addr", "add", f"{addr}/128", "dev", self.host_if, "nodad")
        else:
            _ip("addr", "add", f"{addr}/32", "dev", self.host_if)

    def remove_server_address(self, addr):
        _ip("-6" if ":" in addr else "-4", "addr", "del",
            f"{addr}/{128 if ':' in addr else 32}", "dev", self.host_if, check=False)

    def run(self, cmd, check=True, timeout=30, **kw):
        return subprocess.run(["ip", "netns", "exec", self.ns] + list(cmd), check=check,
                              capture_output=True, text=True, timeout=timeout, **kw)

    def curl(self, client, url, *args, timeout=20):
        """curl from a sample-tailnet client ('laptop', 'ci-runner', ...), with
        its IPv6 address when the URL's host is IPv6. Returns
        (status_code, body, headers_text)."""
        src = CLIENTS[client][1 if "://[" in url else 0]
        marker = "\n--TSL-STATUS--"
        cmd = ["curl", "-sS", "--max-time", str(timeout), "--interface", src,
               "-D", "/dev/stderr", "-o", "-", "-w", marker + "%{http_code}", *args, url]
        r = self.run(cmd, check=False, timeout=timeout + 5)
        body, _, code = r.stdout.rpartition(marker)
        return int(code or 0), body, r.stderr

    def raw(self, client, port, path="/", v6=False, proxy=None, headers=None,
            timeout=20, dst=None):
        """A raw HTTP/1.1 request from a sample-tailnet client inside the namespace,
        with full control of what is sent (PROXY preamble, forged headers), to
        the server's node address or dst. Returns (status, headers_dict, body)."""
        import json
        src = CLIENTS[client][1 if v6 else 0]
        dst = dst or (SERVER_V6 if v6 else SERVER_V4)
        cmd = ["/usr/bin/python3", str(RAWHTTP), dst, str(port), path, "--src", src]
        if proxy:
            cmd += ["--proxy", proxy]
        for h in headers or []:
            cmd += ["-H", h]
        r = self.run(cmd, check=False, timeout=timeout + 5)
        if r.returncode != 0:
            return 0, {}, r.stderr
        d = json.loads(r.stdout)
        return d["status"], d["headers"], d["body"]

    @staticmethod
    def server_url(port, path="/", v6=False, scheme="http"):
        host = f"[{SERVER_V6}]" if v6 else SERVER_V4
        return f"{scheme}://{host}:{port}{path}"


_TCP_PROBE = """
import socket, sys
s = socket.socket()
s.settimeout(1)
s.bind((sys.argv[1], 0))
try:
    s.connect((sys.argv[2], 9))
except ConnectionRefusedError:
    pass
"""
