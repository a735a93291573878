"""The same decisions over TLS, HTTP/2 (h2 and h2c) and a dual-stack
wildcard listener whose IPv4 peers appear as ::ffff:100.x."""

import pytest

from .site import SECRET

TLS = """
Listen 100.100.0.1:@PORT2@ https
Listen 100.100.0.1:@PORT3@
Protocols h2c http/1.1
<VirtualHost 100.100.0.1:@PORT2@>
  SSLEngine on
  SSLCertificateFile @SERVER_CERT@
  SSLCertificateKeyFile @SERVER_KEY@
  Protocols h2 http/1.1
  AliasMatch "^/p/" "@DOCROOT@/secret.txt"
  <Location /p/user-alice>
    Require tailscale-user alice@example.com
  </Location>
  <Location /p/auth>
    AuthType tailscale
    Require valid-user
  </Location>
</VirtualHost>
"""


# mod_http2 switches itself off under prefork (AH10034), so h2 runs under event.
@pytest.mark.parametrize("mpm,http", [("event", "--http1.1"), ("event", "--http2"),
                                      ("prefork", "--http1.1"), ("worker", "--http2")])
def test_tls_decisions_with_http1_and_h2(make_site, mpm, http):
    site = make_site(TLS, mpm=mpm, modules=["ssl", "http2"])
    url = f"https://100.100.0.1:{site.httpd.extra_ports[0]}/p/user-alice"
    ca = str(site.httpd.pki.ca_cert)
    status, body, headers = site.ns.curl("laptop", url, "--cacert", ca, http, "-v")
    assert status == 200 and SECRET in body
    if http == "--http2":
        assert "HTTP/2 200" in headers
    status, body, _ = site.ns.curl("phone", url, "--cacert", ca, http)
    assert status == 403 and SECRET not in body
    auth = f"https://100.100.0.1:{site.httpd.extra_ports[0]}/p/auth"
    status, body, _ = site.ns.curl("stranger", auth, "--cacert", ca, http)
    assert status == 401


def test_h2_multiplexed_streams_each_get_the_identity(make_site):
    site = make_site(TLS, modules=["ssl", "http2"])
    url = f"https://100.100.0.1:{site.httpd.extra_ports[0]}/p/user-alice"
    ca = str(site.httpd.pki.ca_cert)
    status, body, _ = site.ns.curl("laptop", url, "--cacert", ca, "--http2", *([url] * 7),
                                   "--parallel", "--parallel-immediate")
    assert body.count(SECRET) == 8


def test_h2c_prior_knowledge(make_site):
    site = make_site(TLS, modules=["ssl", "http2"])
    url = f"http://100.100.0.1:{site.httpd.extra_ports[1]}/p/user-alice"
    status, body, headers = site.ns.curl("laptop", url, "--http2-prior-knowledge", "-v")
    assert status == 200 and SECRET in body and "HTTP/2 200" in headers
    status, _, _ = site.ns.curl("ci-runner", url, "--http2-prior-knowledge")
    assert status == 403


def test_dual_stack_listener_unmaps_ipv4(make_site):
    site = make_site("Listen [::]:@PORT4@")
    url = f"http://100.100.0.1:{site.httpd.extra_ports[2]}/p/user-alice"
    status, body, headers = site.ns.curl("laptop", url)
    assert status == 200 and SECRET in body
    assert "X-TS-Addr: 100.101.102.103:" in headers   # asked as IPv4, not ::ffff:


def test_many_concurrent_h2_streams_do_not_crash_httpd(make_site):
    """Streams of one HTTP/2 connection run in parallel worker threads and all
    read the primary connection's peer address; nothing of that connection may
    be modified from them (an allocation from its pool crashed httpd under
    load). make_site's teardown fails the test on any crash in the error log."""
    site = make_site(TLS, modules=["ssl", "http2"])
    url = f"http://100.100.0.1:{site.httpd.extra_ports[1]}/p/user-alice"
    for _ in range(12):
        status, body, _ = site.ns.curl("laptop", url, "--http2-prior-knowledge",
                                       *([url] * 99), "--parallel", "--parallel-max", "100",
                                       "--parallel-immediate", timeout=60)
        assert body.count(SECRET) == 100
    assert not site.httpd.crashes()
