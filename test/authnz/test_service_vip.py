"""Grants scoped to where the client connected (Tailscale Services): the
server holds its node address and the VIP of svc:web (sample tailnet:
100.100.100.50, fd7a:115c:a1e0::50), and every whois carries dst_ip=<the
connection's local address>.  phone is granted role=admin only on the
service, laptop only on the host."""

import time

import pytest

from lib.netns import SERVICE_V4 as VIP4, SERVICE_V6 as VIP6
from .conftest import ENV_CGI

CONF = """
Listen 100.100.100.50:@TS_PORT@
Listen [fd7a:115c:a1e0::50]:@TS_PORT@
"""


@pytest.fixture
def vip(tailnet_ns):
    try:
        for a in (VIP4, VIP6):
            tailnet_ns.add_server_address(a)
        yield
    finally:
        for a in (VIP4, VIP6):
            tailnet_ns.remove_server_address(a)


def admin(site, client, host, v6=False):
    h = f"[{host}]" if v6 else host
    return site.ns.curl(client, f"http://{h}:{site.httpd.ts_port}/p/cap-admin")[0]


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_service_grant_applies_only_via_the_vip(vip, make_site, emulator, v6):
    site = make_site(CONF)
    node, svc = ("fd7a:115c:a1e0::1", VIP6) if v6 else ("100.100.0.1", VIP4)
    assert admin(site, "phone", svc, v6) == 200       # admin on svc:web
    assert admin(site, "phone", node, v6) == 403      # viewer on the host
    assert admin(site, "laptop", node, v6) == 200     # admin on the host
    assert admin(site, "laptop", svc, v6) == 403      # nothing on svc:web
    targets = [q["target"] for q in emulator.requests() if "whois" in q["target"]]
    assert all("&dst_ip=" in t for t in targets), targets
    assert any(t.endswith("dst_ip=" + svc.replace(":", "%3A")) for t in targets), targets


def test_a_cached_answer_for_one_destination_is_not_used_for_another(vip, make_site,
                                                                     emulator):
    site = make_site(CONF)
    for _ in range(2):
        assert admin(site, "phone", VIP4) == 200
        assert admin(site, "phone", "100.100.0.1") == 403


def test_loopback_local_address_sends_no_dst_ip(make_httpd, emulator):
    from lib import rawhttp
    h = make_httpd("AuthTailscaleURL @SOCKET@\n<Location /p>\n  Require tailscale-user *\n"
                   "</Location>\n")
    emulator.reset_requests()
    rawhttp.request("127.0.0.1", h.port, "/p")
    targets = [q["target"] for q in emulator.requests() if "whois" in q["target"]]
    assert targets and not any("dst_ip" in t for t in targets), targets


# --- TAILSCALE_SERVICE: which hosted service the client reached ---------

def service_of(site, client, host, v6=False):
    """(status, X-TS-Service or None) of /p/auth (AuthType tailscale)."""
    status, headers, _ = site.ns.raw(client, site.httpd.ts_port, "/p/auth", v6=v6, dst=host)
    return status, headers.get("x-ts-service")


def wait_for_service(site, want, seconds=30):
    deadline = time.time() + seconds
    got = None
    while time.time() < deadline:
        got = service_of(site, "laptop", VIP4)
        if got == (200, want):
            return got
        time.sleep(0.5)
    return got


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_tailscale_service_names_the_service_reached_via_its_vip(vip, make_site, v6):
    site = make_site(CONF)
    node, svc = ("fd7a:115c:a1e0::1", VIP6) if v6 else ("100.100.0.1", VIP4)
    assert service_of(site, "laptop", svc, v6) == (200, "svc:web")
    assert service_of(site, "phone", svc, v6) == (200, "svc:web")
    assert service_of(site, "laptop", node, v6) == (200, None)


@pytest.mark.other_user      # the CGI script runs as www-data
def test_backend_gets_tailscale_service_header_only_via_the_vip(vip, make_site):
    from .test_export import env_of, front
    site = make_site(CONF + front(), modules=["proxy", "proxy_http", "cgid"])
    site.httpd.write_cgi("env.cgi", ENV_CGI)
    status, body, _ = site.ns.curl("laptop", f"http://{VIP4}:{site.httpd.ts_port}/app/env.cgi")
    assert status == 200, body
    assert env_of(body).get("HTTP_TAILSCALE_SERVICE") == "svc:web"
    status, body, _ = site.ns.curl("laptop", f"http://100.100.0.1:{site.httpd.ts_port}/app/env.cgi")
    assert status == 200, body
    assert "HTTP_TAILSCALE_SERVICE" not in env_of(body)


def test_a_forged_tailscale_service_header_never_reaches_the_backend(vip, make_site):
    from .test_export import env_of, front
    site = make_site(CONF + front(), modules=["proxy", "proxy_http", "cgid"])
    site.httpd.write_cgi("env.cgi", ENV_CGI)
    status, _, body = site.raw("laptop", "/app/env.cgi",
                               headers=["Tailscale-Service: svc:admin"])
    assert status == 200, body
    assert "HTTP_TAILSCALE_SERVICE" not in env_of(body)


def test_the_service_list_follows_tailscaleds_netmap(vip, make_site, emulator):
    site = make_site(CONF)
    assert service_of(site, "laptop", VIP4) == (200, "svc:web")
    caps = emulator.node("web1")["description"]["node_cap_map"]
    emulator.patch_node("web1", node_cap_map=dict(
        caps, **{"service-host": [{"svc:app": [VIP4, VIP6]}]}))
    assert wait_for_service(site, "svc:app") == (200, "svc:app")
    emulator.patch_node("web1", node_cap_map={k: v for k, v in caps.items()
                                              if k != "service-host"})
    assert wait_for_service(site, None) == (200, None)


def test_status_is_asked_at_most_every_few_seconds_per_process(vip, make_site, emulator):
    site = make_site(CONF)
    emulator.reset_requests()
    start = time.time()
    for _ in range(30):
        assert service_of(site, "laptop", VIP4) == (200, "svc:web")
    elapsed = time.time() - start
    per_pid = {}
    for q in emulator.requests():
        if q["endpoint"] == "status":
            per_pid[q["pid"]] = per_pid.get(q["pid"], 0) + 1
    assert per_pid, "nobody asked for the status"
    # one first list per process, then at most one every 5 s
    assert max(per_pid.values()) <= 2 + int(elapsed / 5), (per_pid, elapsed)


def test_an_unreadable_service_list_is_warned_about_and_names_no_service(vip, make_site,
                                                                         emulator):
    caps = emulator.node("web1")["description"]["node_cap_map"]
    emulator.patch_node("web1", node_cap_map=dict(
        caps, **{"service-host": [{"web": [VIP4]}]}))
    site = make_site(CONF)
    assert service_of(site, "laptop", VIP4) == (200, None)
    log = site.httpd.error_log()
    assert "TS01047" in log and "svc:<DNS label>" in log, log[-2000:]


def test_a_failing_status_names_no_service_and_still_serves(vip, make_site, emulator):
    site = make_site(CONF)
    emulator.fault("http500", endpoints=["status"])
    assert service_of(site, "laptop", VIP4) == (200, None)
    assert "TS01046" in site.httpd.error_log()
    emulator.clear_fault()
