"""Apache behind `tailscale serve` on loopback (AuthTailscaleBehindServe):
the client is serve's X-Forwarded-For, believed only when the loopback
peer's socket belongs to tailscaled's uid (the owner of the LocalAPI
socket); serve's Tailscale-* headers are never believed; Funnel clients are
not peers.  Here the emulator (tailscaled) runs as root, so the test
process (root) plays serve and a child running as nobody plays any other
local user."""

import json
import os

from lib import rawhttp

NOBODY = 65534

CONF = """
AuthTailscaleURL @SOCKET@
AuthTailscaleBehindServe on
AliasMatch "^/p/" "@DOCROOT@/secret.txt"
Header always set X-TS-Login "%{TAILSCALE_USER_LOGIN}e" env=TAILSCALE_USER_LOGIN
Header always set X-TS-Groups "%{TAILSCALE_USER_GROUPS}e" env=TAILSCALE_USER_GROUPS
Header always set X-TS-Addr "%{TAILSCALE_ADDR}e" env=TAILSCALE_ADDR
Header always set X-TS-Funnel "%{TAILSCALE_FUNNEL}e" env=TAILSCALE_FUNNEL
<Location /p/alice>
  Require tailscale-user alice@example.com
</Location>
<Location /p/any>
  Require tailscale-user *
</Location>
<Location /p/auth>
  AuthType tailscale
  Require valid-user
</Location>
<Location /p/open>
  AuthTailscaleHeaders on
  Require all granted
</Location>
<Location /p/not-bob>
  <RequireAll>
    Require all granted
    Require not tailscale-user bob@example.com
  </RequireAll>
</Location>
"""

ALICE, BOB = "100.101.102.103", "100.64.0.2"


def site(make_httpd, conf=CONF):
    h = make_httpd(conf, modules=["headers"])
    h.write_file("secret.txt", "SECRET\n")
    return h


def get(h, path, *headers):
    return rawhttp.request("127.0.0.1", h.port, path, headers=list(headers))


def get_as(uid, h, path, *headers):
    """The same request from a process running as uid."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            res = rawhttp.request("127.0.0.1", h.port, path, headers=list(headers))
            os.write(w, json.dumps(res).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return tuple(json.loads(data))


def test_serve_client_is_the_forwarded_address(make_httpd, emulator):
    h = site(make_httpd)
    emulator.reset_requests()
    status, hdrs, body = get(h, "/p/alice", f"X-Forwarded-For: {ALICE}")
    assert status == 200 and "SECRET" in body
    assert hdrs["x-ts-login"] == "alice@example.com"
    assert hdrs["x-ts-groups"] == '["eng@example.com","group:eng"]'
    assert hdrs["x-ts-addr"] == ALICE
    targets = [q["target"] for q in emulator.requests() if "whois" in q["target"]]
    # the loopback ip:port first (tailscaled maps no peer there), then the
    # forwarded client by IP only
    assert len(targets) == 2 and targets[0].startswith("/localapi/v0/whois?addr=127.0.0.1%3A")
    assert targets[1] == f"/localapi/v0/whois?addr={ALICE}", targets
    assert get(h, "/p/alice", f"X-Forwarded-For: {BOB}")[0] == 403
    assert get(h, "/p/auth", f"X-Forwarded-For: {BOB}")[0] == 200


def test_rightmost_forwarded_entry_is_the_one_serve_wrote(make_httpd, emulator):
    h = site(make_httpd)
    assert get(h, "/p/alice", f"X-Forwarded-For: {ALICE}, {BOB}")[0] == 403
    assert get(h, "/p/alice", f"X-Forwarded-For: {BOB},{ALICE}")[0] == 200


def test_serve_identity_headers_are_never_believed(make_httpd, emulator):
    h = site(make_httpd)
    status, hdrs, _ = get(h, "/p/alice", f"X-Forwarded-For: {BOB}",
                          "Tailscale-User-Login: alice@example.com",
                          "Tailscale-User-Name: Alice Example")
    assert status == 403
    status, hdrs, _ = get(h, "/p/any", "Tailscale-User-Login: alice@example.com")
    assert status == 503          # no X-Forwarded-For: serve's client is unknown
    assert "TS01045" in h.error_log()


def test_funnel_request_is_not_a_peer(make_httpd, emulator):
    h = site(make_httpd)
    funnel = ("Tailscale-Funnel-Request: ?1", "X-Forwarded-For: 203.0.113.9")
    assert get(h, "/p/any", *funnel)[0] == 403
    assert get(h, "/p/auth", *funnel)[0] == 401
    # even when the forwarded address is a tailnet node's
    assert get(h, "/p/alice", "Tailscale-Funnel-Request: ?1",
               f"X-Forwarded-For: {ALICE}")[0] == 403
    status, hdrs, _ = get(h, "/p/open", *funnel)
    assert status == 200 and hdrs["x-ts-funnel"] == "1" and "x-ts-login" not in hdrs
    assert "x-ts-funnel" not in get(h, "/p/open", f"X-Forwarded-For: {ALICE}")[1]


def test_loopback_peer_of_another_uid_is_an_ordinary_non_peer(make_httpd, emulator):
    h = site(make_httpd)
    status, hdrs, body = get_as(NOBODY, h, "/p/alice", f"X-Forwarded-For: {ALICE}")
    assert status == 403 and "SECRET" not in body
    status, hdrs, _ = get_as(NOBODY, h, "/p/open", "Tailscale-Funnel-Request: ?1",
                             f"X-Forwarded-For: {ALICE}")
    assert status == 200 and "x-ts-funnel" not in hdrs and "x-ts-login" not in hdrs
    # negation: another local user is no tailnet peer, so "not bob" holds
    # for it; serve's bob is refused
    assert get_as(NOBODY, h, "/p/not-bob", f"X-Forwarded-For: {BOB}")[0] == 200
    assert get(h, "/p/not-bob", f"X-Forwarded-For: {BOB}")[0] == 403


def test_off_by_default(make_httpd, emulator):
    h = site(make_httpd, CONF.replace("AuthTailscaleBehindServe on\n", ""))
    assert get(h, "/p/alice", f"X-Forwarded-For: {ALICE}")[0] == 403
