"""The benchmark's own network namespace: tailnet client addresses joined to
the host by a veth pair.

Unlike test/lib/netns.py (the test suite's namespace, which puts the whole
100.64.0.0/10 on its host interface), this one routes only its own client
addresses (100.90.N.0/24 and fd7a:115c:a1e0::5aNN:0/112, N picked free by
pick_subnet()) to its veth and gives the host end the server's tailnet
addresses as /32 and /128.  So a benchmark can run while the test suite or
another benchmark has its namespace up: routes do not collide, and removing
either namespace leaves the other working.
"""

import os
import re
import subprocess
from pathlib import Path

SERVER_V4 = "100.100.0.1"
SERVER_V6 = "fd7a:115c:a1e0::1"


def subnet_nets(n):
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
    raise NamespaceError("no free 100.90.N.0/24 subnet for the benchmark's clients")


class NamespaceError(Exception):
    pass


def _ip(*args, ns=None, check=True):
    cmd = ["ip"] + (["-n", ns] if ns else []) + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise NamespaceError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r


class BenchNamespace:
    def __init__(self, subnet, clients):
        """clients: list of (IPv4, IPv6) inside subnet_nets(subnet)."""
        self.net_v4, self.net_v6 = subnet_nets(subnet)
        tag = os.getpid() % 100000
        self.ns = f"tslb{tag}"
        self.host_if = f"tslbh{tag}"
        self.ns_if = f"tslbn{tag}"
        self.clients = list(clients)
        self.up = False

    @staticmethod
    def cleanup_stale():
        """Remove benchmark namespaces whose creator is gone (a killed run)."""
        out = _ip("netns", "list", check=False).stdout
        for line in out.splitlines():
            m = re.match(r"tslb(\d+)", line)
            if m and not Path(f"/proc/{m.group(1)}").exists():
                _ip("link", "del", f"tslbh{m.group(1)}", check=False)
                _ip("netns", "del", f"tslb{m.group(1)}", check=False)

    def create(self):
        if os.geteuid() != 0:
            raise NamespaceError("network namespaces need root")
        self.cleanup_stale()
        _ip("netns", "add", self.ns)
        try:
            _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            _ip("link", "set", self.ns_if, "netns", self.ns)
            _ip("addr", "add", f"{SERVER_V4}/32", "dev", self.host_if)
            _ip("-6", "addr", "add", f"{SERVER_V6}/128", "dev", self.host_if, "nodad")
            _ip("link", "set", self.host_if, "up")
            _ip("route", "add", self.net_v4, "dev", self.host_if)
            _ip("-6", "route", "add", self.net_v6, "dev", self.host_if)
            _ip("link", "set", "lo", "up", ns=self.ns)
            for v4, v6 in self.clients:
                _ip("addr", "add", f"{v4}/10", "dev", self.ns_if, ns=self.ns)
                _ip("-6", "addr", "add", f"{v6}/48", "dev", self.ns_if, "nodad", ns=self.ns)
            _ip("link", "set", self.ns_if, "up", ns=self.ns)
        except NamespaceError:
            self.destroy()
            raise
        self.up = True
        # The link must pass traffic (ping when it is installed; the benchmark's
        # own first requests check it again).
        r = self.run(["ping", "-c", "1", "-W", "2", "-I", self.clients[0][0], SERVER_V4], check=False) \
            if Path("/bin/ping").exists() or Path("/usr/bin/ping").exists() else None
        if r is not None and r.returncode != 0:
            self.destroy()
            raise NamespaceError(f"namespace link does not pass traffic: {r.stdout}{r.stderr}")
        return self

    def destroy(self):
        _ip("link", "del", self.host_if, check=False)
        _ip("netns", "del", self.ns, check=False)
        self.up = False

    def run(self, cmd, check=True, timeout=60, **kw):
        return subprocess.run(["ip", "netns", "exec", self.ns] + list(cmd), check=check,
                              capture_output=True, text=True, timeout=timeout, **kw)

    @staticmethod
    def server_url(port, path="/", v6=False):
        host = f"[{SERVER_V6}]" if v6 else SERVER_V4
        return f"http://{host}:{port}{path}"
