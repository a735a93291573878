"""TS01001's hint names what to change in this module's configuration
(AuthTailscaleURL, AuthTailscaleTimeout, the certificate module's socket),
not tailscaled's flags or certificate advice.

The hint comes from azt_conf_socket_hint(); the TS01001 line in azt_lookup.c
(rewritten under issue 23) must call it instead of tsl_code_hint(): until it
does these tests are expected to fail (strict: they report when it does)."""

import re

import pytest

def ts01001(h):
    m = h.wait_for_log(r"TS01001: [^\n]*")
    return m.group(0)


def test_missing_socket_hint_names_authtailscaleurl_and_the_certificate_socket(
        make_site, tmp_dir, emulator):
    extra = f"""
<MDomain web1.tail1234.ts.net>
  MDCertificateProtocol tailscale
  MDCertificateAuthority {emulator.socket_path}
</MDomain>
"""
    site = make_site(extra, modules=["ssl"], our=["authnz_tailscale", "md_tailscale"],
                     socket_path=str(tmp_dir / "elsewhere.sock"))
    assert site.get("laptop", "/p/user-any")[0] == 503
    line = ts01001(site.httpd)
    assert "set AuthTailscaleURL to that path" in line, line
    assert f"MDCertificateAuthority names {emulator.socket_path}" in line, line


def test_timeout_hint_names_authtailscaletimeout_not_certificates(make_site):
    site = make_site("AuthTailscaleTimeout 700ms")
    site.emulator.fault("hang")
    assert site.get("laptop", "/p/user-any")[0] == 503
    line = ts01001(site.httpd)
    assert "AuthTailscaleTimeout" in line and "certificate" not in line, line


@pytest.mark.other_user
def test_permission_hint_names_the_user_and_the_directory_mode(make_site, tmp_dir, emulator):
    private = tmp_dir / "private"
    private.mkdir(mode=0o700)
    (private / "tailscaled.sock").symlink_to(emulator.socket_path)
    site = make_site(socket_path=str(private / "tailscaled.sock"))
    assert site.get("laptop", "/p/user-any")[0] == 503
    line = ts01001(site.httpd)
    assert re.search(r"www-data \(uid \d+\) may not enter the directory .*private "
                     r"\(mode 0700", line), line
