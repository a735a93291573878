"""Signed identity for backends (AuthTailscaleAssertion): httpd proxies to a
backend that records the Tailscale-Jwt-Assertion headers it receives, and
every token is verified by two verifiers nobody here wrote - Debian's PyJWT
and the npm package jose - against the server's tailscale-jwks URL, issuer
and audience."""

import base64
import hashlib
import json
import os
import re
import stat
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from lib import outside, staging
from lib.netns import SERVICE_V4 as VIP4
from .test_proxy import proxy_v1, ALICE

HERE = Path(__file__).resolve().parent
JOSE_SCRIPT = HERE / "jose_verify.mjs"
ISSUER = "https://127.0.0.1"          # ServerName 127.0.0.1 (lib/httpd.py)
HEADER = "Tailscale-Jwt-Assertion"


class Backend:
    """An HTTP backend on 127.0.0.1 answering every request with one JSON
    line: the Tailscale-Jwt-Assertion headers it got (all copies)."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                body = (json.dumps({"path": self.path,
                                    "assertions": self.headers.get_all(HEADER) or []})
                        + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def backend():
    b = Backend()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="module")
def jose():
    """node and the node_modules dir holding npm's jose (build/setup installs
    it from build/npm/package.json, next to tslocal)."""
    return outside.npm_package("jose")


def front(backend, extra=""):
    return f"""
ProxyPass /app/ http://127.0.0.1:{backend.port}/app/
ProxyPass /open/ http://127.0.0.1:{backend.port}/open/
ProxyPass /other/ http://127.0.0.1:{backend.port}/other/
ProxyPass /short/ http://127.0.0.1:{backend.port}/short/
ProxyPass /plain/ http://127.0.0.1:{backend.port}/plain/
<Location /.well-known/jwks.json>
  SetHandler tailscale-jwks
</Location>
<Location /.well-known/openid-configuration>
  SetHandler tailscale-jwks
</Location>
<Location /app/>
  Require tailscale-user *
  Require tailscale-tag tag:ci
  AuthTailscaleAssertion on
  AuthTailscaleAcceptAppCaps example.com/cap/web
</Location>
<Location /open/>
  Require all granted
  AuthTailscaleAssertion on
</Location>
<Location /other/>
  Require tailscale-user *
  AuthTailscaleAssertion on
  AuthTailscaleAssertionAudience https://other.example
</Location>
<Location /short/>
  Require tailscale-user *
  AuthTailscaleAssertion on
  AuthTailscaleAssertionLifetime 1
</Location>
<Location /plain/>
  Require tailscale-user *
</Location>
{extra}
"""


def make_key(path, curve=ec.SECP256R1(), mode=0o600):
    if curve == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(curve)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    os.chmod(path, mode)
    return key


def thumbprint(public_key):
    """RFC 7638 thumbprint of an EC P-256 public key, computed here."""
    nums = public_key.public_numbers()
    b64 = lambda n: base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()
    members = json.dumps({"crv": "P-256", "kty": "EC", "x": b64(nums.x), "y": b64(nums.y)},
                         separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(members.encode()).digest()).rstrip(b"=").decode()


def audience(site):
    return f"http://100.100.0.1:{site.httpd.ts_port}"


def jwks_url(site):
    return site.httpd.url("/.well-known/jwks.json")


def assertions(site, client, path, headers=(), port=None, **kw):
    """The assertion headers the backend received for one request."""
    status, _, body = site.raw(client, path, port=port, headers=list(headers), **kw)
    assert status == 200, body
    return json.loads(body)["assertions"]


def token_of(site, client, path, **kw):
    got = assertions(site, client, path, **kw)
    assert len(got) == 1, got
    return got[0]


def by_jose(jose, site, tokens, aud, issuer=ISSUER, now=None):
    node, modules = jose
    args = [node, str(JOSE_SCRIPT), str(modules), jwks_url(site), issuer, aud]
    if now is not None:
        args.append(str(int(now)))
    p = subprocess.run(args, input="\n".join(tokens) + "\n", capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines()]


def by_pyjwt(site, token, aud, issuer=ISSUER, **kw):
    key = jwt.PyJWKClient(jwks_url(site)).get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["ES256"], audience=aud, issuer=issuer, **kw)


def verified(jose, site, token, aud=None, issuer=ISSUER):
    """The claims, after both verifiers accepted the token and agree on them."""
    aud = aud or audience(site)
    claims = by_pyjwt(site, token, aud, issuer=issuer)
    [j] = by_jose(jose, site, [token], aud, issuer=issuer)
    assert "payload" in j, j
    assert j["payload"] == claims
    assert j["header"]["alg"] == "ES256" and j["header"]["typ"] == "JWT"
    assert jwt.get_unverified_header(token)["kid"] == j["header"]["kid"]
    return claims


@pytest.fixture
def assertion_site(make_site, backend):
    def factory(extra="", **kw):
        extra = extra.replace("@BACKEND@", str(backend.port))
        return make_site(front(backend, extra), modules=["proxy", "proxy_http"] +
                         list(kw.pop("modules", [])), **kw)
    return factory


# ---- who the token names -------------------------------------------------

@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_user_gets_a_token_both_verifiers_accept(assertion_site, jose, mpm):
    site = assertion_site(mpm=mpm)
    token = token_of(site, "laptop", "/app/x")
    c = verified(jose, site, token)
    assert c["iss"] == ISSUER and c["aud"] == audience(site)
    assert c["sub"] == "user:6218839120349811" and c["uid"] == 6218839120349811
    assert c["email"] == "alice@example.com" and c["preferred_username"] == "alice"
    assert c["name"] == "Alice Example"
    assert c["node"] == "laptop.tail1234.ts.net" and c["tailnet"] == "tail1234.ts.net"
    assert isinstance(c["nid"], int)
    assert "100.101.102.103/32" in c["addresses"]
    assert c["caps"] == {"example.com/cap/web": [{"role": "admin"}]}
    assert c["via_proxy"] is False and "service" not in c and "tags" not in c
    assert c["nbf"] == c["iat"] and c["exp"] - c["iat"] == 60


def test_tagged_node_is_named_by_its_stable_node_id(assertion_site, jose):
    site = assertion_site()
    c = verified(jose, site, token_of(site, "ci-runner", "/app/x"))
    assert c["sub"] == "node:nT4gg3dCNTRL"
    assert c["tags"] == ["tag:build", "tag:ci"] or sorted(c["tags"]) == ["tag:build", "tag:ci"]
    assert c["node"].startswith("ci-runner.")
    for user_claim in ("email", "uid", "preferred_username", "name", "picture"):
        assert user_claim not in c
    assert c["caps"] == {"example.com/cap/web": [{"role": "deploy"}]}


def test_sharee_keeps_their_outside_login_and_no_tailnet(assertion_site, jose):
    site = assertion_site()
    c = verified(jose, site, token_of(site, "friend", "/app/x"))
    assert c["email"] == "friend@gmail.com" and c["sub"] == "user:2847561938475620"
    assert c["node"] == "friend-laptop.tail9999.ts.net"
    assert "tailnet" not in c


def test_forwarded_client_of_a_trusted_proxy_is_marked(assertion_site, jose):
    site = assertion_site("""
Listen 100.100.0.1:@PORT2@
<VirtualHost 100.100.0.1:@PORT2@>
  RemoteIPProxyProtocol On
  AuthTailscaleTrustedProxy tag:edge
  AuthTailscaleAssertionIssuer https://origin.example
  ProxyPass /app/ http://127.0.0.1:@BACKEND@/app/
  <Location /app/>
    Require tailscale-user *
    AuthTailscaleAssertion on
    AuthTailscaleAssertionAudience https://edge.example
  </Location>
</VirtualHost>
""", modules=["remoteip"])
    port = site.httpd.extra_ports[0]
    token = token_of(site, "edge", "/app/x", port=port, proxy=proxy_v1(ALICE))
    c = verified(jose, site, token, aud="https://edge.example", issuer="https://origin.example")
    assert c["email"] == "alice@example.com" and c["via_proxy"] is True


@pytest.fixture
def vip(tailnet_ns):
    try:
        tailnet_ns.add_server_address(VIP4)
        yield
    finally:
        tailnet_ns.remove_server_address(VIP4)


def test_service_reached_is_named(vip, assertion_site, jose):
    site = assertion_site("Listen 100.100.100.50:@TS_PORT@\n")
    token = token_of(site, "phone", "/app/x", dst=VIP4)
    c = verified(jose, site, token, aud=f"http://{VIP4}:{site.httpd.ts_port}")
    assert c["service"] == "svc:web" and c["email"] == "bob@example.com"


# ---- what never reaches the backend --------------------------------------

def test_forged_client_copy_never_reaches_the_backend(assertion_site, jose):
    site = assertion_site()
    bob = token_of(site, "phone", "/app/x")
    forged = [f"{HEADER}: {bob}", f"Tailscale_Jwt_Assertion: {bob}"]
    got = assertions(site, "laptop", "/app/x", headers=forged)
    assert len(got) == 1 and got[0] != bob
    assert verified(jose, site, got[0])["email"] == "alice@example.com"
    # no identity: no header at all, whatever the client sent
    assert assertions(site, "stranger", "/open/x", headers=forged) == []
    # a location without assertions passes none on either
    assert assertions(site, "laptop", "/plain/x", headers=forged) == []


def test_forged_copy_is_removed_even_where_stripping_is_off(assertion_site):
    site = assertion_site("AuthTailscaleStripHeaders off\n")
    forged = [f"{HEADER}: eyJhbGciOiJub25lIn0.eyJlbWFpbCI6Im1hbGxvcnkifQ."]
    assert assertions(site, "stranger", "/open/x", headers=forged) == []
    got = assertions(site, "laptop", "/app/x", headers=forged)
    assert len(got) == 1 and not got[0].endswith(".")


def test_no_identity_no_header(assertion_site):
    site = assertion_site()
    assert assertions(site, "stranger", "/open/x") == []
    # a local client (not a tailnet peer) is no identity either
    status, body = curl_local(site.httpd, "/open/x")
    assert status == 200 and json.loads(body)["assertions"] == []


def curl_local(h, path):
    p = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", h.url(path)],
                       capture_output=True, text=True, timeout=30)
    body, _, code = p.stdout.rpartition("\n")
    return int(code), body


# ---- keys ----------------------------------------------------------------

def test_two_keys_first_signs_both_published(assertion_site, jose, tmp_dir):
    k1 = make_key(tmp_dir / "k1.pem")
    k2 = make_key(tmp_dir / "k2.pem")
    site = assertion_site(f"AuthTailscaleAssertionKey {tmp_dir}/k1.pem\n"
                          f"AuthTailscaleAssertionKey {tmp_dir}/k2.pem\n")
    status, body = curl_local(site.httpd, "/.well-known/jwks.json")
    assert status == 200
    keys = json.loads(body)["keys"]
    assert [k["kid"] for k in keys] == [thumbprint(k1.public_key()), thumbprint(k2.public_key())]
    for k in keys:
        assert k["kty"] == "EC" and k["crv"] == "P-256" and k["use"] == "sig"
        assert k["alg"] == "ES256" and "d" not in k
    token = token_of(site, "laptop", "/app/x")
    assert jwt.get_unverified_header(token)["kid"] == keys[0]["kid"]
    verified(jose, site, token)
    # k1's own public key verifies it too, k2's does not
    jwt.decode(token, k1.public_key(), algorithms=["ES256"], audience=audience(site))
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, k2.public_key(), algorithms=["ES256"], audience=audience(site))
    assert not (site.httpd.dir / "authnz_tailscale").exists()     # nothing generated


def test_jwks_is_cacheable_and_discovery_names_it(assertion_site):
    site = assertion_site()
    p = subprocess.run(["curl", "-sS", "-D", "-", "-o", "/dev/null",
                        site.httpd.url("/.well-known/jwks.json")],
                       capture_output=True, text=True, timeout=30)
    head = p.stdout.lower()
    assert "cache-control: public, max-age=" in head and "application/json" in head
    status, body = curl_local(site.httpd, "/.well-known/openid-configuration")
    doc = json.loads(body)
    assert doc["issuer"] == ISSUER
    assert doc["jwks_uri"] == jwks_url(site)
    assert doc["id_token_signing_alg_values_supported"] == ["ES256"]


def test_generated_key_is_private_and_survives_graceful_and_full_restarts(assertion_site, jose):
    site = assertion_site()
    h = site.httpd
    key_dir = h.dir / "authnz_tailscale"
    key_file = key_dir / "assertion-key.pem"
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700 and key_dir.stat().st_uid == os.geteuid()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and key_file.stat().st_uid == os.geteuid()
    assert "TS01064" in h.error_log()
    first = json.loads(curl_local(h, "/.well-known/jwks.json")[1])["keys"]
    assert len(first) == 1
    pem = key_file.read_bytes()
    for restart in (h.graceful, lambda: (h.stop(), h.start())):
        restart()
        assert json.loads(curl_local(h, "/.well-known/jwks.json")[1])["keys"] == first
        token = token_of(site, "laptop", "/app/x")
        assert jwt.get_unverified_header(token)["kid"] == first[0]["kid"]
        verified(jose, site, token)
    assert key_file.read_bytes() == pem
    assert h.error_log().count("TS01064") == 1


@pytest.mark.parametrize("problem", ["group-readable", "world-readable", "p384", "rsa",
                                     "missing", "not-a-key"])
def test_unusable_key_stops_configtest(make_httpd, tmp_dir, problem):
    path = tmp_dir / "key.pem"
    if problem == "group-readable":
        make_key(path, mode=0o640)
    elif problem == "world-readable":
        make_key(path, mode=0o604)
    elif problem == "p384":
        make_key(path, curve=ec.SECP384R1())
    elif problem == "rsa":
        make_key(path, curve="rsa")
    elif problem == "not-a-key":
        path.write_text("hello\n")
        os.chmod(path, 0o600)
    h = make_httpd(f"AuthTailscaleAssertionKey {path}\n", start=False)
    rc, out = h.configtest()
    assert rc != 0, out
    assert "AuthTailscaleAssertionKey" in out and str(path) in out
    want = {"group-readable": "chmod 600", "world-readable": "chmod 600",
            "p384": "P-256", "rsa": "P-256", "missing": "No such file",
            "not-a-key": "no unencrypted PEM private key"}[problem]
    assert want in out, out


def test_generated_key_dir_open_to_others_stops_the_start(make_httpd, tmp_dir):
    d = tmp_dir / "keys"
    d.mkdir(mode=0o777)
    os.chmod(d, 0o777)
    h = make_httpd(f"AuthTailscaleAssertionKeyDir {d}\n<Location />\n"
                   "  AuthTailscaleAssertion on\n</Location>\n", start=False)
    rc, out = h.start(expect_fail=True)
    assert rc != 0 and "TS01060" in out and "chmod 700" in out, out
    assert not (d / "assertion-key.pem").exists()


def test_generated_key_read_only_by_root(assertion_site):
    # the children (www-data) cannot open it: only the parent read it
    site = assertion_site()
    key_file = site.httpd.dir / "authnz_tailscale" / "assertion-key.pem"
    p = subprocess.run(["setpriv", "--reuid=www-data", "--regid=www-data", "--clear-groups",
                        "cat", str(key_file)], capture_output=True, text=True)
    assert p.returncode != 0 and "Permission denied" in p.stderr


# ---- time and audience ---------------------------------------------------

def test_expired_token_is_refused(assertion_site, jose):
    site = assertion_site()
    token = token_of(site, "laptop", "/short/x")
    # AuthTailscaleAssertionLifetime 1: valid from iat for one second
    c = jwt.decode(token, options={"verify_signature": False})
    assert c["exp"] - c["iat"] == 1 and c["nbf"] == c["iat"]
    [ok, late] = by_jose(jose, site, [token, token], audience(site), now=c["iat"])[:1] + \
        by_jose(jose, site, [token], audience(site), now=c["exp"] + 1)
    assert ok["payload"]["email"] == "alice@example.com", ok
    assert late["error"] == "ERR_JWT_EXPIRED", late
    while time.time() < c["exp"] + 1:
        time.sleep(0.2)
    with pytest.raises(jwt.ExpiredSignatureError):
        by_pyjwt(site, token, audience(site))
    # only the time is wrong with it: allowed a minute of skew, it verifies
    assert by_pyjwt(site, token, audience(site), leeway=60)["email"] == "alice@example.com"


def test_token_for_one_audience_is_refused_for_another(assertion_site, jose):
    site = assertion_site()
    other = token_of(site, "laptop", "/other/x")
    assert verified(jose, site, other, aud="https://other.example")["aud"] == "https://other.example"
    with pytest.raises(jwt.InvalidAudienceError):
        by_pyjwt(site, other, audience(site))
    [j] = by_jose(jose, site, [other], audience(site))
    assert j["error"] == "ERR_JWT_CLAIM_VALIDATION_FAILED" and j["claim"] == "aud"
    # and a token for this audience is refused by the other one
    mine = token_of(site, "laptop", "/app/x")
    with pytest.raises(jwt.InvalidAudienceError):
        by_pyjwt(site, mine, "https://other.example")


def test_token_is_reused_while_fresh_and_differs_per_audience(assertion_site):
    site = assertion_site()
    url = site.ns.server_url(site.httpd.ts_port, "/app/x")
    other = site.ns.server_url(site.httpd.ts_port, "/other/x")
    # one keep-alive connection: one child process serves all of them
    status, body, _ = site.ns.curl("laptop", url, url, url, url, other)
    got = [json.loads(m) for m in re.findall(r'\{"path".*?\]\}', body)]
    app = [g["assertions"][0] for g in got if g["path"] == "/app/x"]
    other = [g["assertions"][0] for g in got if g["path"] == "/other/x"]
    assert len(app) == 4 and len(other) == 1, got
    # ECDSA signatures are randomized: equal tokens were signed once
    assert len(set(app)) <= 2, app
    assert other[0] not in app


# ---- a third verifier: Apache with mod_auth_openidc -----------------------

OIDC_BACKEND = """
OIDCOAuthVerifyJwksUri @JWKS@
OIDCOAuthRemoteUserClaim email
Header always set X-Backend-User "expr=%{REMOTE_USER}"
RequestHeader set Authorization "expr=Bearer %{req:Tailscale-Jwt-Assertion}" early
<Location />
  AuthType oauth20
  <RequireAll>
    Require valid-user
    Require claim iss:https://127.0.0.1
    Require claim aud:https://app.example.com
  </RequireAll>
</Location>
"""


@pytest.mark.other_user      # mod_auth_openidc fetches the JWK Set as www-data
@pytest.mark.skipif(not Path("/usr/lib/apache2/modules/mod_auth_openidc.so").exists(),
                    reason="libapache2-mod-auth-openidc is not installed (build/setup installs it)")
def test_mod_auth_openidc_backend_accepts_the_documented_configuration(make_site, make_httpd):
    """docs/assertion.md's mod_auth_openidc example, as a backend Apache
    (which fetches the JWK Set over https only: from the front's TLS port)."""
    backend = make_httpd("", start=False, our=(), modules=["auth_openidc"])
    site = make_site(f"""
<VirtualHost 127.0.0.1:@TLS_PORT@>
  SSLEngine on
  SSLCertificateFile @SERVER_CERT@
  SSLCertificateKeyFile @SERVER_KEY@
  <Location /.well-known/jwks.json>
    SetHandler tailscale-jwks
  </Location>
</VirtualHost>
ProxyPass /good/ http://127.0.0.1:{backend.port}/
ProxyPass /wrong-aud/ http://127.0.0.1:{backend.port}/
ProxyPass /none/ http://127.0.0.1:{backend.port}/
<Location /.well-known/jwks.json>
  SetHandler tailscale-jwks
</Location>
<Location /good/>
  Require tailscale-user *
  AuthTailscaleAssertion on
  AuthTailscaleAssertionAudience https://app.example.com
</Location>
<Location /wrong-aud/>
  Require tailscale-user *
  AuthTailscaleAssertion on
  AuthTailscaleAssertionAudience https://other.example
</Location>
<Location /none/>
  Require tailscale-user *
</Location>
""", modules=["proxy", "proxy_http", "ssl", "socache_shmcb"])
    # the children (www-data) read the CA: a copy they can open
    backend.set_config(f"OIDCCABundlePath {staging.stage(site.httpd.pki.ca_cert)}\n" +
                       OIDC_BACKEND.replace("@JWKS@", site.httpd.url("/.well-known/jwks.json",
                                                                     tls=True)))
    backend.write_file("index.html", "backend says hello\n")
    backend.start()
    status, headers, body = site.raw("laptop", "/good/index.html")
    assert status == 200 and "backend says hello" in body, backend.error_log()[-3000:]
    assert headers.get("x-backend-user") == "alice@example.com"
    assert site.raw("laptop", "/wrong-aud/index.html")[0] in (401, 403)
    assert site.raw("laptop", "/none/index.html")[0] == 401
