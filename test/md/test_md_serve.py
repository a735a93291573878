"""Certificates served through mod_ssl: the issue's configuration as written,
both socket forms, first start with and without a certificate at tailscaled,
and every failure tailscaled reports, in the log and in status."""

import copy
import time

import pytest

from .conftest import tailnet
from .mdhelp import (DOMAIN, FAST, cert_requests, curl_get, domain_status, md_config,
                     md_httpd, status, tls_get, vhost, wait_for, wait_real_cert)

SNIPPET = """
<MDomain vps.headless-chicken.ts.net>
  MDCertificateProtocol tailscale
  MDCertificateAuthority {socket}
</MDomain>
<VirtualHost *:@TLS_PORT@>
  ServerName vps.headless-chicken.ts.net
  SSLEngine on
</VirtualHost>
"""


def headless_chicken_tailnet():
    tn = tailnet(tailnet={"name": "headless-chicken.example", "magic_dns_suffix":
                          "headless-chicken.ts.net"})
    nodes = dict(tn["nodes"])
    nodes["vps"] = nodes.pop("web1")
    tn["nodes"] = nodes
    tn["self"] = "vps"
    return tn


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_issue_snippet_verbatim(make_httpd, make_emulator, mpm):
    """The configuration from issue 4, unchanged except for the emulator's
    socket and the test port: the real certificate from the first request."""
    emu = make_emulator(headless_chicken_tailnet())
    name = "vps.headless-chicken.ts.net"
    h = md_httpd(make_httpd, SNIPPET.format(socket=emu.socket_path), mpm=mpm,
                 socket_path=emu.socket_path)
    s = tls_get(h.tls_port, name, emu.ca_pem_path, path="/")
    assert s.verified, s
    assert s.status == 200 and s.body == b"hello from httpd\n"
    assert s.fingerprint == emu.certs()[name]["sha256"]
    rc, code, body, err = curl_get(h.tls_port, name, emu.ca_pem_path)
    assert (rc, code, body) == (0, 200, "hello from httpd\n"), err
    log = h.error_log()
    assert "TS02021" not in log     # never a fallback
    assert "TS02032" not in log     # no restart needed
    assert "AH10085" not in log     # mod_ssl never had to fall back


@pytest.mark.parametrize("form", ["path", "file://localhost", "file://"])
def test_socket_forms(make_httpd, emulator, form):
    sock = emulator.socket_path
    spec = {"path": sock, "file://localhost": "file://localhost" + sock,
            "file://": "file://" + sock}[form]
    h = md_httpd(make_httpd, md_config(ca=spec))
    s = tls_get(h.tls_port, DOMAIN, emulator.ca_pem_path, path="/")
    assert s.verified and s.status == 200
    assert domain_status(h)["socket"] == sock


def test_every_matching_ssl_vhost_gets_the_certificate(make_httpd, emulator):
    vhosts = (vhost(DOMAIN) + vhost("alias-host.example", extra=f"  ServerAlias {DOMAIN}")
              + vhost("localhost", extra="  SSLCertificateFile @SERVER_CERT@\n"
                      "  SSLCertificateKeyFile @SERVER_KEY@"))
    conf = md_config(vhosts=vhosts)
    h = md_httpd(make_httpd, conf)
    s = tls_get(h.tls_port, DOMAIN, emulator.ca_pem_path)
    assert s.verified
    # the unrelated vhost keeps its own certificate
    alias = tls_get(h.tls_port, "alias-host.example", emulator.ca_pem_path)
    assert alias.fingerprint == s.fingerprint
    other = tls_get(h.tls_port, "localhost", str(h.pki.ca_cert))
    assert other.verified and other.fingerprint != s.fingerprint


def test_tailscaled_down_at_start_then_up(make_httpd, emulator):
    """Fallback certificate and 503 while tailscaled is down; the real
    certificate as soon as it is back, without anyone restarting httpd."""
    emulator.fault("down")
    h = md_httpd(make_httpd, md_config(global_extra=FAST))
    s = tls_get(h.tls_port, DOMAIN, emulator.ca_pem_path, path="/")
    assert not s.verified and s.self_signed
    assert s.status == 503
    assert s.headers.get("retry-after") == "10"
    assert b"being obtained from the local tailscaled" in s.body
    line = h.wait_for_log(r"TS02040: MDomain web1\.tail1234\.ts\.net: obtaining.*").group(0)
    assert emulator.socket_path in line and "does not exist" in line
    st = wait_for(lambda: (lambda d: d if d["lastError"] else None)(domain_status(h)))
    assert st["state"] == "fallback"
    assert st["lastError"]["kind"] == "socket-missing"
    assert st["lastError"]["id"] == "TS02040"

    up = time.time()
    emulator.clear_fault()
    s = wait_real_cert(h, emulator, timeout=20)
    took = time.time() - up
    print(f"tailscaled up -> real certificate served: {took:.2f}s")
    s = tls_get(h.tls_port, DOMAIN, emulator.ca_pem_path, path="/")
    assert s.status == 200
    assert "TS02032" in h.error_log()    # the module restarted httpd itself
    st = wait_for(lambda: (lambda d: d if d["state"] == "valid" else None)(domain_status(h)))
    assert st["lastError"] is None


def test_certificate_held_by_tailscaled_is_served_at_once(make_httpd, emulator):
    """tailscaled already has the certificate (e.g. from `tailscale cert`):
    the first request gets it, with no fallback and no restart."""
    r = emulator.localapi(f"/localapi/v0/cert/{DOMAIN}?type=pair")
    assert r.status == 200
    before = emulator.certs()[DOMAIN]["sha256"]
    h = md_httpd(make_httpd, md_config())
    s = tls_get(h.tls_port, DOMAIN, emulator.ca_pem_path)
    assert s.verified and s.fingerprint == before
    assert "TS02021" not in h.error_log() and "TS02032" not in h.error_log()


def test_first_issuance_delay_within_startup_wait(make_httpd, make_emulator):
    emu = make_emulator(tailnet(certs={"lifetime": 7776000, "issue_delay": 2.5}))
    t0 = time.time()
    h = md_httpd(make_httpd, md_config(ca=emu.socket_path), socket_path=emu.socket_path)
    s = tls_get(h.tls_port, DOMAIN, emu.ca_pem_path)
    print(f"start with 2.5s issuance: real certificate after {time.time() - t0:.2f}s")
    assert s.verified
    assert "TS02021" not in h.error_log()


def test_first_issuance_longer_than_startup_wait(make_httpd, make_emulator):
    """Issuance slower than MDTailscaleStartupWait: fallback first, then the
    certificate arrives and is activated by itself."""
    emu = make_emulator(tailnet(certs={"lifetime": 7776000, "issue_delay": 4}))
    t0 = time.time()
    h = md_httpd(make_httpd, md_config(ca=emu.socket_path,
                                       global_extra=FAST + "MDTailscaleStartupWait 1s\n"),
                 socket_path=emu.socket_path)
    s = tls_get(h.tls_port, DOMAIN, emu.ca_pem_path, path="/")
    assert not s.verified and s.status == 503
    s = wait_real_cert(h, emu, timeout=30)
    print(f"start with 4s issuance, 1s startup wait: real certificate after "
          f"{time.time() - t0:.2f}s")
    # the startup wait gave up (tailscaled then drops that issuance, as the
    # real one does when its client goes away); the helper asked once more
    # and waited for it: no request storm
    assert len(cert_requests(emu)) <= 3


def test_wrong_domain(make_httpd, emulator):
    name = "nothere.tail1234.ts.net"
    h = md_httpd(make_httpd, md_config(domain=name, global_extra=FAST))
    want = f'invalid domain "{name}"; must be one of ["{DOMAIN}"]'
    line = h.wait_for_log(r"TS02045: .*").group(0)
    assert want in line and emulator.socket_path in line
    assert f"tailscaled's CertDomains: [\"{DOMAIN}\"]" in line
    st = wait_for(lambda: (lambda d: d if d["lastError"] else None)(domain_status(h, name)))
    assert st["lastError"]["text"] == want
    assert st["lastError"]["kind"] == "invalid-domain"
    assert st["certDomains"] == [DOMAIN]     # a JSON array, not a string
    assert st["state"] == "fallback"
    s = tls_get(h.tls_port, name, emulator.ca_pem_path, path="/")
    assert not s.verified and s.status == 503


def test_wrong_domain_logs_one_line_per_attempt(make_httpd, emulator):
    """Each failed attempt logs one TS02045 line (with the CertDomains); the
    status call after it records them without a TS02051 line of its own."""
    name = "nothere.tail1234.ts.net"
    h = md_httpd(make_httpd, md_config(domain=name, global_extra=FAST))
    wait_for(lambda: h.error_log().count("TS02045: ") >= 3, timeout=30)
    log = h.error_log()
    # at most the one the helper logs when it starts, before any attempt
    assert log.count("TS02051: ") <= 1, log


def test_https_not_enabled(make_httpd, make_emulator):
    emu = make_emulator(tailnet(https=False))
    h = md_httpd(make_httpd, md_config(ca=emu.socket_path, global_extra=FAST),
                 socket_path=emu.socket_path)
    line = h.wait_for_log(r"TS02046: .*").group(0)
    assert "your Tailscale account does not support getting TLS certs" in line
    assert "admin console" in line
    st = wait_for(lambda: (lambda d: d if d["lastError"] else None)(domain_status(h)))
    assert st["lastError"]["text"] == "your Tailscale account does not support getting TLS certs"
    # the status call found no CertDomains at all: the helper's probe when it
    # starts, which may come after the parent's failed attempt set lastError
    h.wait_for_log(r"TS02051: ")


def test_tailscaled_not_logged_in(make_httpd, emulator):
    emulator.set_backend("NeedsLogin")
    h = md_httpd(make_httpd, md_config(global_extra=FAST))
    h.wait_for_log(r"TS02050: .*NeedsLogin")
    st = wait_for(lambda: (lambda d: d if d["lastError"] else None)(domain_status(h)))
    assert st["backendState"] == "NeedsLogin"
    emulator.set_backend("Running")
    wait_real_cert(h, emulator, timeout=20)


def test_wildcard(make_httpd, make_emulator):
    emu = make_emulator(tailnet(wildcard_certs=True))
    vhosts = vhost(DOMAIN) + vhost(f"app.{DOMAIN}")
    h = md_httpd(make_httpd, md_config(domain=f"{DOMAIN} *.{DOMAIN}", ca=emu.socket_path,
                                       vhosts=vhosts), socket_path=emu.socket_path)
    a = tls_get(h.tls_port, DOMAIN, emu.ca_pem_path)
    b = tls_get(h.tls_port, f"app.{DOMAIN}", emu.ca_pem_path)
    assert a.verified and b.verified and a.fingerprint == b.fingerprint
    assert list(emu.certs()) == [f"*.{DOMAIN}"]


def test_wildcard_not_enabled(make_httpd, emulator):
    h = md_httpd(make_httpd, md_config(domain=f"*.{DOMAIN}", vhosts=vhost(f"app.{DOMAIN}"),
                                       global_extra=FAST))
    line = h.wait_for_log(r"TS02053: .*").group(0)
    assert "wildcard certificates are not enabled for this node" in line


def test_status_handler_and_server_status(make_httpd, emulator):
    conf = md_config() + """
<Location "/server-status">
  SetHandler server-status
</Location>
"""
    h = md_httpd(make_httpd, conf, modules=["status"])
    wait_real_cert(h, emulator)
    doc = status(h)
    assert doc["module"] == "mod_md_tailscale"
    d = doc["domains"][0]
    for key in ("name", "socket", "state", "cert", "lastCheck", "nextCheck", "lastError",
                "renewals"):
        assert key in d
    assert d["name"] == DOMAIN and d["state"] == "valid"
    assert d["cert"]["fingerprint"] == emulator.certs()[DOMAIN]["sha256"]
    import urllib.request
    text = urllib.request.urlopen(h.url("/server-status?auto"), timeout=10).read().decode()
    assert f"MDTailscaleDomain: {DOMAIN} state=valid" in text
    html = urllib.request.urlopen(h.url("/server-status"), timeout=10).read().decode()
    assert "<h2>mod_md_tailscale</h2>" in html and DOMAIN in html
    # children only read the status files: nothing asked tailscaled as www-data
    assert all(r["uid"] == 0 for r in emulator.requests())


def test_http2(make_httpd, emulator):
    """Over HTTP/2 too: the fallback answers 503, the real certificate 200."""
    import subprocess
    emulator.fault("down")
    conf = md_config(vhosts=vhost(DOMAIN, extra="  Protocols h2 http/1.1"),
                     global_extra=FAST)
    h = md_httpd(make_httpd, conf, modules=["http2"])

    def get(verify):
        args = ["curl", "-sS", "--http2", "--max-time", "10", "-o", "/dev/null",
                "-w", "%{http_version} %{http_code}",
                "--resolve", f"{DOMAIN}:{h.tls_port}:127.0.0.1"]
        args += ["--cacert", emulator.ca_pem_path] if verify else ["-k"]
        p = subprocess.run(args + [f"https://{DOMAIN}:{h.tls_port}/"], capture_output=True,
                           text=True, timeout=20)
        return p.returncode, p.stdout
    assert get(False) == (0, "2 503")
    emulator.clear_fault()
    wait_real_cert(h, emulator, timeout=20)
    assert get(True) == (0, "2 200")
