"""Configuration: wrong arguments fail `apache2 -t` with a message naming the
directive and what to write instead; upstream directives keep working and
merge per virtual host."""

import pytest

from .site import SECRET

BAD = [
    ("AuthTailscaleURL relative/tailscaled.sock", "AuthTailscaleURL"),
    ("AuthTailscaleURL http://localhost/localapi", "AuthTailscaleURL"),
    ("AuthTailscaleURL file://otherhost/run/tailscale/tailscaled.sock", "AuthTailscaleURL"),
    ("AuthTailscaleCacheTimeout soon", "AuthTailscaleCacheTimeout"),
    ("AuthTailscaleTimeout 0", "AuthTailscaleTimeout"),
    ("AuthTailscaleCacheSize -3", "AuthTailscaleCacheSize"),
    ("AuthTailscaleCacheSize lots", "AuthTailscaleCacheSize"),
    ("AuthTailscaleTrustedProxy edge.example.com", "AuthTailscaleTrustedProxy"),
    ("AuthTailscaleTrustedProxy tag:", "AuthTailscaleTrustedProxy"),
    ("<Location />\nAuthTailscaleTaggedUser maybe\n</Location>", "AuthTailscaleTaggedUser"),
    ("<Location />\nAuthTailscaleUnavailable allow\n</Location>", "AuthTailscaleUnavailable"),
    ("<Location />\nAuthTailscaleAcceptAppCaps a,b\n</Location>", "AuthTailscaleAcceptAppCaps"),
    ("<Location />\nRequire tailscale-user\n</Location>", "tailscale-user"),
    ("<Location />\nRequire tailscale-tag tag:\n</Location>", "tailscale-tag"),
    ("<Location />\nRequire tailscale-tag Tag:ci\n</Location>", "write 'tag:ci'"),
    ("<Location />\nRequire tailscale-peer-tag TAG:edge\n</Location>", "write 'tag:edge'"),
    ("<Location />\nRequire tailscale-cap role=admin\n</Location>", "tailscale-cap"),
    ("<Location />\nRequire tailscale-cap example.com/cap/web admin\n</Location>", "field=value"),
    ("<Location />\nRequire tailscale-node %{HTTP_HOST}\n</Location>", "tailscale-node"),
    # Apache has no trailing comments: the comment's words would be values ("*": everyone)
    ("<Location />\nRequire tailscale-user alice@example.com   # nobody else, not *\n</Location>",
     "no trailing comments"),
    ("<Location />\nRequire tailscale-tag tag:ci #machines\n</Location>", "no trailing comments"),
    ("<Location />\nRequire tailscale-node laptop # by name\n</Location>", "no trailing comments"),
    ("<Location />\nRequire tailscale-tailnet tail1234.ts.net # ours\n</Location>", "no trailing comments"),
    ("<Location />\nRequire tailscale-peer-node edge # proxy\n</Location>", "no trailing comments"),
    ("<Location />\nRequire tailscale-peer-tag tag:edge # proxy\n</Location>", "no trailing comments"),
    ("<Location />\nRequire tailscale-cap # example.com/cap/web\n</Location>", "no trailing comments"),
    ("<Location />\nRequire tailscale-cap example.com/cap/web #role=admin\n</Location>",
     "no trailing comments"),
    ("<Location />\nRequire not tailscale-user mallory@example.com # never\n</Location>",
     "no trailing comments"),
    # list separators from other software
    ("<Location />\nRequire tailscale-user alice@example.com, bob@example.com\n</Location>",
     "ends with ','"),
    ("<Location />\nRequire tailscale-user alice@example.com,bob@example.com\n</Location>",
     "holds a ','"),
    ("<Location />\nRequire tailscale-tag tag:ci; tag:build\n</Location>", "ends with ';'"),
    ("<Location />\nRequire tailscale-node laptop/phone\n</Location>", "holds '/'"),
    ("<Location />\nRequire tailscale-user \"alice\tx\"\n</Location>", "control character"),
    # one quoted value holding two logins: it could never match
    ("<Location />\nRequire tailscale-user \"alice@example.com bob@example.com\"\n</Location>",
     "holds a space"),
    ("<Location />\nRequire tailscale-tailnet 'tail1234.ts.net example.ts.net'\n</Location>",
     "holds a space"),
    # a login always has an '@'
    ("<Location />\nRequire tailscale-user alice\n</Location>", "would never match"),
    ("<Location />\nRequire tailscale-user alice@example.com bob\n</Location>", "'bob' would never match"),
    # trailing comments on the module's own directives get the same message
    ("AuthTailscaleURL /run/tailscale/tailscaled.sock # the default", "no trailing comments"),
    ("AuthTailscaleTimeout 5 #seconds", "no trailing comments"),
    ("AuthTailscaleTrustedProxy 100.64.0.1 # edge", "no trailing comments"),
    ("<Location />\nAuthTailscaleAcceptAppCaps example.com/cap/web # only this\n</Location>",
     "no trailing comments"),
    ("<VirtualHost *:80>\n<Location />\nAuthTailscaleTaggedUser node # machines\n</Location>\n</VirtualHost>",
     "no trailing comments"),
    ("AuthTailscaleTrailingComment x", "is set by mod_authnz_tailscale itself"),
]


@pytest.mark.parametrize("line,needle", BAD, ids=[b[0].split("\n")[-2 if "\n" in b[0] else 0][:40] for b in BAD])
def test_bad_directive_fails_configtest_with_a_clear_message(make_httpd, line, needle, tmp_dir):
    h = make_httpd(line, start=False, socket_path=str(tmp_dir / "none.sock"))
    rc, out = h.configtest()
    assert rc != 0, out
    assert needle in out, out
    assert "Segmentation" not in out


def test_good_directives_pass_configtest(make_httpd, tmp_dir):
    h = make_httpd("""
AuthTailscaleURL file://localhost/run/tailscale/tailscaled.sock
AuthTailscaleCacheTimeout 30
AuthTailscaleNegativeCacheTimeout 500ms
AuthTailscaleTimeout 2s
AuthTailscaleCacheSize 5000
AuthTailscaleTrustedProxy 100.64.0.10 fd7a:115c:a1e0::/48 tag:edge
AuthTailscaleStripHeaders on
<Location />
  AuthType tailscale
  AuthTailscaleTaggedUser tags
  AuthTailscaleUnavailable deny
  AuthTailscaleHeaders on
  AuthTailscaleAcceptAppCaps example.com/cap/web
  Require tailscale-cap example.com/cap/web role=admin
</Location>
""", start=False)
    rc, out = h.configtest()
    assert rc == 0, out


def test_missing_socket_is_warned_at_startup(make_httpd, tmp_dir):
    h = make_httpd(f"AuthTailscaleURL {tmp_dir}/nothing-here.sock\n"
                   "<Location />\n  Require tailscale-user *\n</Location>")
    h.wait_for_log(r"TS01008: tailscaled socket .*nothing-here.sock does not exist")
    assert "set AuthTailscaleURL to that path" in h.error_log()


def test_no_warning_for_a_socket_no_rule_reaches(make_httpd, emulator, tmp_dir):
    # the main server's default socket is missing, but only the virtual host
    # with its own AuthTailscaleURL has rules; a vhost whose socket is missing
    # and which has rules is still warned about
    h = make_httpd(f"""
<VirtualHost 127.0.0.1:@PORT@>
  AuthTailscaleURL {emulator.socket_path}
  <Location />
    Require tailscale-user *
  </Location>
</VirtualHost>
<VirtualHost 127.0.0.1:@PORT@>
  ServerName other
  AuthTailscaleURL {tmp_dir}/gone.sock
  <Location />
    AuthType tailscale
    Require valid-user
  </Location>
</VirtualHost>
""")
    h.wait_for_log(r"TS01008: tailscaled socket .*gone.sock does not exist")
    log = h.error_log()
    assert "TS01008: tailscaled socket /var/run/tailscale/tailscaled.sock" not in log, log
    assert "TS01008: tailscaled socket /run/tailscale/tailscaled.sock" not in log, log


def test_configtest_names_authtailscaleurl_when_certificates_use_another_socket(
        make_httpd, emulator):
    # the README's certificate example sets only MDCertificateAuthority:
    # certificates worked and every protected URL answered 503
    h = make_httpd(f"""
<MDomain web1.tail1234.ts.net>
  MDCertificateProtocol tailscale
  MDCertificateAuthority file://localhost{emulator.socket_path}
</MDomain>
<Location />
  Require tailscale-user *
</Location>
""", modules=["ssl"], our=["authnz_tailscale", "md_tailscale"], start=False)
    rc, out = h.configtest()
    assert rc == 0, out
    assert "TS01081" in out and "AuthTailscaleURL is not set" in out, out
    assert f"add AuthTailscaleURL {emulator.socket_path}" in out, out
    # set, it is silent
    h2 = make_httpd(f"AuthTailscaleURL {emulator.socket_path}\n" + h.config, modules=["ssl"],
                    our=["authnz_tailscale", "md_tailscale"], start=False)
    rc, out = h2.configtest()
    assert rc == 0 and "TS01081" not in out, out


def test_socket_url_and_cache_timeout_merge_per_vhost(make_site, tmp_dir):
    """The main server uses the emulator through a file:// URL; a vhost that
    names a missing socket gets 503 there while the main server keeps working."""
    extra = f"""
AuthTailscaleURL file://localhost@SOCKET@
Listen [fd7a:115c:a1e0::1]:@PORT2@
<VirtualHost [fd7a:115c:a1e0::1]:@PORT2@>
  AuthTailscaleURL {tmp_dir}/missing.sock
  AliasMatch "^/p/" "@DOCROOT@/secret.txt"
  <Location /p/>
    Require tailscale-user *
  </Location>
</VirtualHost>
"""
    site = make_site(extra)
    assert site.get("laptop", "/p/user-alice")[0] == 200
    status, body, _ = site.ns.curl(
        "laptop", site.ns.server_url(site.httpd.extra_ports[0], "/p/x", v6=True))
    assert status == 503 and SECRET not in body
    site.httpd.wait_for_log(r"TS01001: tailscaled at .*missing.sock")


def test_lookups_use_host_local_tailscaled_sock(make_site):
    site = make_site()
    site.emulator.reset_counters()
    assert site.get("laptop", "/p/user-alice")[0] == 200
    reqs = [r for r in site.emulator.requests() if "whois" in r["target"]]
    assert reqs
    for r in reqs:
        hdrs = {k.lower(): v for k, v in r["headers"].items()} if isinstance(r["headers"], dict) \
            else {k.lower(): v for k, v in r["headers"]}
        assert hdrs.get("host") == "local-tailscaled.sock"
        assert "origin" not in hdrs and "referer" not in hdrs


def test_denial_debug_line_shows_the_rule_as_parsed(make_site):
    """A denied request's debug line quotes the rule's values as the module read
    them, so a stray character in a value is visible in the log."""
    site = make_site("LogLevel authnz_tailscale:debug")
    assert site.get("phone", "/p/user-alice")[0] == 403
    site.httpd.wait_for_log(r"TS01021: Require tailscale-user 'alice@example.com': .* denied")


def test_quoted_values_and_globs_still_parse(make_httpd, tmp_dir):
    h = make_httpd("""
<Location />
  Require tailscale-user "alice@example.com" *@example.com user@github
  Require tailscale-node laptop phone.tail1234.ts.net. web-?
  Require tailscale-tag tag:ci build tag:k8s-operator
  Require tailscale-cap example.com/cap/web "note=a, b; c"
</Location>
""", start=False, socket_path=str(tmp_dir / "none.sock"))
    rc, out = h.configtest()
    assert rc == 0, out


@pytest.mark.other_user
def test_socket_the_children_cannot_reach_is_warned_at_startup(make_httpd, emulator, tmp_dir):
    # the parent (root) reaches it; the children (www-data) would get 503
    private = tmp_dir / "private"
    private.mkdir(mode=0o700)
    (private / "tailscaled.sock").symlink_to(emulator.socket_path)
    h = make_httpd(f"AuthTailscaleURL {private}/tailscaled.sock\n"
                   "<Location />\n  Require tailscale-user *\n</Location>")
    line = h.wait_for_log(r"TS01082: [^\n]*").group(0)
    assert f"www-data (uid 33) may not enter the directory {private} (mode 0700" in line, line
    assert "TS01008" not in h.error_log()
