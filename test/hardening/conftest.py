"""Fixtures for the hardening tests (spoofing, bad configuration): an httpd
listening on the server's tailnet addresses, clients in the tailnet network
namespace, and a raw client (rawclient.py) that sends exactly the bytes a
test means: PROXY v2 preambles, odd header names, duplicate headers,
chunked bodies with trailers."""

import json
from pathlib import Path

import pytest

SECRET = "HARDENING-SECRET"
RAWCLIENT = Path(__file__).resolve().parent / "rawclient.py"

# Identity the front end decided, as response headers.
ECHO_IDENTITY = """
Header always set X-TS-Login "%{TAILSCALE_USER_LOGIN}e" env=TAILSCALE_USER_LOGIN
Header always set X-TS-Node "%{TAILSCALE_NODE_NAME}e" env=TAILSCALE_NODE_NAME
Header always set X-TS-Proxy-Node "%{TAILSCALE_PROXY_NODE}e" env=TAILSCALE_PROXY_NODE
"""


class Raw:
    """Raw requests from a namespace client."""

    def __init__(self, ns):
        self.ns = ns

    def __call__(self, client, port, path="/", v6=False, **kw):
        from lib.netns import CLIENTS, SERVER_V4, SERVER_V6
        src = CLIENTS[client][1 if v6 else 0]
        dst = SERVER_V6 if v6 else SERVER_V4
        job = dict(kw, host=dst, port=port, path=path, src=src)
        r = self.ns.run(["/usr/bin/python3", str(RAWCLIENT)], check=False, timeout=40,
                        input=json.dumps(job))
        assert r.returncode == 0, f"rawclient failed: {r.stderr}"
        return Response(json.loads(r.stdout))


class Response:
    def __init__(self, d):
        self.status = d["status"]
        self.headers = [tuple(h) for h in d["headers"]]   # in order, as sent
        self.body = d["body"]

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def get(self, name):
        v = self.all(name)
        return v[0] if v else None

    def __repr__(self):
        return f"<Response {self.status} {self.headers} {self.body[:80]!r}>"


@pytest.fixture
def raw(tailnet_ns):
    return Raw(tailnet_ns)


@pytest.fixture
def hsite(emulator, tailnet_ns, make_httpd):
    """Factory: hsite(config, modules=(), mpm="event") -> started Httpd on the
    tailnet addresses with secret.txt in its document root."""
    def factory(config, modules=(), mpm="event"):
        h = make_httpd("AuthTailscaleURL @SOCKET@\n" + ECHO_IDENTITY + config, mpm=mpm,
                       modules=["headers"] + list(modules), tailnet=True, start=False)
        h.write_file("secret.txt", SECRET + "\n")
        h.start()
        return h
    return factory
