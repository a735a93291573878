"""Configuration: mod_md's syntax is accepted, mistakes fail `apache2 -t`
with a message naming the directive, and the socket in use is visible."""

import pytest

from .mdhelp import DOMAIN, md_config, vhost


SOCK = "/tmp/mdt-configtest/tailscaled.sock"


def cfg(**kw):
    kw.setdefault("ca", SOCK)
    return md_config(**kw)


def configtest(make_httpd, config, modules=("ssl",)):
    h = make_httpd(config, modules=list(modules), our=["md_tailscale"], start=False)
    return h.configtest()


BAD = [
    # (directive line inside the MDomain, text the error must contain)
    ("MDRenewWindow 0%", "MDRenewWindow"),
    ("MDRenewWindow soon", "MDRenewWindow"),
    ("MDRenewWindow 100%", "MDRenewWindow"),
    ("MDWarnWindow 3x", "MDWarnWindow"),
    ("MDCertificateAuthority relative/tailscaled.sock", "MDCertificateAuthority"),
    ("MDCertificateAuthority http://localhost/sock", "MDCertificateAuthority"),
    ("MDCertificateAuthority file://otherhost/run/tailscaled.sock", "MDCertificateAuthority"),
    ("MDCertificateAuthority", "MDCertificateAuthority"),
    ("MDRenewMode manual", "MDRenewMode"),
    ("MDPrivateKeys RSA 4096", "MDPrivateKeys"),
    ("ServerAlias x.example", "ServerAlias"),
    # Apache has no trailing comments: the same message as for Require lines
    ("MDRenewWindow 33% # a third", "no trailing comments"),
    ("MDCertificateProtocol tailscale #ours", "no trailing comments"),
]


@pytest.mark.parametrize("line,needle", BAD, ids=[b[0] for b in BAD])
def test_bad_section_content_fails_configtest(make_httpd, line, needle):
    rc, out = configtest(make_httpd, cfg(md_extra=f"  {line}\n"))
    assert rc != 0, out
    assert needle in out
    assert DOMAIN in out


GLOBAL_BAD = [
    ("MDTailscaleCheckInterval 5x", "MDTailscaleCheckInterval"),
    ("MDTailscaleCheckInterval 0", "MDTailscaleCheckInterval"),
    ("MDTailscaleRetryDelay 10s 1s", "MDTailscaleRetryDelay"),
    ("MDTailscaleRetryDelay 1ms", "MDTailscaleRetryDelay"),
    ("MDTailscaleAutoRestart maybe", "MDTailscaleAutoRestart"),
    ("MDTailscaleStartupWait 5mi", "MDTailscaleStartupWait"),
    ("MDTailscaleRequestTimeout never", "MDTailscaleRequestTimeout"),
    ("MDRenewWindow 120%", "MDRenewWindow"),
    ("MDMessageCmd", "MDMessageCmd"),
    ("MDTailscaleStartupWait 2s # first start", "no trailing comments"),
    ("MDTailscaleAutoRestart on # activate at once", "no trailing comments"),
    ("MDMessageCmd /usr/local/bin/md-event # mail the admin", "no trailing comments"),
    ("MDTailscaleTrailingComment x", "is set by mod_md_tailscale itself"),
]


@pytest.mark.parametrize("line,needle", GLOBAL_BAD, ids=[b[0] for b in GLOBAL_BAD])
def test_bad_global_directive_fails_configtest(make_httpd, line, needle):
    rc, out = configtest(make_httpd, cfg(global_extra=line))
    assert rc != 0, out
    assert needle in out


def test_acme_mdomain_without_mod_md_is_a_clear_error(make_httpd):
    conf = cfg() + "<MDomain acme.example.org>\n  MDCertificateAgreement accepted\n</MDomain>\n"
    rc, out = configtest(make_httpd, conf)
    assert rc != 0
    assert "TS02002" in out and "acme.example.org" in out
    assert "only MDCertificateProtocol tailscale is handled by mod_md_tailscale" in out
    assert "load mod_md" in out


def test_unknown_protocol_is_quoted_in_ts02002(make_httpd):
    conf = cfg() + ("<MDomain other.tail1234.ts.net>\n  MDCertificateProtocol tailscal\n"
                    "</MDomain>\n")
    rc, out = configtest(make_httpd, conf)
    assert rc != 0 and "TS02002" in out, out
    assert "protocol is 'tailscal'" in out, out


def test_one_line_acme_mdomain_without_mod_md_is_a_clear_error(make_httpd):
    rc, out = configtest(make_httpd, cfg() + "MDomain acme.example.org\n")
    assert rc != 0 and "TS02002" in out and "acme.example.org" in out


def test_several_names_are_an_error(make_httpd):
    conf = cfg(domain=f"{DOMAIN} other.tail1234.ts.net", vhosts=vhost(DOMAIN))
    rc, out = configtest(make_httpd, conf)
    assert rc != 0
    assert "one name only" in out and "*.node.tailnet.ts.net" in out


def test_name_and_its_wildcard_are_one_request(make_httpd):
    conf = cfg(domain=f"{DOMAIN} *.{DOMAIN}", vhosts=vhost(DOMAIN))
    rc, out = configtest(make_httpd, conf)
    assert rc == 0, out
    assert f"certificate for *.{DOMAIN}" in out


def test_invalid_name(make_httpd):
    rc, out = configtest(make_httpd, cfg(domain="web_1.tail1234.ts.net"))
    assert rc != 0 and "web_1.tail1234.ts.net" in out


def test_name_managed_twice(make_httpd):
    conf = cfg() + f"<MDomain {DOMAIN.upper()}.>\n  MDCertificateProtocol tailscale\n</MDomain>\n"
    rc, out = configtest(make_httpd, conf)
    assert rc != 0 and "already managed" in out


def test_mdomain_inside_virtualhost_is_refused(make_httpd):
    conf = vhost(DOMAIN, extra=f"<MDomain {DOMAIN}>\nMDCertificateProtocol tailscale\n</MDomain>")
    rc, out = configtest(make_httpd, conf)
    assert rc != 0 and "MDomain" in out


def test_mod_ssl_missing(make_httpd):
    rc, out = configtest(make_httpd, cfg(vhosts=""), modules=())
    assert rc != 0
    assert "TS02003" in out and "mod_ssl" in out


def test_default_socket_when_authority_is_absent(make_httpd):
    rc, out = configtest(make_httpd, cfg(ca=None))
    assert rc == 0, out
    line = [l for l in out.splitlines() if "TS02010" in l][0]
    # the default: /var/run/tailscale/tailscaled.sock, or /run/... if only that exists
    assert ("/var/run/tailscale/tailscaled.sock (default socket)" in line
            or "/run/tailscale/tailscaled.sock (default socket)" in line), line


@pytest.mark.parametrize("form", ["path", "file://localhost", "file://"])
def test_socket_forms_resolve_to_the_path(make_httpd, emulator, form):
    sock = emulator.socket_path
    spec = {"path": sock, "file://localhost": "file://localhost" + sock,
            "file://": "file://" + sock}[form]
    rc, out = configtest(make_httpd, cfg(ca=spec))
    assert rc == 0, out
    assert f"tailscaled at {sock} (configured)" in out


def test_global_protocol_and_one_line_mdomain(make_httpd, emulator):
    conf = (f"MDCertificateProtocol tailscale\nMDCertificateAuthority {emulator.socket_path}\n"
            f"MDRenewWindow 10d\nMDomain {DOMAIN}\n" + vhost(DOMAIN))
    rc, out = configtest(make_httpd, conf)
    assert rc == 0, out
    assert f"certificate for {DOMAIN} from tailscaled at {emulator.socket_path}" in out
    assert "renew window 10d" in out


def test_explicit_section_name(make_httpd, emulator):
    conf = (f"<MDTailscaleDomain {DOMAIN}>\n  MDCertificateAuthority {emulator.socket_path}\n"
            f"</MDTailscaleDomain>\n" + vhost(DOMAIN))
    rc, out = configtest(make_httpd, conf)
    assert rc == 0, out
    assert "TS02010" in out


def test_relative_socket_error_gives_its_hint_once(make_httpd):
    rc, out = configtest(make_httpd, cfg(md_extra="  MDCertificateAuthority "
                                                  "relative/tailscaled.sock\n"))
    assert rc != 0 and "relative/tailscaled.sock" in out, out
    assert out.count("file://localhost/") == 1, out


def test_managed_vhost_without_sslengine_is_reported_by_configtest(make_httpd):
    plain = f"<VirtualHost 127.0.0.1:@TLS_PORT@>\n  ServerName {DOMAIN}\n</VirtualHost>\n"
    rc, out = configtest(make_httpd, cfg(vhosts=plain))
    assert rc == 0, out
    assert "TS02086" in out and DOMAIN in out and "SSLEngine on" in out, out


def test_plain_vhost_next_to_an_ssl_one_is_not_reported(make_httpd):
    both = (f"<VirtualHost 127.0.0.1:@PORT@>\n  ServerName {DOMAIN}\n</VirtualHost>\n"
            + vhost(DOMAIN))
    rc, out = configtest(make_httpd, cfg(vhosts=both))
    assert rc == 0, out
    assert "TS02086" not in out, out


def test_trailing_comment_after_mdomain_section_fails_configtest(make_httpd):
    # httpd ends a section's arguments at its '>'; the rest was dropped silently
    conf = cfg().replace(f"<MDomain {DOMAIN}>", f"<MDomain {DOMAIN}> # the web server")
    rc, out = configtest(make_httpd, conf)
    assert rc != 0, out
    assert f"<MDomain {DOMAIN}>: '# the web server' looks like a comment" in out, out
    assert "no trailing comments" in out


def test_trailing_comment_in_a_mod_md_section_with_mod_md_loaded(make_httpd):
    conf = (cfg() + "<MDomain acme.example.org> # ACME\n  MDContactEmail admin@example.org\n"
            "  MDCertificateAgreement accepted\n</MDomain>\n")
    rc, out = configtest(make_httpd, conf, modules=("ssl", "md"))
    assert rc != 0, out
    assert "<MDomain acme.example.org>: '# ACME' looks like a comment" in out, out


@pytest.mark.parametrize("proto", ["tailscal", "Tailscale-ish", None])
def test_protocol_typo_with_mod_md_loaded_is_ts02002(make_httpd, proto):
    # mod_md would answer "CA name ... is not known" for the socket
    conf = cfg()
    if proto:
        conf = conf.replace("MDCertificateProtocol tailscale", f"MDCertificateProtocol {proto}")
    else:
        conf = conf.replace("  MDCertificateProtocol tailscale\n", "")
    rc, out = configtest(make_httpd, conf, modules=("ssl", "md"))
    assert rc != 0, out
    assert "TS02002" in out and (f"'{proto}'" if proto else "none, so ACME") in out, out
    assert "is a socket" in out and "is not known" not in out, out
