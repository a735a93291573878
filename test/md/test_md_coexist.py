"""Coexistence with Debian's mod_md 2.6: ACME MDomains stay mod_md's, the
tailscale ones are ours, in either load order."""

import json
import urllib.request

import pytest

from .mdhelp import DOMAIN, md_config, md_httpd, status, tls_get, vhost, wait_real_cert

ACME = "acme.example.org"

MOD_MD = "LoadModule md_module /usr/lib/apache2/modules/mod_md.so\n"

ACME_PART = f"""
MDCertificateAgreement accepted
MDContactEmail admin@example.org
MDRetryDelay 1h
<MDomain {ACME}>
  MDCertificateProtocol ACME
  MDCertificateAuthority https://127.0.0.1:9/directory
</MDomain>
<Location "/md-status">
  SetHandler md-status
</Location>
""" + vhost(ACME)


def config(order):
    # "md-first": mod_md is loaded before mod_md_tailscale (a2enmod's
    # alphabetical order); "ours-first": after it.
    head = MOD_MD if order == "ours-first" else ""
    return head + ACME_PART + md_config()


def modules(order):
    mods = ["ssl"]
    return mods + ["md"] if order == "md-first" else mods


@pytest.mark.parametrize("order", ["md-first", "ours-first"])
def test_configtest_with_mod_md(make_httpd, emulator, order):
    h = md_httpd(make_httpd, config(order), modules=modules(order), start=False)
    rc, out = h.configtest()
    assert rc == 0, out
    assert f"MDomain {DOMAIN}: certificate for {DOMAIN}" in out
    assert ACME not in out      # not ours


@pytest.mark.parametrize("order", ["md-first", "ours-first"])
def test_acme_domain_is_mod_mds_and_tailscale_domain_is_ours(make_httpd, emulator, order):
    h = md_httpd(make_httpd, config(order), modules=modules(order))
    s = wait_real_cert(h, emulator)
    assert s.verified
    with urllib.request.urlopen(h.url("/md-status"), timeout=10) as r:
        md = json.loads(r.read())
    names = [d["name"] for d in md.get("managed-domains", [])]
    assert names == [ACME], md
    ours = [d["name"] for d in status(h)["domains"]]
    assert ours == [DOMAIN]
    # mod_md gives its domain its own (fallback) certificate, never ours
    other = tls_get(h.tls_port, ACME)
    assert other.fingerprint != s.fingerprint
    # mod_md never saw the tailscale section
    assert "is not known" not in h.error_log()
    assert "unknown CA protocol" not in h.error_log()
