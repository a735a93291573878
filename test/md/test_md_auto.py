"""MDTailscaleAutoDomains: an `SSLEngine on` virtual host named *.ts.net with
no certificate and in no MDomain gets its certificate from tailscaled with
no <MDomain> at all."""

from .mdhelp import (DOMAIN, STATUS_LOCATION, domain_status, md_httpd, status, wait_for,
                     tls_get, vhost, wait_real_cert)


def zero_config(global_extra="MDCertificateAuthority @SOCKET@\n", vhosts=None):
    return global_extra + (vhosts if vhosts is not None else vhost(DOMAIN)) + STATUS_LOCATION


def test_zero_config_vhost_serves_a_certificate_from_tailscaled(make_httpd, emulator):
    h = md_httpd(make_httpd, zero_config())
    s = wait_real_cert(h, emulator, DOMAIN, timeout=15)
    assert s.fingerprint == emulator.certs()[DOMAIN]["sha256"]
    got = tls_get(h.tls_port, DOMAIN, emulator.ca_pem_path, path="/")
    assert got.verified and got.status == 200 and got.body == b"hello from httpd\n"
    st = domain_status(h)
    assert st["automatic"] is True and st["names"] == [DOMAIN]
    assert st["socket"] == emulator.socket_path
    assert [d["name"] for d in status(h)["domains"]] == [DOMAIN]
    assert "AH02572" not in h.error_log()


def test_configtest_reports_each_automatic_name(make_httpd, emulator):
    h = md_httpd(make_httpd, zero_config(), start=False)
    rc, out = h.configtest()
    assert rc == 0, out
    assert "TS02082" in out and DOMAIN in out and emulator.socket_path in out


def test_off_leaves_the_vhost_to_mod_ssl(make_httpd, emulator):
    conf = zero_config("MDCertificateAuthority @SOCKET@\nMDTailscaleAutoDomains off\n")
    h = md_httpd(make_httpd, conf, start=False)
    rc, out = h.start(expect_fail=True)
    assert rc != 0
    assert "AH02572" in out and "TS02082" not in out and "TS02031" not in out


def test_name_plus_wildcard_alias_is_one_wildcard_request(make_httpd, emulator):
    conf = zero_config(vhosts=vhost(DOMAIN, extra=f"  ServerAlias *.{DOMAIN}"))
    h = md_httpd(make_httpd, conf, start=False)
    rc, out = h.configtest()
    assert rc == 0, out
    assert f"certificate for *.{DOMAIN}" in out


def test_two_unrelated_names_fail_with_what_to_write(make_httpd, emulator):
    conf = zero_config(vhosts=vhost(DOMAIN, extra="  ServerAlias other.tail1234.ts.net"))
    h = md_httpd(make_httpd, conf, start=False)
    rc, out = h.configtest()
    assert rc != 0
    assert "TS02083" in out and "one <MDomain> per name" in out


def test_vhost_with_its_own_certificate_or_other_names_is_untouched(make_httpd, emulator):
    vhosts = (vhost(DOMAIN, extra="  SSLCertificateFile @SERVER_CERT@\n"
                    "  SSLCertificateKeyFile @SERVER_KEY@")
              + vhost("node2.tail1234.ts.net", extra="  ServerAlias www.example.com\n"
                      "  SSLCertificateFile @SERVER_CERT@\n  SSLCertificateKeyFile @SERVER_KEY@"))
    h = md_httpd(make_httpd, zero_config(vhosts=vhosts), start=False)
    rc, out = h.configtest()
    assert rc == 0, out
    assert "TS02082" not in out


def test_name_in_an_explicit_mdomain_is_not_automatic(make_httpd, emulator):
    conf = (f"<MDomain {DOMAIN}>\n  MDCertificateProtocol tailscale\n"
            "  MDCertificateAuthority @SOCKET@\n</MDomain>\n" + vhost(DOMAIN))
    h = md_httpd(make_httpd, conf, start=False)
    rc, out = h.configtest()
    assert rc == 0, out
    assert "TS02010" in out and "TS02082" not in out


def test_name_not_in_cert_domains_is_reported_with_the_allowed_list(make_httpd, emulator):
    name = "nothere.tail1234.ts.net"
    h = md_httpd(make_httpd, zero_config(vhosts=vhost(name)))
    h.wait_for_log("TS02051", timeout=30)
    log = h.error_log()
    assert name in log and DOMAIN in log
    assert domain_status(h, name)["fallback"] is True


SERVICE = "web.tail1234.ts.net"


def test_tailscale_service_name_is_obtained_and_renewed_like_the_node_name(
        make_httpd, make_emulator):
    """CertDomains holding the node's and a Tailscale Service's name (a host
    approved for svc:web): both zero-config vhosts get their certificate,
    and the service name is renewed like the node name."""
    from .conftest import tailnet
    emu = make_emulator(tailnet(cert_domains=[DOMAIN, SERVICE],
                                certs={"lifetime": 30, "issue_delay": 0.2}))
    conf = ("MDCertificateAuthority @SOCKET@\nMDRenewWindow 20s\n"
            "MDTailscaleRetryDelay 300ms 2s\n"
            + vhost(DOMAIN) + vhost(SERVICE) + STATUS_LOCATION)
    h = md_httpd(make_httpd, conf, socket_path=emu.socket_path)
    node = wait_real_cert(h, emu, DOMAIN, timeout=15)
    svc = wait_real_cert(h, emu, SERVICE, timeout=15)
    assert svc.fingerprint == emu.certs()[SERVICE]["sha256"] != node.fingerprint
    st = domain_status(h, SERVICE)
    assert st["automatic"] is True and st["request"] == SERVICE
    # renewed inside its window, like the node name
    h.wait_for_log(f"TS02031: MDomain {SERVICE}: new certificate from tailscaled "
                   "stored", timeout=5)
    wait_for(lambda: tls_get(h.tls_port, SERVICE, emu.ca_pem_path).fingerprint
             not in (None, svc.fingerprint), timeout=60,
             what="the renewed service certificate served")
    assert wait_real_cert(h, emu, SERVICE).verified
