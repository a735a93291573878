"""Client-sent identity headers in every form a client can send them -
name case variants, underscores, duplicates, request trailers, HTTP/2 -
never change the identity decided nor reach a proxied backend.  The backend
(a vhost of the same httpd) echoes every Tailscale* request header it got,
so the tests see exactly what an application behind the proxy would see.
test/authnz/test_proxy.py and test_export.py cover the canonical names over
HTTP/1.1; these are the other spellings and paths."""

import re

import pytest

from .conftest import SECRET

BACKEND_AND_FRONT = r"""
<VirtualHost 127.0.0.1:@PORT@>
  AuthTailscaleStripHeaders off
  Header always echo "(?i)^tailscale"
  <Location />
    Require all granted
  </Location>
</VirtualHost>
ProxyPass /app/ http://127.0.0.1:@PORT@/
ProxyPass /plain/ http://127.0.0.1:@PORT@/
<Location /app/>
  Require tailscale-user *
  Require tailscale-tailnet tail1234.ts.net
  AuthTailscaleHeaders on
  AuthTailscaleAcceptAppCaps example.com/cap/web
</Location>
<Location /plain/>
  Require tailscale-user *
  Require tailscale-tailnet tail1234.ts.net
</Location>
AliasMatch "^/p/" "@DOCROOT@/secret.txt"
<Location /p/alice>
  Require tailscale-user alice@example.com
</Location>
"""
MODULES = ["proxy", "proxy_http"]

MALLORY = "mallory@evil.example"
FORGED = [
    ("tailscale-user-login", MALLORY),
    ("TAILSCALE-USER-LOGIN", MALLORY),
    ("TaIlScAlE-uSeR-nAmE", "Mallory"),
    ("Tailscale_User_Login", MALLORY),
    ("Tailscale-User-Profile-Pic", "https://evil.example/p.png"),
    ("Tailscale-Headers-Info", "https://evil.example/"),
    ("tailscale-app-capabilities", '{"example.com/cap/web":[{"role":"admin"}]}'),
    ("Tailscale_App_Capabilities", '{"example.com/cap/web":[{"role":"admin"}]}'),
]


def tailscale_headers(headers):
    return [(k, v) for k, v in headers if re.match(r"(?i)^tailscale", k)]


def assert_nothing_forged(headers):
    ts = tailscale_headers(headers)
    assert not [h for h in ts if "evil" in h[1] or "Mallory" in h[1] or "admin" in h[1]], ts
    assert not [h for h in ts if "_" in h[0]], ts


def test_case_and_underscore_variants_are_removed(hsite, raw):
    h = hsite(BACKEND_AND_FRONT, modules=MODULES)
    port = h.ts_port
    # decision: bob stays bob whatever he sends
    r = raw("phone", port, "/p/alice", headers=FORGED)
    assert r.status == 403 and SECRET not in r.body, r
    # headers off: the backend sees no Tailscale* header at all
    r = raw("phone", port, "/plain/index.html", headers=FORGED)
    assert r.status == 200, r
    assert tailscale_headers(r.headers) == [], r.headers
    # headers on: exactly the real identity, once each
    r = raw("phone", port, "/app/index.html", headers=FORGED)
    assert r.status == 200, r
    assert_nothing_forged(r.headers)
    assert r.all("Tailscale-User-Login") == ["bob@example.com"], r.headers
    assert r.all("Tailscale-User-Name") == ["Bob Builder"], r.headers
    assert r.all("Tailscale-App-Capabilities") == ['{"example.com/cap/web":[{"role":"viewer"}]}']


def test_duplicate_identity_headers_leave_one_real_value(hsite, raw):
    h = hsite(BACKEND_AND_FRONT, modules=MODULES)
    dup = [("Tailscale-User-Login", MALLORY), ("Tailscale-User-Login", "alice@example.com"),
           ("Tailscale-User-Login", ""), ("Tailscale-App-Capabilities", "{}"),
           ("Tailscale-App-Capabilities", '{"a":[1]}')]
    r = raw("phone", h.ts_port, "/p/alice", headers=dup)
    assert r.status == 403, r
    r = raw("phone", h.ts_port, "/app/index.html", headers=dup)
    assert r.status == 200, r
    assert r.all("Tailscale-User-Login") == ["bob@example.com"], r.headers
    assert r.all("Tailscale-App-Capabilities") == ['{"example.com/cap/web":[{"role":"viewer"}]}']
    # a tagged node: no user headers at all, however many were sent
    r = raw("ci-runner", h.ts_port, "/app/index.html", headers=dup)
    assert r.status == 200, r
    assert r.all("Tailscale-User-Login") == [], r.headers
    assert r.all("Tailscale-App-Capabilities") == ['{"example.com/cap/web":[{"role":"deploy"}]}']
    r = raw("ci-runner", h.ts_port, "/plain/index.html", headers=dup)
    assert r.status == 200, r
    assert tailscale_headers(r.headers) == [], r.headers


@pytest.mark.parametrize("merge", ["off", "on"])
def test_identity_header_in_a_request_trailer(hsite, raw, merge):
    """Trailers arrive after the body, i.e. after access checks and header
    stripping; even with MergeTrailers on they must not become the identity
    or reach the backend."""
    h = hsite(f"MergeTrailers {merge}\n" + BACKEND_AND_FRONT, modules=MODULES)
    trailers = [("Tailscale-User-Login", MALLORY), ("tailscale_user_login", MALLORY),
                ("Tailscale-App-Capabilities", '{"example.com/cap/web":[{"role":"admin"}]}')]
    r = raw("phone", h.ts_port, "/p/alice", method="POST", body="x=1", chunked=True,
            trailers=trailers)
    assert r.status == 403 and SECRET not in r.body, r
    r = raw("phone", h.ts_port, "/app/index.html", method="POST", body="x=1", chunked=True,
            trailers=trailers)
    assert r.status in (200, 405), r
    assert_nothing_forged(r.headers)
    assert r.all("Tailscale-User-Login") == ["bob@example.com"], r.headers
    r = raw("phone", h.ts_port, "/plain/index.html", method="POST", body="x=1", chunked=True,
            trailers=trailers)
    assert tailscale_headers(r.headers) == [], r.headers


H2C = "Protocols h2c http/1.1\n"


def echoed(headers_text):
    """Tailscale* response headers from curl's -D output (last response)."""
    block = headers_text.split("\r\n\r\n")
    text = [b for b in block if b.strip()][-1] if headers_text.strip() else ""
    out = []
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep and re.match(r"(?i)^tailscale", k.strip()):
            out.append((k.strip().lower(), v.strip()))
    return out


def test_forged_identity_headers_over_http2(hsite, tailnet_ns):
    h = hsite(H2C + BACKEND_AND_FRONT, modules=MODULES + ["http2"])
    args = ["--http2-prior-knowledge", "-v"]
    for k, v in FORGED:
        if "_" not in k:          # curl refuses nothing, but h2 wants lower case anyway
            args += ["-H", f"{k.lower()}: {v}"]
    url = tailnet_ns.server_url(h.ts_port, "/p/alice")
    status, body, hdrs = tailnet_ns.curl("phone", url, *args)
    assert "HTTP/2 403" in hdrs and status == 403 and SECRET not in body
    status, _, hdrs = tailnet_ns.curl("phone", tailnet_ns.server_url(h.ts_port, "/app/index.html"),
                                      *args)
    assert status == 200 and "HTTP/2 200" in hdrs, hdrs
    ts = echoed(hdrs)
    assert ("tailscale-user-login", "bob@example.com") in ts, ts
    assert not [x for x in ts if "evil" in x[1] or "Mallory" in x[1] or "admin" in x[1]], ts
    assert [x for x in ts if x[0] == "tailscale-user-login"] == \
        [("tailscale-user-login", "bob@example.com")], ts
    status, _, hdrs = tailnet_ns.curl("phone",
                                      tailnet_ns.server_url(h.ts_port, "/plain/index.html"), *args)
    assert status == 200 and echoed(hdrs) == [], hdrs
