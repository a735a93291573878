"""Helpers for the mod_md_tailscale tests: configurations, a TLS client that
reports the served chain, the status handler, and polling.

TLS clients connect to 127.0.0.1:<TLS_PORT> with SNI = the managed name and
verify the chain against the emulator's root CA, exactly as a browser on the
tailnet would (with the emulator's CA in place of Let's Encrypt's)."""

import hashlib
import json
import socket
import ssl
import subprocess
import time
import urllib.request

from cryptography import x509

DOMAIN = "web1.tail1234.ts.net"
STATUS_PATH = "/md-tailscale-status"

STATUS_LOCATION = f"""
<Location "{STATUS_PATH}">
  SetHandler md-tailscale-status
</Location>
"""


def vhost(name=DOMAIN, extra=""):
    return f"""
<VirtualHost 127.0.0.1:@TLS_PORT@>
  ServerName {name}
  SSLEngine on
{extra}
</VirtualHost>
"""


def md_config(domain=DOMAIN, ca="@SOCKET@", md_extra="", global_extra="",
              vhosts=None, status=True):
    """An MDomain for domain (MDCertificateAuthority omitted when ca is None),
    an SSL vhost for it and the JSON status handler on the plain port."""
    ca_line = f"  MDCertificateAuthority {ca}\n" if ca is not None else ""
    text = global_extra + "\n"
    text += f"<MDomain {domain}>\n  MDCertificateProtocol tailscale\n{ca_line}{md_extra}</MDomain>\n"
    text += vhosts if vhosts is not None else vhost(domain)
    if status:
        text += STATUS_LOCATION
    return text


# Settings that make the helper act within seconds instead of minutes.
FAST = """
MDTailscaleRetryDelay 300ms 2s
"""


def md_httpd(make_httpd, config, mpm="event", modules=(), start=True, **kw):
    mods = ["ssl"] + [m for m in modules if m != "ssl"]
    return make_httpd(config, mpm=mpm, modules=mods, our=["md_tailscale"],
                      start=start, **kw)


# ---- TLS ---------------------------------------------------------------------

class Served:
    """What a TLS handshake (and optionally one request) saw."""

    def __init__(self, der, verified, error=None, status=None, headers=None, body=b""):
        self.der = der
        self.verified = verified
        self.error = error
        self.status = status
        self.headers = headers or {}
        self.body = body
        self.cert = x509.load_der_x509_certificate(der) if der else None

    @property
    def fingerprint(self):
        return hashlib.sha256(self.der).hexdigest() if self.der else None

    @property
    def serial(self):
        return "%x" % self.cert.serial_number if self.cert else None

    @property
    def self_signed(self):
        return self.cert is not None and self.cert.issuer == self.cert.subject

    def __repr__(self):
        return (f"<Served verified={self.verified} serial={self.serial} "
                f"status={self.status} error={self.error}>")


def _http_over(sock, host, path):
    req = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
           f"User-Agent: mdt-test\r\n\r\n").encode()
    sock.sendall(req)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def tls_get(port, servername=DOMAIN, cafile=None, path=None, timeout=10):
    """Handshake with SNI servername; verify against cafile when given (an
    unverifiable chain is reported, not raised). With path, send one GET."""
    der, verified, error = None, False, None
    if cafile:
        ctx = ssl.create_default_context(cafile=cafile)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
                with ctx.wrap_socket(raw, server_hostname=servername) as s:
                    der = s.getpeercert(binary_form=True)
                    verified = True
                    if path:
                        st, hd, body = _http_over(s, servername, path)
                        return Served(der, True, status=st, headers=hd, body=body)
                    return Served(der, True)
        except ssl.SSLCertVerificationError as e:
            error = str(e)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=servername) as s:
            der = s.getpeercert(binary_form=True)
            if path:
                st, hd, body = _http_over(s, servername, path)
                return Served(der, verified, error, st, hd, body)
    return Served(der, verified, error)


def curl_get(port, servername, cafile, path="/"):
    """curl --cacert CA --resolve name:port:127.0.0.1 https://name:port/path"""
    p = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", cafile,
                        "--resolve", f"{servername}:{port}:127.0.0.1",
                        "-o", "-", "-w", "\n%{http_code}",
                        f"https://{servername}:{port}{path}"],
                       capture_output=True, text=True, timeout=20)
    body, _, code = p.stdout.rpartition("\n")
    return p.returncode, int(code or 0), body, p.stderr


# ---- status --------------------------------------------------------------------

def status(httpd, domain=None):
    url = httpd.url(STATUS_PATH + (f"/{domain}" if domain else ""))
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def domain_status(httpd, domain=DOMAIN):
    return status(httpd, domain)


# ---- polling -------------------------------------------------------------------

def wait_for(pred, timeout=30, interval=0.1, what="condition"):
    """Poll pred() until it returns something truthy; return that value."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = pred()
        except (OSError, ssl.SSLError, ValueError) as e:
            last = e
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def wait_real_cert(httpd, emulator, domain=DOMAIN, timeout=30):
    """Wait until the vhost serves a chain that verifies for domain."""
    def ok():
        s = tls_get(httpd.tls_port, domain, emulator.ca_pem_path)
        return s if s.verified else None
    return wait_for(ok, timeout, what=f"a verified certificate for {domain}")


def cert_requests(emulator):
    return [r for r in emulator.requests() if r.get("endpoint") == "cert"]


def helper_pid(httpd, domain=DOMAIN, timeout=15):
    """The helper's pid once the status reports one (> 0: never 0, which
    os.kill() would take for the whole process group)."""
    return wait_for(lambda: (lambda p: p if isinstance(p, int) and p > 0 else None)(
        domain_status(httpd, domain).get("helperPid")), timeout, what="the helper's pid")
