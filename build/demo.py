#!/usr/bin/python3
"""The demo: a real Apache httpd with mod_authnz_tailscale and
mod_md_tailscale in front of an emulated tailnet (no tailscaled needed).

Shows which tailnet clients each rule lets in, the identity the server saw,
and the ts.net certificate httpd serves - all through the same strict
LocalAPI that a real tailscaled speaks.  Run it as root with build/demo.
"""

import os
import re
import shutil
import socket
import ssl
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "test"))

from lib.emulator import Emulator  # noqa: E402
from lib.httpd import Httpd  # noqa: E402
from lib import netns as netns_lib  # noqa: E402
from lib import rawhttp, staging  # noqa: E402

DOMAIN = "web1.tail1234.ts.net"

CONFIG = r"""
# --- identity: who may see what ------------------------------------------
AuthTailscaleURL @SOCKET@
AliasMatch "^/(team|admins|eng|ci)$" "@DOCROOT@/secret.html"
<Location /team>
  <RequireAll>
    Require tailscale-tailnet tail1234.ts.net
    Require tailscale-user *
  </RequireAll>
</Location>
<Location /admins>
  Require tailscale-cap example.com/cap/web role=admin
</Location>
<Location /eng>
  Require tailscale-group group:eng
</Location>
<Location /ci>
  Require tailscale-tag tag:ci
</Location>
<Location /whoami>
  AuthType tailscale
  AuthTailscaleTaggedUser node
  Require valid-user
</Location>
Alias /whoami "@DOCROOT@/secret.html"
Header always set X-Remote-User "expr=%{REMOTE_USER}"
Header always set X-Node "%{TAILSCALE_NODE_NAME}e" env=TAILSCALE_NODE_NAME
Header always set X-Name "%{TAILSCALE_USER_NAME}e" env=TAILSCALE_USER_NAME
Header always set X-Tags "%{TAILSCALE_TAGS}e" env=TAILSCALE_TAGS
Header always set X-Groups "%{TAILSCALE_USER_GROUPS}e" env=TAILSCALE_USER_GROUPS
Header always set X-Caps "%{TAILSCALE_APP_CAPABILITIES}e" env=TAILSCALE_APP_CAPABILITIES
Header always set X-Service "%{TAILSCALE_SERVICE}e" env=TAILSCALE_SERVICE

# --- assertion: a signed identity any backend can verify ------------------
<Location /.well-known/jwks.json>
  SetHandler tailscale-jwks
</Location>
<Location /signed>
  AuthType tailscale
  Require valid-user
  AuthTailscaleAssertion on
  AuthTailscaleAssertionAudience https://app.example.com
  Header always set X-Assertion "expr=%{req:Tailscale-Jwt-Assertion}"
</Location>
Alias /signed "@DOCROOT@/secret.html"

# --- a Tailscale Service: svc:web's VIPs on this node ----------------------
Listen 100.100.100.50:@TS_PORT@
Listen [fd7a:115c:a1e0::50]:@TS_PORT@

# --- certificate: a ts.net vhost needs no MDomain (MDTailscaleAutoDomains) --
MDCertificateAuthority @SOCKET@
<VirtualHost 127.0.0.1:@TLS_PORT@>
  ServerName web1.tail1234.ts.net
  SSLEngine on
</VirtualHost>

# --- status: the modules' counters in mod_status -------------------------
ExtendedStatus On
<Location /server-status>
  SetHandler server-status
  Require ip 127.0.0.1
</Location>
"""

CLIENTS = [
    ("laptop", "alice@example.com"),
    ("phone", "bob@example.com"),
    ("juergen-pc", "juergen@example.com"),
    ("ci-runner", "tagged tag:ci tag:build"),
    ("friend", "friend@gmail.com, shared in"),
    ("stranger", "not in the tailnet"),
]
PATHS = ["/team", "/admins", "/eng", "/ci", "/whoami"]


def section(config, name):
    """The part of config under its '# --- name' heading."""
    start = config.index("# --- " + name)
    end = config.find("\n# --- ", start + 1)
    return config[start:end if end >= 0 else len(config)].rstrip() + "\n\n"


def title(text):
    print(f"\n\033[1m== {text}\033[0m")


def md_available():
    return (REPO / "mod_md_tailscale" / ".libs" / "mod_md_tailscale.so").exists()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def show_matrix(get):
    print(f"{'client':<12} {'who':<28}" + "".join(f"{p:>10}" for p in PATHS))
    for client, who in CLIENTS:
        row = f"{client:<12} {who:<28}"
        for p in PATHS:
            status = get(client, p)[0]
            mark = {200: "200 ok", 403: "403", 401: "401", 503: "503"}.get(status, str(status))
            row += f"{mark:>10}"
        print(row)


def show_assertion(httpd, get):
    """One token (here echoed back in X-Assertion; a backend gets it as a
    request header), verified with PyJWT against the server's JWK Set."""
    print("  " + section(CONFIG, "assertion").strip().replace("\n", "\n  "))
    try:
        import jwt
    except ImportError:
        print("  (PyJWT is not installed: apt-get install python3-jwt to verify the token)")
        return
    status, headers, _ = get("laptop", "/signed")
    token = headers.get("x-assertion", "")
    if status != 200 or not token:
        print(f"  laptop /signed: {status}, no token; see the error log")
        return
    jwks = jwt.PyJWKClient(httpd.url("/.well-known/jwks.json"))
    claims = jwt.decode(token, jwks.get_signing_key_from_jwt(token).key, algorithms=["ES256"],
                        issuer="https://127.0.0.1", audience="https://app.example.com")
    print(f"  laptop's token ({len(token)} bytes, kid {jwt.get_unverified_header(token)['kid']}) "
          f"verified by PyJWT against {httpd.url('/.well-known/jwks.json')}:")
    for k in ("iss", "aud", "sub", "email", "name", "node", "tailnet", "via_proxy"):
        print(f"    {k:<10} {claims.get(k)!r}")
    print(f"    exp - iat  {claims['exp'] - claims['iat']} s")
    try:
        jwt.decode(token, jwks.get_signing_key_from_jwt(token).key, algorithms=["ES256"],
                   issuer="https://127.0.0.1", audience="https://other.example.com")
        print("  a backend with another audience accepted it: this is a bug")
    except jwt.InvalidAudienceError:
        print("  a backend expecting https://other.example.com refuses it (InvalidAudienceError)")


def main():
    if os.geteuid() != 0:
        sys.exit("build/demo must run as root (httpd, network namespaces).")
    base = Path(tempfile.mkdtemp(prefix="tsl-demo-"))
    os.chmod(base, 0o755)
    staging.use(base / "staged")   # the modules as www-data can read them
    emu = Emulator()
    (base / "tailscaled").mkdir()
    ns = None
    httpd = None
    try:
        emu.start(base / "tailscaled")
        title("An emulated tailscaled (strict LocalAPI) with the sample tailnet")
        print(f"socket {emu.socket_path}; tailnet file test/emulator/tailnet.json")
        resp = emu.localapi("/localapi/v0/status", host="localhost")
        print(f"  a request with 'Host: localhost' (what the old Apache modules sent): "
              f"{resp.status} {resp.text.strip()!r}")

        try:
            ns = netns_lib.TailnetNamespace().create()
            mode = "netns"
            print(f"  clients connect from their own tailnet addresses (network namespace "
                  f"{ns.ns}) to this server at {netns_lib.SERVER_V4} / {netns_lib.SERVER_V6}")
        except netns_lib.NetnsUnavailable as e:
            print(f"  (no network namespaces: {e}; clients come from 127.0.0.1 "
                  f"ports that the emulator maps to tailnet nodes)")
            mode = "loopback"

        our = ["authnz_tailscale"] + (["md_tailscale"] if md_available() else [])
        config = section(CONFIG, "identity") + section(CONFIG, "assertion")
        if mode == "netns":   # the VIPs need the namespace's server side
            for vip in (netns_lib.SERVICE_V4, netns_lib.SERVICE_V6):
                ns.add_server_address(vip)
            config += section(CONFIG, "a Tailscale Service")
        if md_available():
            config += section(CONFIG, "certificate")
        config += section(CONFIG, "status")
        httpd = Httpd(base / "httpd", config=config, modules=["headers", "ssl", "status"],
                      our=our, socket_path=emu.socket_path, tailnet=(mode == "netns"))
        httpd.write_file("secret.html", "<h1>members only</h1>\n")
        httpd.start()
        title(f"Apache httpd with {', '.join('mod_' + m for m in our)}")
        print(f"config: {httpd.conf_path}")
        print((section(config, "identity") + (section(config, "a Tailscale Service")
                                               if mode == "netns" else "")).strip())
        print("(tailnet policy: tailscale.com/see-groups lets this node see group:eng, "
              "group:ops, eng@example.com;\n grants give example.com/cap/web role=admin to "
              "laptop on this node and to phone on svc:web only)")

        def get(client, path):
            if mode == "netns":
                return ns.raw(client, httpd.ts_port, path)
            port = free_port()
            node = {"friend": "friend-laptop", "stranger": None}.get(client, client)
            if node:   # the stranger stays unknown to tailscaled
                emu.proxymap(f"127.0.0.1:{port}", node)
            return rawhttp.request("127.0.0.1", httpd.port, path, src="127.0.0.1", sport=port)

        title("Who gets in (client -> status per location)")
        show_matrix(get)

        title("The identity httpd saw (GET /whoami, AuthType tailscale)")
        for client, _ in CLIENTS:
            status, headers, _ = get(client, "/whoami")
            if status == 200:
                # header bytes arrive as latin-1; the values are UTF-8
                headers = {k: v.encode("latin-1").decode("utf-8", "replace")
                           for k, v in headers.items()}
                print(f"  {client:<11} REMOTE_USER={headers.get('x-remote-user', '')!r} "
                      f"node={headers.get('x-node', '')!r} name={headers.get('x-name', '')!r} "
                      f"groups={headers.get('x-groups', '')!r} tags={headers.get('x-tags', '')!r} "
                      f"caps={headers.get('x-caps', '')}")
            else:
                print(f"  {client:<11} {status}")

        title("A signed identity for backends (Tailscale-Jwt-Assertion, docs/assertion.md)")
        show_assertion(httpd, get)

        title("A Tailscale Service: the grants follow the address the client reached")
        if mode == "netns":
            print(f"  svc:web's VIP {netns_lib.SERVICE_V4} is on this node (tailscaled's "
                  f"status: Self.CapMap[\"service-host\"]); whois carries dst_ip=")
            for client in ("laptop", "phone"):
                for label, dst in (("node address", netns_lib.SERVER_V4),
                                   ("svc:web VIP", netns_lib.SERVICE_V4)):
                    status = ns.raw(client, httpd.ts_port, "/admins", dst=dst)[0]
                    _, headers, _ = ns.raw(client, httpd.ts_port, "/whoami", dst=dst)
                    service = headers.get("x-service", "")
                    print(f"  {client:<8} via {label:<13} {dst:<15} /admins {status}  "
                          f"TAILSCALE_SERVICE={service!r}  caps={headers.get('x-caps', '')}")
        else:
            print("  (needs network namespaces: the VIP is a local address of the server)")

        if md_available():
            title(f"The certificate for {DOMAIN} (from tailscaled via mod_md_tailscale)")
            print("  no <MDomain>: the SSL vhost's ts.net ServerName is enough")
            print("  " + CONFIG.split("# --- certificate")[1].split("</VirtualHost>")[0]
                  .split("\n", 1)[1].replace("\n", "\n  ") + "</VirtualHost>")
            for line in httpd.configtest()[1].splitlines():
                if "TS02082" in line:
                    print("  apache2 -t: " + line.split("TS02082", 1)[1].lstrip(": ")[:110])
            ctx = ssl.create_default_context(cafile=str(emu.ca_pem_path))
            for attempt in range(100):
                try:
                    with socket.create_connection(("127.0.0.1", httpd.tls_port), timeout=5) as s:
                        with ctx.wrap_socket(s, server_hostname=DOMAIN) as t:
                            cert = t.getpeercert()
                            print(f"  verified TLS handshake: subject={cert['subject']}, "
                                  f"notAfter={cert['notAfter']}")
                            break
                except (ssl.SSLError, OSError):
                    import time
                    time.sleep(0.2)
            else:
                print("  the real certificate did not arrive; see the error log")

        title("What tailscaled was asked")
        c = emu.counters()
        print(f"  LocalAPI requests: {c['by_endpoint']}")
        _, _, body = rawhttp.request("127.0.0.1", httpd.port, "/server-status?auto")
        for line in body.splitlines():
            if line.startswith("Tailscale"):
                print("  " + line)
        print(f"\nerror log: {httpd.error_log_path}")
    finally:
        if httpd:
            httpd.stop(check_crashes=False)
        if ns:
            ns.destroy()
        emu.stop()
        if "--keep" in sys.argv:
            print(f"\nkept {base} (the config and logs above): remove it when done "
                  f"(rm -r {base})")
        else:
            shutil.rmtree(base, ignore_errors=True)
            print(f"\ndeleted {base} with the config and logs above; to keep them, "
                  f"run build/demo --keep")


if __name__ == "__main__":
    main()
