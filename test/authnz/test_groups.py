"""Require tailscale-group: the user's groups as tailscaled lists them
(UserProfile.Groups, only for a node with the tailscale.com/see-groups node
attribute), exported to applications, and a warning when the node sees none."""

import json

from .conftest import ENV_CGI
from .test_export import env_of, front

GROUPS_CGI = """
<Location /g/>
  Require tailscale-group group:eng
</Location>
AliasMatch "^/g/" "@DOCROOT@/secret.txt"
"""


def test_group_names_are_exact(make_site):
    site = make_site("""
<Location /g/>
  Require tailscale-group Group:Eng group:en* eng
</Location>
AliasMatch "^/g/" "@DOCROOT@/secret.txt"
""")
    status, _, _ = site.get("laptop", "/g/x")
    assert status == 403


def test_groups_in_the_environment_and_for_backends(make_site):
    site = make_site(front(), modules=["proxy", "proxy_http", "cgid"])
    site.httpd.write_cgi("env.cgi", ENV_CGI)
    status, _, body = site.raw("laptop", "/app/env.cgi",
                               headers=["Tailscale-User-Groups: group:admins"])
    assert status == 200, body
    env = env_of(body)
    assert env["HTTP_TAILSCALE_USER_GROUPS"] == '["eng@example.com","group:eng"]'
    # a user in no visible group gets no header, and the forged one is gone
    status, _, body = site.raw("juergen-pc", "/app/env.cgi",
                               headers=["Tailscale-User-Groups: group:admins"])
    assert status == 200, body
    assert "HTTP_TAILSCALE_USER_GROUPS" not in env_of(body)
    status, _, body = site.raw("laptop", "/plain/env.cgi",
                               headers=["Tailscale-User-Groups: group:admins"])
    assert "HTTP_TAILSCALE_USER_GROUPS" not in env_of(body)   # headers off: stripped only


def test_cgi_sees_tailscale_user_groups(make_site):
    site = make_site("""
ScriptAlias /cgi-bin/ "@CGIBIN@/"
ScriptSock @DIR@/run/cgid.sock
<Location /cgi-bin/>
  AuthType tailscale
  Require tailscale-group group:ops group:eng
</Location>
""", modules=["cgid"])
    site.httpd.write_cgi("env.cgi", ENV_CGI)
    status, body, _ = site.get("laptop", "/cgi-bin/env.cgi")
    assert status == 200, body
    assert env_of(body)["TAILSCALE_USER_GROUPS"] == '["eng@example.com","group:eng"]'
    status, body, _ = site.get("phone", "/cgi-bin/env.cgi")
    assert env_of(body)["TAILSCALE_USER_GROUPS"] == '["group:ops"]'
    assert site.get("juergen-pc", "/cgi-bin/env.cgi")[0] == 403
    assert site.get("ci-runner", "/cgi-bin/env.cgi")[0] == 403   # tagged: no groups


def test_node_without_see_groups_denies_and_warns_once(make_site, emulator):
    emulator.patch_node("web1", node_cap_map=None)
    site = make_site(GROUPS_CGI, mpm="event")
    for _ in range(3):
        assert site.get("laptop", "/g/x")[0] == 403
    log = site.httpd.error_log()
    assert log.count("TS01040") == 1, log
    assert "tailscale.com/see-groups" in log and '"nodeAttrs"' in log


def test_no_warning_once_groups_are_seen(make_site):
    site = make_site(GROUPS_CGI, mpm="event")
    assert site.get("laptop", "/g/x")[0] == 200
    assert site.get("juergen-pc", "/g/x")[0] == 403
    assert "TS01040" not in site.httpd.error_log()


def test_separators_inside_group_names_cannot_split_the_list(make_site, emulator):
    # "it admins@example.com" holds a space, "group:eng,group:admins" a comma:
    # a backend splitting on either would see groups the user is not in.
    tricky = ["it admins@example.com", "group:eng,group:admins"]
    emulator.patch_tailnet({"users": {"alice@example.com": {"groups": tricky}}})
    emulator.patch_tailnet({"nodes": {"web1": {"node_cap_map": {"tailscale.com/see-groups": [
        {"groups": tricky}]}}}})
    site = make_site(front() + """
ScriptAlias /tcgi/ "@CGIBIN@/"
ScriptSock @DIR@/run/cgid.sock
<Location /tcgi/>
  AuthType tailscale
  Require valid-user
</Location>
""", modules=["proxy", "proxy_http", "cgid"])
    site.httpd.write_cgi("env.cgi", ENV_CGI)
    status, body, _ = site.get("laptop", "/tcgi/env.cgi")
    assert status == 200, site.httpd.error_log()[-2000:]
    assert json.loads(env_of(body)["TAILSCALE_USER_GROUPS"]) == sorted(tricky)
    status, _, body = site.raw("laptop", "/app/env.cgi")
    assert status == 200, body
    assert json.loads(env_of(body)["HTTP_TAILSCALE_USER_GROUPS"]) == sorted(tricky)
