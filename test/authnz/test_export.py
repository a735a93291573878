"""The identity as applications see it: CGI environment under AuthType
tailscale, and tailscale serve's headers for proxied backends (Q-encoded
exactly as serve does), with forged copies always removed."""

import pytest

from .conftest import ENV_CGI, cgi_config, cgi_modules

# The backend: a CGI behind mod_proxy on 127.0.0.1:@PORT@, in its own vhost
# that keeps the headers the front end set (its clients are the proxy only).
BACKEND = """
<VirtualHost 127.0.0.1:@PORT@>
  AuthTailscaleStripHeaders off
  ScriptAlias /cgi-bin/ "@CGIBIN@/"
</VirtualHost>
"""


def front(extra_location=""):
    return BACKEND + f"""
ProxyPass /app/ http://127.0.0.1:@PORT@/cgi-bin/
<Location /app/>
  Require tailscale-tailnet tail1234.ts.net
  Require tailscale-user *
  AuthTailscaleHeaders on
  {extra_location}
</Location>
<Location /plain/>
  Require tailscale-user *
</Location>
ProxyPass /plain/ http://127.0.0.1:@PORT@/cgi-bin/
"""


def env_of(body):
    out = {}
    for line in body.splitlines():
        k, _, v = line.partition("=")
        out[k] = v
    return out


@pytest.mark.other_user      # the CGI script runs as www-data
@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_cgi_sees_remote_user_and_identity(make_site, mpm):
    site = make_site(cgi_config(mpm) + """
<Location /cgi-bin/>
  AuthType tailscale
  Require valid-user
</Location>
""", mpm=mpm, modules=cgi_modules(mpm))
    site.httpd.write_cgi("env.cgi", ENV_CGI)
    status, body, _ = site.get("laptop", "/cgi-bin/env.cgi", v6=True)
    assert status == 200, body
    env = env_of(body)
    assert env["REMOTE_USER"] == "alice@example.com"
    assert env["AUTH_TYPE"] == "tailscale"
    assert env["TAILSCALE_USER_LOGIN"] == "alice@example.com"
    assert env["TAILSCALE_USER_NAME"] == "Alice Example"
    assert env["TAILSCALE_NODE_NAME"] == "laptop.tail1234.ts.net"
    assert env["TAILSCALE_TAILNET"] == "tail1234.ts.net"
    assert env["TAILSCALE_ADDR"].startswith("[fd7a:115c:a1e0::e901:6667]:")
    assert env["TAILSCALE_APP_CAPABILITIES"] == '{"example.com/cap/web":[{"role":"admin"}]}'


def test_backend_gets_serve_headers_with_q_encoding(make_site):
    site = make_site(front(), modules=["proxy", "proxy_http", "cgid"] )
    site.httpd.write_cgi("env.cgi", ENV_CGI)
    status, body, _ = site.get("juergen-pc", "/app/env.cgi")
    assert status == 200, body
    env = env_of(body)
    assert env["HTTP_TAILSCALE_USER_LOGIN"] == "juergen@example.com"
    assert env["HTTP_TAILSCALE_USER_NAME"] == "=?utf-8?q?J=C3=BCrgen_M=C3=BCller?="
    assert env["HTTP_TAILSCALE_HEADERS_INFO"] == "https://tailscale.com/s/serve-headers"
    assert "HTTP_TAILSCALE_APP_CAPABILITIES" not in env   # no caps accepted


def test_backend_gets_only_accepted_capabilities(make_site):
    site = make_site(front("AuthTailscaleAcceptAppCaps example.com/cap/web other.example/cap/x"),
                     modules=["proxy", "proxy_http", "cgid"])
    site.httpd.write_cgi("env.cgi", ENV_CGI)
    status, body, _ = site.get("phone", "/app/env.cgi")
    env = env_of(body)
    assert env["HTTP_TAILSCALE_APP_CAPABILITIES"] == '{"example.com/cap/web":[{"role":"viewer"}]}'
    assert env["HTTP_TAILSCALE_USER_LOGIN"] == "bob@example.com"


def test_tagged_backend_request_has_caps_but_no_user_headers(make_site):
    site = make_site(front("AuthTailscaleAcceptAppCaps example.com/cap/web\n  Require tailscale-tag tag:ci"),
                     modules=["proxy", "proxy_http", "cgid"])
    site.httpd.write_cgi("env.cgi", ENV_CGI)
    status, body, _ = site.get("ci-runner", "/app/env.cgi")
    assert status == 200, body
    env = env_of(body)
    assert "HTTP_TAILSCALE_USER_LOGIN" not in env
    assert env["HTTP_TAILSCALE_APP_CAPABILITIES"] == '{"example.com/cap/web":[{"role":"deploy"}]}'


def test_forged_headers_never_reach_the_backend(make_site):
    site = make_site(front(), modules=["proxy", "proxy_http", "cgid"])
    site.httpd.write_cgi("env.cgi", ENV_CGI)
    forged = ["Tailscale-User-Login: mallory@evil.example",
              "Tailscale-User-Name: Mallory",
              "Tailscale-App-Capabilities: {\"example.com/cap/web\":[{\"role\":\"admin\"}]}",
              "Tailscale-Funnel-Request: ?1",
              "X-Custom: kept"]
    # Headers on: the real identity replaces the forged one.
    status, _, body = site.raw("phone", "/app/env.cgi", headers=forged)
    env = env_of(body)
    assert status == 200
    assert env["HTTP_TAILSCALE_USER_LOGIN"] == "bob@example.com"
    assert env["HTTP_TAILSCALE_USER_NAME"] == "Bob Builder"
    assert "HTTP_TAILSCALE_APP_CAPABILITIES" not in env
    assert "HTTP_TAILSCALE_FUNNEL_REQUEST" not in env
    assert env["HTTP_X_CUSTOM"] == "kept"
    # Headers off: the forged ones are still removed.
    status, _, body = site.raw("phone", "/plain/env.cgi", headers=forged)
    env = env_of(body)
    assert status == 200
    assert not [k for k in env if k.startswith("HTTP_TAILSCALE")], env


CONTROL_CONF = """
AuthTailscaleURL @SOCKET@
ScriptAlias /cgi-bin/ "@CGIBIN@/"
ScriptSock @DIR@/run/cgid.sock
<Location /cgi-bin/>
  AuthType tailscale
  Require valid-user
  AuthTailscaleHeaders on
</Location>
"""


def test_control_characters_in_identity_values_are_never_exported(make_httpd, emulator):
    from lib import rawhttp
    from .test_userspace import free_local_port
    emulator.patch_tailnet({"users": {"alice@example.com": {
        "display_name": "Alice\r\nX-Injected: 1",
        "profile_pic_url": "https://example.com/a.png\r\nSet-Cookie: s=1",
        "groups": ["group:eng", "group:x\r\nX-Group-Injected: 1"]}}})
    emulator.patch_tailnet({"nodes": {"web1": {"node_cap_map": {"tailscale.com/see-groups": [
        {"groups": ["group:eng", "group:x\r\nX-Group-Injected: 1"]}]}}}})
    h = make_httpd(CONTROL_CONF, mpm="event", modules=["cgid"])
    h.write_cgi("env.cgi", ENV_CGI)
    port = free_local_port()
    emulator.proxymap(f"127.0.0.1:{port}", "laptop")
    status, _, body = rawhttp.request("127.0.0.1", h.port, "/cgi-bin/env.cgi",
                                      src="127.0.0.1", sport=port)
    assert status == 200, body
    assert "X-Injected" not in body and "Set-Cookie" not in body and "\r" not in body
    assert "X-Group-Injected" not in body
    env = env_of(body)
    assert env["REMOTE_USER"] == "alice@example.com"
    assert env["TAILSCALE_USER_NAME"] == ""
    assert env.get("TAILSCALE_USER_PROFILE_PIC", "") == ""
    assert env["HTTP_TAILSCALE_USER_LOGIN"] == "alice@example.com"
    assert env.get("HTTP_TAILSCALE_USER_PROFILE_PIC", "") == ""
    log = h.error_log()
    assert env["TAILSCALE_USER_GROUPS"] == '["group:eng"]'
    for field in ["UserProfile.DisplayName", "UserProfile.ProfilePicURL", "UserProfile.Groups"]:
        lines = [l for l in log.splitlines() if "TS01013" in l and field in l]
        assert len(lines) == 1, (field, lines)
    assert "X-Injected" not in log
