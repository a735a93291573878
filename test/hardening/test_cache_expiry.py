"""An identity is never served longer than tailscaled's answer is good for
(AuthTailscaleCacheTimeout), even over keep-alive connections.  Found by
test/soak/fault_soak.py: a connection that took an identity from the process
cache remembered it for a full timeout from that moment, so a peer could be
served for up to twice the timeout after tailscaled last vouched for it -
and while tailscaled was down."""

import json
import subprocess
import time
from pathlib import Path

from lib.netns import CLIENTS, SERVER_V4

from .conftest import SECRET

TTL = 4
CONF = f"""
AuthTailscaleCacheTimeout {TTL}
# one child process, so both connections share its identity cache
StartServers 1
ServerLimit 1
MinSpareThreads 1
MaxSpareThreads 25
MaxRequestWorkers 25
AliasMatch "^/p/" "@DOCROOT@/secret.txt"
<Location /p/users>
  Require tailscale-user *
</Location>
"""
CLIENT = Path(__file__).resolve().parent / "keepalive_client.py"


class KeepAlive:
    def __init__(self, ns, client, port):
        self.p = subprocess.Popen(["ip", "netns", "exec", ns.ns, "/usr/bin/python3", str(CLIENT),
                                   SERVER_V4, str(port), CLIENTS[client][0]],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def get(self, conn, path):
        self.p.stdin.write(json.dumps({"conn": conn, "path": path}) + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self):
        """End the client; killed if it does not exit by itself."""
        try:
            self.p.stdin.close()
            self.p.wait(10)
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait(10)
            self.p.stdout.close()


def test_connection_copy_of_a_cached_identity_expires_with_the_cache_entry(hsite, emulator,
                                                                            tailnet_ns):
    h = hsite(CONF)
    emulator.reset_requests()
    ka = KeepAlive(tailnet_ns, "phone", h.ts_port)
    try:
        # t=0: connection A asks tailscaled; the process cache holds bob
        # until about t=TTL.
        r = ka.get("A", "/p/users")
        t_first = time.time()
        assert r["status"] == 200 and SECRET in r["body"], r
        # t=TTL/2: connection B is served from the process cache.
        time.sleep(TTL / 2)
        r = ka.get("B", "/p/users")
        assert r["status"] == 200, r
        whois = [q for q in emulator.requests() if "whois" in q["target"]]
        assert len(whois) == 1, f"B was not served from the process cache: {whois}"
        # tailscaled goes away; past t=TTL nothing may vouch for bob any more
        emulator.fault("down")
        time.sleep(max(0.0, t_first + TTL + 0.5 - time.time()))
        r = ka.get("B", "/p/users")
        assert r["status"] == 503 and SECRET not in r.get("body", ""), \
            f"identity served {time.time() - t_first:.1f}s after tailscaled vouched for it: " \
            f"{r}\n{h.error_log()[-3000:]}"
        r = ka.get("A", "/p/users")
        assert r["status"] == 503, r
    finally:
        try:
            ka.close()
        finally:
            emulator.clear_fault()
