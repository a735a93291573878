"""When tailscaled cannot answer, nobody gets in: 503 (never the protected
content), one rate-limited error line naming the socket, and service
resumes by itself when tailscaled is back."""

import time

import pytest

from .site import SECRET

NO_CACHE = """
AuthTailscaleCacheTimeout 0
AuthTailscaleNegativeCacheTimeout 0
AuthTailscaleTimeout 700ms
"""

FAULTS = {
    "down": "TS01001",       # socket file gone
    "refuse": "TS01001",     # stale socket, nobody listening
    "hang": "TS01001",       # accepts, never answers: timeout
    "reset": "TS01001",      # connection closed without an answer
    "garbage": "TS01002",    # 200 with a body that is not whois JSON
    "oversized": "TS01001",  # a body beyond the size limit
    "http500": "TS01003",    # tailscaled error status
}


def wait_status(site, client, path, want, timeout=10, **kw):
    deadline = time.time() + timeout
    status = None
    while time.time() < deadline:
        status, body, headers = site.get(client, path, **kw)
        if status == want:
            return status, body, headers
        time.sleep(0.2)
    raise AssertionError(f"{client} {path}: status {status}, never {want}")


@pytest.mark.parametrize("mode", sorted(FAULTS))
def test_unavailable_tailscaled_gives_503_and_never_the_content(make_site, mode):
    site = make_site(NO_CACHE)
    assert site.get("laptop", "/p/user-alice")[0] == 200
    site.emulator.fault(mode)
    for path in ["/p/user-alice", "/p/tag", "/p/auth", "/p/cap-admin"]:
        status, body, headers = site.get("laptop", path)
        assert status == 503, f"{mode} {path}: {status}"
        assert SECRET not in body
        assert "Retry-After: 5" in headers
    log = site.httpd.wait_for_log(FAULTS[mode] + r":.*")
    assert site.emulator.socket_path in log.group(0)
    site.emulator.clear_fault()
    wait_status(site, "laptop", "/p/user-alice", 200)


def test_error_lines_are_rate_limited(make_site):
    site = make_site(NO_CACHE)
    site.emulator.fault("down")
    for _ in range(15):
        assert site.get("phone", "/p/user-glob")[0] == 503
    lines = [l for l in site.httpd.error_log().splitlines() if "TS01001" in l]
    assert 1 <= len(lines) <= 2, lines
    assert "is tailscaled running" in lines[0] or "tailscale" in lines[0]


def test_deny_mode_lets_other_rules_decide(make_site):
    extra = NO_CACHE + """
<Location /p/fallback>
  AuthTailscaleUnavailable deny
  <RequireAny>
    Require tailscale-user alice@example.com
    Require ip 100.64.0.2
  </RequireAny>
</Location>
"""
    site = make_site(extra)
    site.emulator.fault("down")
    assert site.get("phone", "/p/fallback")[0] == 200      # by Require ip
    status, body, _ = site.get("laptop", "/p/fallback")
    assert status == 403 and SECRET not in body              # tailscale rule denies
    assert site.get("laptop", "/p/user-alice")[0] == 503     # default stays error


def test_cached_identity_survives_a_short_outage(make_site):
    site = make_site("AuthTailscaleCacheTimeout 60")
    assert site.get("laptop", "/p/user-alice")[0] == 200
    site.emulator.fault("down")
    # A new connection from the same tailnet IP: answered from the process cache.
    status, body, _ = site.get("laptop", "/p/user-alice")
    assert status in (200, 503)      # 503 if the request landed on another process
    if status == 200:
        assert SECRET in body


def test_backend_not_running_is_503_not_401(make_site):
    site = make_site(NO_CACHE)
    site.emulator.set_backend("NeedsLogin")
    status, _, _ = site.get("laptop", "/p/auth")
    # A logged-out tailscaled has no netmap: whois finds nobody (404).
    assert status == 401


def test_server_status_shows_lookups_hits_errors_and_last_error(make_site):
    from lib import rawhttp
    site = make_site(NO_CACHE + """
ExtendedStatus On
<Location /server-status>
  SetHandler server-status
  Require ip 127.0.0.1
</Location>
""", modules=["status"])
    assert site.get("laptop", "/p/user-alice")[0] == 200
    site.emulator.fault("down")
    assert site.get("laptop", "/p/user-alice")[0] == 503
    _, _, auto = rawhttp.request("127.0.0.1", site.httpd.port, "/server-status?auto")
    fields = dict(line.split(": ", 1) for line in auto.splitlines() if line.startswith("Tailscale"))
    assert int(fields["TailscaleLookups"]) >= 2
    assert int(fields["TailscaleIdentified"]) >= 1
    assert int(fields["TailscaleErrors"]) >= 1
    assert "does not exist" in fields["TailscaleLastError"]
    assert fields["TailscaleSocket"] == site.emulator.socket_path
    _, _, html = rawhttp.request("127.0.0.1", site.httpd.port, "/server-status")
    assert "<h2>mod_authnz_tailscale</h2>" in html and "LastError" in html


SECTIONS = NO_CACHE + """
AliasMatch "^/healthz" "@DOCROOT@/secret.txt"
Alias /aliased "@DOCROOT@/secret.txt"
<AuthzProviderAlias tailscale-user alice-only alice@example.com>
</AuthzProviderAlias>
<Location /healthz>
  Require tailscale-user alice@example.com
</Location>
<Location /healthz/live>
  Require all granted
</Location>
<Location /aliased>
  Require alice-only
</Location>
"""


def test_needs_identity_is_decided_per_section_from_its_own_rules(make_site):
    site = make_site(SECTIONS)
    assert site.get("laptop", "/aliased")[0] == 200
    site.emulator.fault("down")
    # Its own rules replace the parent's: no identity needed.
    status, body, _ = site.get("phone", "/healthz/live")
    assert status == 200 and SECRET in body
    assert site.get("phone", "/healthz")[0] == 503
    # A tailscale provider behind AuthzProviderAlias: 503 like any other.
    status, body, headers = site.get("laptop", "/aliased")
    assert status == 503 and SECRET not in body and "Retry-After: 5" in headers
