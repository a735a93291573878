"""Grants scoped to where the client connected (Tailscale Services): the
server holds its node address and the VIP of svc:web (sample tailnet:
100.100.100.50, fd7a:115c:a1e0::50), and every whois carries dst_ip=<the
connection's local address>.  phone is granted role=admin only on the
service, laptop only on the host."""

import subprocess

import pytest

VIP4, VIP6 = "100.100.100.50", "fd7a:115c:a1e0::50"

CONF = """
Listen 100.100.100.50:@TS_PORT@
Listen [fd7a:115c:a1e0::50]:@TS_PORT@
"""


@pytest.fixture
def vip(tailnet_ns):
    added = []
    try:
        for fam, a in (("-4", f"{VIP4}/32"), ("-6", f"{VIP6}/128")):
            extra = ["nodad"] if fam == "-6" else []
            subprocess.run(["ip", fam, "addr", "add", a, "dev", tailnet_ns.host_if, *extra],
                           check=True, capture_output=True)
            added.append((fam, a))
        yield
    finally:
        for fam, a in added:
            subprocess.run(["ip", fam, "addr", "del", a, "dev", tailnet_ns.host_if],
                           capture_output=True)


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
