"""Real tailnet addresses for test clients: a network namespace joined to the
host by a veth pair.  The host end carries the server's tailnet addresses
(100.100.0.1, fd7a:115c:a1e0::1 - node web1 in the sample tailnet); the
namespace end carries every client address of the sample tailnet, and a
client picks its source address with curl --interface.
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


def _ip(*args, check=True, ns=None):
    cmd = ["ip"] + (["-n", ns] if ns else []) + list(args)
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


class NetnsUnavailable(Exception):
    pass


class TailnetNamespace:
    def __init__(self):
        tag = os.getpid() % 100000
        self.ns = f"tslc{tag}"
        self.host_if = f"tslh{tag}"
        self.ns_if = f"tsln{tag}"
        self.up = False

    @staticmethod
    def cleanup_stale():
        """Remove namespaces/links left behind by test runs that were killed."""
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            m = re.match(r"tslc(\d+)", line)
            if m and not Path(f"/proc/{m.group(1)}").exists():
                subprocess.run(["ip", "netns", "del", f"tslc{m.group(1)}"], capture_output=True)
                subprocess.run(["ip", "link", "del", f"tslh{m.group(1)}"], capture_output=True)

    def create(self):
        if os.geteuid() != 0:
            raise NetnsUnavailable("network namespaces need root")
        self.cleanup_stale()
        r = _ip("netns", "add", self.ns, check=False)
        if r.returncode != 0:
            raise NetnsUnavailable(f"ip netns add failed: {r.stderr.strip()}")
        try:
            _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            _ip("link", "set", self.ns_if, "netns", self.ns)
            _ip("addr", "add", f"{SERVER_V4}/10", "dev", self.host_if)
            _ip("-6", "addr", "add", f"{SERVER_V6}/48", "dev", self.host_if, "nodad")
            _ip("link", "set", self.host_if, "up")
            _ip("link", "set", "lo", "up", ns=self.ns)
            for v4, v6 in CLIENTS.values():
                _ip("addr", "add", f"{v4}/10", "dev", self.ns_if, ns=self.ns)
                _ip("-6", "addr", "add", f"{v6}/48", "dev", self.ns_if, "nodad", ns=self.ns)
            _ip("link", "set", self.ns_if, "up", ns=self.ns)
        except subprocess.CalledProcessError as e:
            self.destroy()
            raise NetnsUnavailable(f"veth setup failed: {e.stderr.strip()}")
        self.up = True
        # The veth carrier comes up asynchronously: wait until the link passes
        # traffic before tests start.
        if shutil.which("ping"):
            for _ in range(20):
                r = self.run(["ping", "-c", "1", "-W", "1", "-I", CLIENTS["laptop"][0],
                              SERVER_V4], check=False)
                if r.returncode == 0:
                    break
                time.sleep(0.1)
            else:
                self.destroy()
                raise NetnsUnavailable(f"namespace link does not pass traffic: "
                                       f"{r.stdout}{r.stderr}")
        return self

    def destroy(self):
        _ip("link", "del", self.host_if, check=False)
        _ip("netns", "del", self.ns, check=False)
        self.up = False

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
            timeout=20):
        """A raw HTTP/1.1 request from a sample-tailnet client inside the namespace,
        with full control of what is sent (PROXY preamble, forged headers).
        Returns (status, headers_dict, body)."""
        import json
        src = CLIENTS[client][1 if v6 else 0]
        dst = SERVER_V6 if v6 else SERVER_V4
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

