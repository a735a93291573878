"""One httpd configuration that exercises every authorization rule, used by
the access-matrix tests: each /p/<rule> location serves secret.txt when the
rule admits the client."""

SECRET = "THE-PROTECTED-CONTENT"

ECHO_IDENTITY = r"""
Header always set X-TS-Login "%{TAILSCALE_USER_LOGIN}e" env=TAILSCALE_USER_LOGIN
Header always set X-TS-Name "%{TAILSCALE_USER_NAME}e" env=TAILSCALE_USER_NAME
Header always set X-TS-Pic "%{TAILSCALE_USER_PROFILE_PIC}e" env=TAILSCALE_USER_PROFILE_PIC
Header always set X-TS-Node "%{TAILSCALE_NODE_NAME}e" env=TAILSCALE_NODE_NAME
Header always set X-TS-Short "%{TAILSCALE_NODE_SHORT}e" env=TAILSCALE_NODE_SHORT
Header always set X-TS-Tailnet "%{TAILSCALE_TAILNET}e" env=TAILSCALE_TAILNET
Header always set X-TS-Tags "%{TAILSCALE_TAGS}e" env=TAILSCALE_TAGS
Header always set X-TS-Tagged "%{TAILSCALE_TAGGED}e" env=TAILSCALE_TAGGED
Header always set X-TS-Shared "%{TAILSCALE_SHARED}e" env=TAILSCALE_SHARED
Header always set X-TS-Groups "%{TAILSCALE_USER_GROUPS}e" env=TAILSCALE_USER_GROUPS
Header always set X-TS-Caps "%{TAILSCALE_APP_CAPABILITIES}e" env=TAILSCALE_APP_CAPABILITIES
Header always set X-TS-Addr "%{TAILSCALE_ADDR}e" env=TAILSCALE_ADDR
Header always set X-TS-Service "%{TAILSCALE_SERVICE}e" env=TAILSCALE_SERVICE
Header always set X-TS-Proxy-Node "%{TAILSCALE_PROXY_NODE}e" env=TAILSCALE_PROXY_NODE
Header always set X-Remote-User "expr=%{REMOTE_USER}"
Header always set X-Auth-Type "expr=%{AUTH_TYPE}"
"""

RULES = {
    "user-alice": "Require tailscale-user alice@example.com",
    "user-glob": "Require tailscale-user *@example.com",
    "user-any": "Require tailscale-user *",
    "node": "Require tailscale-node laptop phone.tail1234.ts.net.",
    "tailnet": "Require tailscale-tailnet tail1234.ts.net",
    "tag": "Require tailscale-tag tag:ci",
    "tag-short": "Require tailscale-tag build",
    "cap": "Require tailscale-cap example.com/cap/web",
    "cap-admin": "Require tailscale-cap example.com/cap/web role=admin",
    "cap-admin-or-deploy": "Require tailscale-cap example.com/cap/web role=admin role=deploy",
    "cap-empty": "Require tailscale-cap example.com/cap/empty",
    "group": "Require tailscale-group group:eng group:ops",
    "group-hidden": "Require tailscale-group group:payroll",
    "group-none": ("<RequireAll>\n    Require tailscale-user *\n    <RequireNone>\n"
                   "      Require tailscale-group group:ops\n    </RequireNone>\n  </RequireAll>"),
    "auth": "AuthType tailscale\n  Require valid-user",
    "auth-tagged-node": "AuthType tailscale\n  AuthTailscaleTaggedUser node\n  Require valid-user",
    "all": ("<RequireAll>\n    Require tailscale-user *@example.com\n"
            "    Require tailscale-cap example.com/cap/web role=admin\n  </RequireAll>"),
    "none": ("<RequireAll>\n    Require tailscale-user *\n    <RequireNone>\n"
             "      Require tailscale-user bob@example.com\n    </RequireNone>\n  </RequireAll>"),
}

# Which sample-tailnet clients each rule admits (everyone else: 403; 401 for AuthType).
ADMITS = {
    "user-alice": {"laptop"},
    "user-glob": {"laptop", "phone", "juergen-pc"},
    "user-any": {"laptop", "phone", "juergen-pc", "friend"},   # sharees are users too
    "node": {"laptop", "phone"},
    "tailnet": {"laptop", "phone", "juergen-pc", "ci-runner", "edge"},  # not the sharee
    "tag": {"ci-runner"},
    "tag-short": {"ci-runner"},
    "cap": {"laptop", "phone", "ci-runner"},
    "cap-admin": {"laptop"},
    "cap-admin-or-deploy": {"laptop", "ci-runner"},
    "cap-empty": {"phone"},
    "group": {"laptop", "phone"},
    "group-hidden": set(),   # alice is in it, but this node may not see it
    "group-none": {"laptop", "juergen-pc", "friend"},
    "auth": {"laptop", "phone", "juergen-pc", "friend"},
    "auth-tagged-node": {"laptop", "phone", "juergen-pc", "friend", "ci-runner", "edge"},
    "all": {"laptop"},
    "none": {"laptop", "juergen-pc", "friend"},
}

CLIENT_NAMES = ["laptop", "phone", "juergen-pc", "ci-runner", "edge", "friend", "stranger"]


def site_config(extra=""):
    parts = ["AuthTailscaleURL @SOCKET@", 'AliasMatch "^/p/" "@DOCROOT@/secret.txt"',
             ECHO_IDENTITY]
    for name, rule in RULES.items():
        parts.append(f"<Location /p/{name}>\n  {rule}\n</Location>")
    parts.append(extra)
    return "\n".join(parts)


def prepare_docroot(httpd):
    httpd.write_file("secret.txt", SECRET + "\n")
