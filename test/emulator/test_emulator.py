"""The emulator must be as strict and as exact as tailscaled (shared/spec/
localapi.md): the two dead Apache modules passed their own lax fakes, so every
behaviour a client could get wrong is pinned here byte for byte."""

import json
import os
import pwd
import select
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import sample_tailnet
from lib.emulator import PYTHON, Emulator, EmulatorError, localapi_request, staged_program
from lib import pki

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tsemu.gocompat import go_parse_duration, go_quote_list  # noqa: E402  (unit-tested below)


def needs_root(test):
    """Acts as www-data or nobody: needs root, and is marked other_user."""
    skip = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as www-data")
    return pytest.mark.other_user(skip(test))


WEB1 = "web1.tail1234.ts.net"
CERT = "/localapi/v0/cert/" + WEB1
WWW_DATA = 33
ERROR_CT = "text/plain; charset=utf-8"
LOCAL_HOST = "local-tailscaled.sock"


def whois(emu, addr, **kw):
    return emu.localapi("/localapi/v0/whois?addr=" + urllib.parse.quote(addr, safe=""), **kw)


def assert_go_error(r, status, text):
    """http.Error's exact shape."""
    assert (r.status, r.body) == (status, (text + "\n").encode())
    assert r.header("Content-Type") == ERROR_CT
    assert r.header("X-Content-Type-Options") == "nosniff"


def fast_certs(lifetime=7776000, delay=0.2, **extra):
    t = sample_tailnet()
    t["certs"] = {"lifetime": lifetime, "issue_delay": delay}
    t.update(extra)
    return t


def split_pair(body):
    """The Go client's split: at the first "--\\n--"."""
    i = body.index(b"--\n--")
    return body[:i + 3], body[i + 3:]


# ---------------------------------------------------------------- transport

def test_socket_mode_is_0666_and_missing_dir_created_0755(make_emulator, tmp_path):
    base = Path("/tmp") / ("tsemu-t%d" % os.getpid())
    sock = base / "run" / "tailscale" / "tailscaled.sock"
    try:
        emu = make_emulator(socket_path=sock)
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o666
        assert stat.S_ISSOCK(os.stat(sock).st_mode)
        assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o755
        assert emu.localapi("/localapi/v0/status").status == 200
    finally:
        import shutil
        shutil.rmtree(base, ignore_errors=True)


def test_http11_without_host_is_400(emulator):
    r = emulator.localapi("/localapi/v0/status", host=None)
    assert r.raw == (b"HTTP/1.1 400 Bad Request: missing required Host header\r\n"
                     b"Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
                     b"400 Bad Request: missing required Host header")
    assert r.closed


def test_http10_without_host_is_accepted(emulator):
    r = emulator.localapi("/localapi/v0/status?peers=false", host=None, http10=True,
                          check_closed=True)
    assert r.status == 200 and r.version == "HTTP/1.0"
    assert r.json()["BackendState"] == "Running"
    assert r.closed, "HTTP/1.0 responses close the connection"
    assert r.header("Connection") is None


def test_http11_empty_host_header_is_the_empty_host_and_accepted(emulator):
    r = emulator.localapi("/localapi/v0/status?peers=false", headers=[("Host", "")])
    assert r.status == 200


def test_keepalive_serves_several_requests_on_one_connection(emulator):
    rs = emulator.localapi_many([
        {"path": "/localapi/v0/whois?addr=100.64.0.2"},
        {"path": CERT + "?type=pair"},
        {"path": "/localapi/v0/status?peers=false"},
    ], check_closed=True)
    assert [r.status for r in rs] == [200, 200, 200]
    assert rs[1].chunked
    assert rs[-1].closed is False


def test_connection_close_is_honoured(emulator):
    r = emulator.localapi("/localapi/v0/status?peers=false", headers=[("Connection", "close")],
                          check_closed=True)
    assert r.status == 200 and r.header("Connection") == "close" and r.closed


def test_connect_is_405_bad_method_for_platform(emulator):
    r = emulator.localapi("local-tailscaled.sock:80", method="CONNECT", host=None)
    assert_go_error(r, 405, "bad method for platform")


def test_root_serves_html_banner_without_host_check(emulator):
    r = emulator.localapi("/", host="localhost")
    assert r.status == 200
    assert r.body == (b"<html><title>Tailscale</title><body><h1>Tailscale</h1>"
                      b"This is the local Tailscale daemon.\n")
    assert r.header("Content-Type") == "text/html; charset=utf-8"
    assert r.header("Tailscale-Version") is None


def test_unknown_localapi_path_is_404_with_tailscale_headers(emulator):
    r = emulator.localapi("/localapi/v0/no-such-thing")
    assert_go_error(r, 404, "404 page not found")
    assert r.header("Tailscale-Version") == "1.102.3-t53a0d659a-g4567ef89"
    r = emulator.localapi("/elsewhere")
    assert_go_error(r, 404, "404 page not found")
    assert r.header("Tailscale-Version") is None


def test_small_body_has_content_length_large_body_is_chunked(emulator):
    key = emulator.localapi(CERT + "?type=key")
    assert key.header("Content-Length") == str(len(key.body)) and not key.chunked
    chain = emulator.localapi(CERT)
    assert len(chain.body) > 2048
    assert chain.chunked and chain.header("Content-Length") is None
    assert chain.header("Transfer-Encoding") == "chunked"
    # Go's 2048-byte buffer: the single large write goes out as one chunk.
    assert chain.chunks == [len(chain.body)]


def test_http10_large_body_is_close_delimited_not_chunked(emulator):
    r = emulator.localapi(CERT + "?type=pair", http10=True, host=None, check_closed=True)
    assert r.status == 200 and r.version == "HTTP/1.0"
    assert not r.chunked and r.header("Content-Length") is None and r.closed
    assert r.body.startswith(b"-----BEGIN EC PRIVATE KEY-----\n")


def test_absolute_form_request_uses_the_url_host(emulator):
    # net/http takes Host from an absolute request-target before the header.
    ok = emulator.localapi("http://local-tailscaled.sock/localapi/v0/status?peers=false",
                           host="localhost")
    assert ok.status == 200
    bad = emulator.localapi("http://localhost/localapi/v0/status", host=LOCAL_HOST)
    assert_go_error(bad, 403, "invalid localapi request")



def test_malformed_request_line_is_plain_400(emulator):
    r = emulator.localapi("", raw=b"GARBAGE\r\n\r\n")
    assert r.raw == (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     b"Connection: close\r\n\r\n400 Bad Request")


# ---------------------------------------------------------------- Host / Origin / Referer

@pytest.mark.parametrize("host", ["localhost", "localhost:80", "127.0.0.1:9110", "[::1]:9111",
                                  "100.100.100.100:41112", "LOCAL-TAILSCALED.SOCK",
                                  "local-tailscaled.sock:80", "localhost:9109"])
def test_host_localhost_is_refused_with_invalid_localapi_request(readonly_emulator, host):
    r = readonly_emulator.localapi(CERT + "?type=crt", host=host)
    assert_go_error(r, 403, "invalid localapi request")
    assert r.header("Tailscale-Version") is None and r.header("Tailscale-Cap") is None
    assert readonly_emulator.counters()["invalid_host"] == 1
    assert readonly_emulator.certs() == {}, "a refused request must not reach the handler"


def test_the_dead_mod_md_request_is_refused(emulator):
    # What mod_md's tailscale driver sent (libcurl, URL http://localhost/...).
    for typ in ("crt", "key"):
        r = emulator.localapi("/localapi/v0/cert/%s?type=%s" % (WEB1, typ),
                              headers=[("Host", "localhost"), ("Accept", "*/*")])
        assert_go_error(r, 403, "invalid localapi request")


def test_origin_header_is_refused(emulator):
    r = whois(emulator, "100.64.0.2", headers=[("Origin", "http://evil.example")])
    assert_go_error(r, 403, "invalid localapi request")


def test_referer_header_is_refused(emulator):
    r = whois(emulator, "100.64.0.2", headers=[("Referer", "http://evil.example/")])
    assert_go_error(r, 403, "invalid localapi request")


def test_legacy_mode_accepts_any_host(make_emulator):
    emu = make_emulator(mode="legacy")
    r = emu.localapi(CERT + "?type=crt", host="localhost")
    assert r.status == 200 and b"BEGIN CERTIFICATE" in r.body


def test_bad_reason_header_is_400_before_the_host_check(emulator):
    r = whois(emulator, "100.64.0.2", host="localhost",
              headers=[("X-Tailscale-Reason", "not base64!")])
    assert_go_error(r, 400, "invalid reason header")
    r = whois(emulator, "100.64.0.2", headers=[("X-Tailscale-Reason", "dGVzdGluZw==")])
    assert r.status == 200


def test_success_carries_tailscale_and_security_headers(emulator):
    r = whois(emulator, "100.64.0.2")
    assert r.header("Tailscale-Version") == "1.102.3-t53a0d659a-g4567ef89"
    assert r.header("Tailscale-Cap") == "145"
    assert r.header("Content-Security-Policy") == (
        "default-src 'none'; frame-ancestors 'none'; script-src 'none'; "
        "script-src-elem 'none'; script-src-attr 'none'")
    assert r.header("X-Frame-Options") == "DENY"
    assert r.header("X-Content-Type-Options") == "nosniff"
    assert r.header("Content-Type") == "application/json"


def test_request_log_records_exact_host_and_origin(emulator):
    emulator.reset_counters()
    whois(emulator, "100.64.0.2", host="localhost:80", headers=[("Origin", "null")])
    (rec,) = emulator.requests(last=1)
    assert rec["host"] == "localhost:80"
    assert ["Host", "localhost:80"] in rec["headers"] and ["Origin", "null"] in rec["headers"]
    assert rec["status"] == 403 and rec["uid"] == os.geteuid() and rec["endpoint"] == "whois"


# ---------------------------------------------------------------- permissions

@needs_root
def test_www_data_uid_cannot_fetch_cert(emulator):
    r = emulator.localapi(CERT + "?type=pair", uid=WWW_DATA)
    assert_go_error(r, 403, "cert access denied")
    assert emulator.localapi(CERT + "?type=pair", uid=0).status == 200
    assert emulator.requests()[0]["uid"] == WWW_DATA


@needs_root
@pytest.mark.parametrize("who", ["www-data", WWW_DATA])
def test_permit_cert_uid_allows_cert(emulator, who):
    emulator.patch_tailnet({"permissions": {"permit_cert_uid": who}})
    r = emulator.localapi(CERT + "?type=pair", uid=WWW_DATA)
    assert r.status == 200 and r.body.startswith(b"-----BEGIN EC PRIVATE KEY-----")
    # Cert permission is not write permission.
    r = emulator.localapi("/localapi/v0/prefs", method="PATCH", uid=WWW_DATA, body="{}")
    assert_go_error(r, 403, "prefs write access denied")


@needs_root
def test_ts_permit_cert_uid_environment_is_honoured(make_emulator):
    emu = make_emulator(env={"TS_PERMIT_CERT_UID": "www-data"})
    assert emu.localapi(CERT + "?type=key", uid=WWW_DATA).status == 200
    assert_go_error(emu.localapi(CERT + "?type=key", uid="nobody"), 403, "cert access denied")


@needs_root
def test_everyone_may_read_whois_and_status(emulator):
    assert whois(emulator, "100.64.0.2", uid=WWW_DATA).status == 200
    assert emulator.localapi("/localapi/v0/status", uid=WWW_DATA).status == 200
    assert emulator.localapi("/localapi/v0/cert-domains", uid="nobody").status == 200


@needs_root
def test_operator_uid_has_write_and_thus_cert(emulator):
    emulator.patch_tailnet({"permissions": {"operator_uid": "www-data"}})
    assert emulator.localapi(CERT + "?type=key", uid=WWW_DATA).status == 200
    r = emulator.localapi("/localapi/v0/prefs", method="PATCH", uid=WWW_DATA,
                          body='{"ShieldsUpSet": true, "ShieldsUp": true}')
    assert r.status == 200 and r.json()["ShieldsUp"] is True


@needs_root
def test_prefs_operator_user_grants_write(emulator):
    assert_go_error(emulator.localapi(CERT, uid=WWW_DATA), 403, "cert access denied")
    r = emulator.localapi("/localapi/v0/prefs", method="PATCH",
                          body='{"OperatorUserSet": true, "OperatorUser": "www-data"}')
    assert r.status == 200 and r.json()["OperatorUser"] == "www-data"
    assert emulator.localapi(CERT, uid=WWW_DATA).status == 200


@needs_root
def test_write_endpoints_deny_unprivileged_callers(emulator):
    r = emulator.localapi("/localapi/v0/set-dns?name=x&value=y", method="POST", uid=WWW_DATA)
    assert_go_error(r, 403, "access denied")
    assert_go_error(emulator.localapi("/localapi/v0/logout", method="POST", uid=WWW_DATA),
                    403, "logout access denied")


# ---------------------------------------------------------------- whois

def test_whois_success_shape(emulator):
    j = whois(emulator, "100.101.102.103:443").json()
    assert list(j) == ["Node", "UserProfile", "CapMap"]
    n = j["Node"]
    assert list(n)[:4] == ["ID", "StableID", "Name", "User"]
    assert n["ID"] == 5207519264561923 and n["StableID"] == "nQ7rW2kCNTRL"
    assert n["Name"] == "laptop.tail1234.ts.net."
    assert n["Key"].startswith("nodekey:") and len(n["Key"]) == 8 + 64
    assert n["Machine"].startswith("mkey:") and n["DiscoKey"].startswith("discokey:")
    assert n["Addresses"] == ["100.101.102.103/32", "fd7a:115c:a1e0::e901:6667/128"]
    assert n["AllowedIPs"] == n["Addresses"]
    assert n["Hostinfo"]["Hostname"] == "laptop" and n["Hostinfo"]["OS"] == "macOS"
    assert n["Created"] == "2025-03-04T05:06:07.123456789Z"
    assert n["ComputedName"] == "laptop" and n["ComputedNameWithHost"] == "laptop"
    assert "Tags" not in n and "Sharer" not in n
    assert j["UserProfile"] == {"ID": 6218839120349811, "LoginName": "alice@example.com",
                                "DisplayName": "Alice Example",
                                "ProfilePicURL": "https://example.com/alice.png",
                                "Groups": ["eng@example.com", "group:eng"]}
    assert j["CapMap"] == {"example.com/cap/web": [{"role": "admin"}]}


def test_whois_json_is_tab_indented_without_trailing_newline(emulator):
    r = whois(emulator, "100.101.102.103")
    assert r.body == json.dumps(r.json(), indent="\t", ensure_ascii=False).encode()
    assert not r.body.endswith(b"\n")
    assert b'\n\t"Node": {\n\t\t"ID": 5207519264561923,' in r.body


def test_whois_non_ascii_is_raw_utf8(emulator):
    r = whois(emulator, "100.64.0.3")
    assert '"DisplayName": "Jürgen Müller"'.encode() in r.body
    assert r.json()["Node"]["ComputedNameWithHost"] == "juergen-pc (juergens-pc)"


def test_whois_accepts_any_method_and_urlencoded_post_body(emulator):
    r = emulator.localapi("/localapi/v0/whois", method="POST", body="addr=100.64.0.2",
                          headers=[("Content-Type", "application/x-www-form-urlencoded")])
    assert r.json()["UserProfile"]["LoginName"] == "bob@example.com"
    # FormValue: the body wins over the query string.
    r = emulator.localapi("/localapi/v0/whois?addr=100.64.0.3", method="PUT",
                          body="addr=100.101.102.103",
                          headers=[("Content-Type", "application/x-www-form-urlencoded")])
    assert r.json()["Node"]["ComputedName"] == "laptop"
    assert whois(emulator, "100.64.0.2", method="DELETE").status == 200


@pytest.mark.parametrize("query,status,text", [
    ("", 400, "missing 'addr' parameter"),
    ("?addr=", 400, "missing 'addr' parameter"),
    ("?addr=foo", 400, "invalid 'addr' parameter"),
    ("?addr=100.64.0.2:", 400, "invalid 'addr' parameter"),
    ("?addr=100.64.0.2:65536", 400, "invalid 'addr' parameter"),
    ("?addr=100.064.0.2", 400, "invalid 'addr' parameter"),
    ("?addr=%5B100.64.0.2%5D:80", 400, "invalid 'addr' parameter"),
    ("?addr=nodekey:1234", 400, "invalid nodekey in 'addr' parameter"),
    ("?addr=nodekey:" + "g" * 64, 400, "invalid nodekey in 'addr' parameter"),
    ("?addr=nodekey:" + "0" * 64, 404, "no match for IP:port"),
    ("?addr=100.64.0.99", 404, "no match for IP:port"),
    ("?addr=127.0.0.1:54321", 404, "no match for IP:port"),
    ("?addr=fd7a:115c:a1e0::99", 404, "no match for IP:port"),
])
def test_whois_errors_have_exact_status_and_text(readonly_emulator, query, status, text):
    assert_go_error(readonly_emulator.localapi("/localapi/v0/whois" + query), status, text)


def test_whois_leading_zero_ipv4_is_rejected(emulator):
    assert_go_error(whois(emulator, "100.64.0.02:80"), 400, "invalid 'addr' parameter")


def test_whois_unbracketed_ipv6_with_port_is_bare_ip(emulator):
    # "fd7a:115c:a1e0::2:80" is a valid IPv6 address - not phone's with port 80.
    assert_go_error(whois(emulator, "fd7a:115c:a1e0::2:80"), 404, "no match for IP:port")
    assert whois(emulator, "[fd7a:115c:a1e0::2]:80").json()["Node"]["ComputedName"] == "phone"
    assert whois(emulator, "fd7a:115c:a1e0::2").json()["Node"]["ComputedName"] == "phone"


def test_whois_mapped_ipv4(emulator):
    for addr in ("::ffff:100.64.0.2", "[::ffff:100.64.0.2]:443", "::ffff:6440:2"):
        assert whois(emulator, addr).json()["Node"]["ComputedName"] == "phone", addr


def test_whois_percent_encoded_addr(emulator):
    r = emulator.localapi("/localapi/v0/whois?addr=%5Bfd7a%3A115c%3Aa1e0%3A%3A2%5D%3A443")
    assert r.json()["Node"]["ComputedName"] == "phone"


def test_whois_tailnet_ip_matches_whatever_the_port(emulator):
    for addr in ("100.64.0.2:1", "100.64.0.2:65535", "100.64.0.2:0", "100.64.0.2"):
        assert whois(emulator, addr).json()["UserProfile"]["ID"] == 7493026315082254


def test_whois_of_self_matches(emulator):
    j = whois(emulator, "100.100.0.1:443").json()
    assert j["Node"]["Name"] == "web1.tail1234.ts.net." and j["UserProfile"]["LoginName"] == "alice@example.com"


def test_whois_by_nodekey(emulator):
    key = whois(emulator, "100.64.0.2").json()["Node"]["Key"]
    assert whois(emulator, key).json()["Node"]["ComputedName"] == "phone"
    assert whois(emulator, key.upper().replace("NODEKEY", "nodekey")).status == 200


def test_capmap_null_for_peer_without_caps(emulator):
    r = whois(emulator, "100.64.0.3")
    assert r.body.endswith(b'\n\t},\n\t"CapMap": null\n}')
    assert r.json()["CapMap"] is None


def test_capability_without_values_is_null_and_keys_sorted(emulator):
    r = whois(emulator, "100.64.0.2")
    cm = r.json()["CapMap"]
    assert list(cm) == ["example.com/cap/empty", "example.com/cap/web"]
    assert cm["example.com/cap/empty"] is None
    assert b'"example.com/cap/empty": null,' in r.body


def test_tagged_node_has_tagged_devices_profile(emulator):
    j = whois(emulator, "100.88.1.2:8443").json()
    assert j["Node"]["Tags"] == ["tag:ci", "tag:build"]
    assert j["UserProfile"] == {"ID": 3817266590173952, "LoginName": "tagged-devices",
                                "DisplayName": "Tagged Devices"}
    assert j["Node"]["User"] == 3817266590173952
    assert "KeyExpiry" not in j["Node"]
    assert j["CapMap"] == {"example.com/cap/web": [{"role": "deploy"}]}
    edge = whois(emulator, "fd7a:115c:a1e0::a").json()
    assert edge["UserProfile"]["LoginName"] == "tagged-devices" and edge["CapMap"] is None


def test_shared_in_node_has_sharer_and_outsider_login(emulator):
    j = whois(emulator, "100.64.0.9").json()
    n = j["Node"]
    assert n["Name"] == "friend-laptop.tail9999.ts.net."
    assert n["Sharer"] == 6218839120349811
    assert n["ComputedName"] == "friend-laptop.tail9999.ts.net"
    assert j["UserProfile"]["LoginName"] == "friend@gmail.com"
    assert list(n).index("Sharer") == list(n).index("User") + 1


def test_proxymap_maps_loopback_port_to_node_and_honours_proto(emulator):
    assert whois(emulator, "127.0.0.1:40001").status == 404
    emulator.proxymap("127.0.0.1:40001", "laptop")
    assert whois(emulator, "127.0.0.1:40001").json()["Node"]["ComputedName"] == "laptop"
    p = "/localapi/v0/whois?addr=127.0.0.1%3A40001&proto="
    assert emulator.localapi(p + "tcp").status == 200
    assert_go_error(emulator.localapi(p + "udp"), 404, "no match for IP:port")
    assert whois(emulator, "127.0.0.1").status == 404, "a bare IP has port 0"
    emulator.clear_proxymap()
    assert whois(emulator, "127.0.0.1:40001").status == 404


def test_whois_svc_name_and_dst_ip_are_validated(emulator):
    base = "/localapi/v0/whois?addr=100.64.0.2"
    assert_go_error(emulator.localapi(base + "&svc_name=web"), 400, "invalid svc_name")
    assert_go_error(emulator.localapi(base + "&dst_ip=nope"), 400, "invalid dst_ip")
    assert emulator.localapi(base + "&svc_name=svc:web&dst_ip=100.100.0.1").status == 200


def test_groups_only_those_the_see_groups_attribute_allows(emulator):
    # alice is in group:eng, eng@example.com and group:payroll; this node's
    # see-groups attribute lists the first two (and group:ops), sorted.
    prof = whois(emulator, "100.101.102.103").json()["UserProfile"]
    assert prof["Groups"] == ["eng@example.com", "group:eng"]
    assert whois(emulator, "100.64.0.2").json()["UserProfile"]["Groups"] == ["group:ops"]
    assert "Groups" not in whois(emulator, "100.88.1.2").json()["UserProfile"]
    st = emulator.localapi("/localapi/v0/status").json()
    assert st["Self"]["CapMap"]["tailscale.com/see-groups"] == [
        {"groups": ["group:eng", "group:ops", "eng@example.com"]}]
    assert st["User"]["6218839120349811"]["Groups"] == ["eng@example.com", "group:eng"]


def test_no_groups_without_the_see_groups_attribute(emulator):
    emulator.patch_node("web1", node_cap_map=None)
    r = whois(emulator, "100.101.102.103")
    assert "Groups" not in r.json()["UserProfile"]
    assert b'"Groups"' not in r.body
    assert "CapMap" not in emulator.localapi("/localapi/v0/status").json()["Self"]


def test_whois_capmap_is_scoped_to_the_destination(emulator):
    def caps(q):
        return emulator.localapi("/localapi/v0/whois?addr=100.64.0.2" + q).json()["CapMap"]
    host = {"example.com/cap/empty": None, "example.com/cap/web": [{"role": "viewer"}]}
    svc = {"example.com/cap/web": [{"role": "admin"}]}
    assert caps("") == host
    assert caps("&dst_ip=100.100.0.1") == caps("&dst_ip=fd7a:115c:a1e0::1") == host
    assert caps("&dst_ip=100.100.100.50") == caps("&dst_ip=fd7a:115c:a1e0::50") == svc
    assert caps("&svc_name=svc:web") == svc
    assert caps("&dst_ip=100.100.0.99") is None          # not a destination of ours
    assert caps("&svc_name=svc:other") is None           # not a hosted service
    assert caps("&svc_name=svc:other&dst_ip=100.100.100.50") is None   # svc_name wins
    st = emulator.localapi("/localapi/v0/status").json()
    assert st["Self"]["CapMap"]["service-host"] == [
        {"svc:web": ["100.100.100.50", "fd7a:115c:a1e0::50"]}]


# ---------------------------------------------------------------- status & friends

def test_status_is_tab_indented_with_trailing_newline(emulator):
    r = emulator.localapi("/localapi/v0/status")
    st = r.json()
    assert r.body == (json.dumps(st, indent="\t", ensure_ascii=False) + "\n").encode()
    assert list(st)[:3] == ["Version", "TUN", "BackendState"]
    assert st["BackendState"] == "Running" and st["CertDomains"] == [WEB1]
    assert st["Self"]["DNSName"] == "web1.tail1234.ts.net." and st["MagicDNSSuffix"] == "tail1234.ts.net"
    assert st["CurrentTailnet"] == {"Name": "example.com", "MagicDNSSuffix": "tail1234.ts.net",
                                    "MagicDNSEnabled": True}
    assert all(k.startswith("nodekey:") for k in st["Peer"]) and len(st["Peer"]) == 6
    assert list(st["Peer"]) == sorted(st["Peer"])
    assert "3817266590173952" in st["User"]


def test_status_peers_false_omits_peers_keeps_self_user(emulator):
    st = emulator.localapi("/localapi/v0/status?peers=false").json()
    assert st["Peer"] is None
    assert list(st["User"]) == ["6218839120349811"]


def test_needs_login_has_no_netmap(emulator):
    emulator.set_backend("NeedsLogin")
    st = emulator.localapi("/localapi/v0/status").json()
    assert st["BackendState"] == "NeedsLogin" and st["CertDomains"] is None
    assert st["CurrentTailnet"] is None
    assert emulator.localapi("/localapi/v0/cert-domains").body == b"null\n"
    assert_go_error(emulator.localapi(CERT), 500, "no netmap available")
    assert_go_error(whois(emulator, "100.64.0.2"), 404, "no match for IP:port")
    emulator.set_backend("Running")
    assert emulator.localapi(CERT).status == 200


def test_cert_domains_endpoint(emulator):
    r = emulator.localapi("/localapi/v0/cert-domains")
    assert r.body == b'["web1.tail1234.ts.net"]\n' and r.header("Content-Type") == "application/json"
    emulator.patch_tailnet({"https": False})
    assert emulator.localapi("/localapi/v0/cert-domains").body == b"null\n"
    assert emulator.localapi("/localapi/v0/status").json()["CertDomains"] is None


def test_prefs_get_is_read_only_json(emulator):
    r = emulator.localapi("/localapi/v0/prefs")
    p = r.json()
    assert r.body.endswith(b"}\n") and p["WantRunning"] is True and p["OperatorUser"] == ""
    assert p["Config"]["PrivateNodeKey"] == "privkey:" + "0" * 64
    assert_go_error(emulator.localapi("/localapi/v0/prefs", method="DELETE"), 405, "unsupported method")


def test_user_profile_and_peer_by_id(emulator):
    r = emulator.localapi("/localapi/v0/user-profile?id=7493026315082254")
    assert r.json()["LoginName"] == "bob@example.com"
    assert_go_error(emulator.localapi("/localapi/v0/user-profile?id=x"), 400, "invalid 'id' parameter")
    assert_go_error(emulator.localapi("/localapi/v0/user-profile?id=1"), 404, "no user with that UserID")
    assert emulator.localapi("/localapi/v0/peer-by-id?id=733").json()["Name"] == "ci-runner.tail1234.ts.net."
    assert_go_error(emulator.localapi("/localapi/v0/peer-by-id?id=1"), 404, "no peer with that NodeID")


def _stream(sock_path, path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sock_path)
    s.sendall(("GET %s HTTP/1.1\r\nHost: local-tailscaled.sock\r\n\r\n" % path).encode())
    f = s.makefile("rb")
    head = []
    while True:
        ln = f.readline()
        if ln in (b"\r\n", b""):
            break
        head.append(ln.decode().strip())

    def next_chunk():
        size = int(f.readline().strip(), 16)
        data = f.read(size)
        f.readline()
        return data
    return s, head, next_chunk


def test_watch_ipn_bus_streams_initial_state_and_changes(emulator):
    s, head, next_chunk = _stream(emulator.socket_path, "/localapi/v0/watch-ipn-bus?mask=2")
    try:
        assert head[0] == "HTTP/1.1 200 OK" and "Transfer-Encoding: chunked" in head
        ini = json.loads(next_chunk())
        assert ini["Version"] == "1.102.3-t53a0d659a-g4567ef89" and ini["State"] == 6
        emulator.set_backend("Stopped")
        assert next_chunk() == b'{"State":4}\n'
    finally:
        s.close()
    bad = emulator.localapi("/localapi/v0/watch-ipn-bus?mask=x")
    assert_go_error(bad, 400, "bad mask")


# ---------------------------------------------------------------- cert

def test_cert_pair_is_key_then_chain_and_chunked(emulator):
    r = emulator.localapi(CERT + "?type=pair&min_validity=0s")
    assert r.status == 200 and r.header("Content-Type") == "text/plain"
    assert r.chunked and len(r.body) > 2048
    # Two handler writes (key, then chain) through Go's 2048-byte buffer.
    assert r.chunks[0] == 2048 and sum(r.chunks) == len(r.body)
    key, chain = split_pair(r.body)
    assert key.startswith(b"-----BEGIN EC PRIVATE KEY-----\n")
    assert key.endswith(b"-----END EC PRIVATE KEY-----\n")
    assert chain.startswith(b"-----BEGIN CERTIFICATE-----\n")
    assert b" PRIVATE KEY-----" not in chain
    assert chain.count(b"-----BEGIN CERTIFICATE-----") == 2
    assert key == emulator.localapi(CERT + "?type=key").body
    assert chain == emulator.localapi(CERT + "?type=cert").body


def test_cert_chain_verifies_against_emulator_ca(emulator):
    body = emulator.localapi(CERT + "?type=pair").body
    key_pem, chain_pem = split_pair(body)
    leaf, inter = x509.load_pem_x509_certificates(chain_pem) if hasattr(
        x509, "load_pem_x509_certificates") else [
        x509.load_pem_x509_certificate(b"-----BEGIN CERTIFICATE-----" + p)
        for p in chain_pem.split(b"-----BEGIN CERTIFICATE-----")[1:]]
    root = x509.load_pem_x509_certificate(Path(emulator.ca_pem_path).read_bytes())
    for child, parent in ((leaf, inter), (inter, root)):
        assert child.issuer == parent.subject
        parent.public_key().verify(child.signature, child.tbs_certificate_bytes,
                                   ec.ECDSA(child.signature_hash_algorithm))
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [WEB1]
    key = serialization.load_pem_private_key(key_pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert key.public_key().public_numbers() == leaf.public_key().public_numbers()
    not_before, not_after = pki.validity(leaf)
    assert not_after - not_before == __import__("datetime").timedelta(days=90)


def test_cert_type_variants(emulator):
    chain = emulator.localapi(CERT).body
    for t in ("cert", "crt", ""):
        assert emulator.localapi(CERT + "?type=" + t).body == chain
    r = emulator.localapi(CERT + "?type=der")
    assert_go_error(r, 400, 'invalid type; want "cert" (default), "key", or "pair"')


def test_bad_type_still_triggers_issuance_first(emulator):
    r = emulator.localapi(CERT + "?type=bogus")
    assert r.status == 400
    assert emulator.certs()[WEB1]["issue_count"] == 1


def test_cert_wrong_domain_lists_allowed_domains(emulator):
    r = emulator.localapi("/localapi/v0/cert/foo.example")
    assert_go_error(r, 500, 'invalid domain "foo.example"; must be one of ["web1.tail1234.ts.net"]')
    emulator.patch_tailnet({"cert_domains": ["web1.tail1234.ts.net", "web1.example.com"]})
    r = emulator.localapi("/localapi/v0/cert/app.web1.tail1234.ts.net")
    assert_go_error(r, 500, 'invalid domain "app.web1.tail1234.ts.net"; must be one of '
                            '["web1.tail1234.ts.net" "web1.example.com"]')


@pytest.mark.parametrize("domain", ["nodot", "a..b.ts.net", "web1.tail1234.ts.net:443",
                                    "a*b.tail1234.ts.net", "*.x", "**.web1.tail1234.ts.net",
                                    "web1.tail1234.ts.net%2Fx", "web1.tail1234.ts.net%5Cx", ""])
def test_cert_light_validation_is_invalid_domain(readonly_emulator, domain):
    assert_go_error(readonly_emulator.localapi("/localapi/v0/cert/" + domain), 500, "invalid domain")


def test_cert_trailing_dot_is_stripped(emulator):
    a = emulator.localapi(CERT + ".?type=pair")
    assert a.status == 200 and a.body == emulator.localapi(CERT + "?type=pair").body


def test_https_disabled_has_its_own_error(emulator):
    emulator.patch_tailnet({"https": False})
    assert_go_error(emulator.localapi(CERT), 500,
                    "your Tailscale account does not support getting TLS certs")


def test_wildcard_needs_the_node_attribute(emulator):
    r = emulator.localapi("/localapi/v0/cert/*." + WEB1)
    assert_go_error(r, 500, "wildcard certificates are not enabled for this node")


def test_wildcard_cert_when_enabled(make_emulator):
    emu = make_emulator(fast_certs(wildcard_certs=True))
    r = emu.localapi("/localapi/v0/cert/*.%s?type=cert" % WEB1)
    assert r.status == 200
    leaf = x509.load_pem_x509_certificate(r.body)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "*." + WEB1 in san.get_values_for_type(x509.DNSName)
    assert emu.certs()["*." + WEB1]["storage_key"] == "wildcard_." + WEB1
    assert os.path.exists(os.path.join(emu.state_dir, "certs", "wildcard_.%s.crt" % WEB1))
    r = emu.localapi("/localapi/v0/cert/*.other.tail1234.ts.net")
    assert_go_error(r, 500, 'invalid domain "*.other.tail1234.ts.net"; '
                            'wildcard certificates are not enabled for this domain')
    self_node = emu.localapi("/localapi/v0/whois?addr=100.100.0.1").json()["Node"]
    assert "dns-subdomain-resolve" in self_node["CapMap"]


@pytest.mark.parametrize("value,err", [
    ("x", 'time: invalid duration "x"'),
    ("1", 'time: missing unit in duration "1"'),
    ("5y", 'time: unknown unit "y" in duration "5y"'),
    ("1h30", 'time: missing unit in duration "1h30"'),
    ("%C2%B5", 'time: invalid duration "\\xc2\\xb5"'),
])
def test_bad_min_validity_is_400_with_go_error(readonly_emulator, value, err):
    r = readonly_emulator.localapi(CERT + "?type=pair&min_validity=" + value)
    assert_go_error(r, 400, "invalid validity parameter: " + err)
    assert readonly_emulator.certs() == {}


@needs_root
def test_permission_is_checked_before_min_validity(emulator):
    r = emulator.localapi(CERT + "?min_validity=bogus", uid=WWW_DATA)
    assert_go_error(r, 403, "cert access denied")


# Issuance delays are long where a test tells "blocked" from "answered at once",
# so a loaded machine cannot blur the two.
SLOW = 0.8
FAST = 0.5


def test_sample_tailnet_first_issuance_takes_its_issue_delay(make_emulator):
    emu = make_emulator()
    assert emu.localapi(CERT).elapsed >= 0.3


def test_first_issuance_blocks_then_cache_answers(make_emulator):
    emu = make_emulator(fast_certs(delay=SLOW))
    a = emu.localapi(CERT + "?type=pair")
    assert a.elapsed >= SLOW
    b = emu.localapi(CERT + "?type=pair")
    assert b.body == a.body and b.elapsed < FAST
    info = emu.certs()[WEB1]
    assert info["issue_count"] == 1 and info["not_after"] - info["not_before"] == 7776000


def test_concurrent_first_requests_issue_once(emulator):
    bodies = []

    def fetch():
        bodies.append(emulator.localapi(CERT + "?type=pair").body)
    ts = [threading.Thread(target=fetch) for _ in range(5)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(set(bodies)) == 1 and len(bodies) == 5
    assert emulator.certs()[WEB1]["issue_count"] == 1


def _serial(pem):
    return x509.load_pem_x509_certificate(pem).serial_number


def test_cert_renews_async_after_two_thirds_lifetime(make_emulator):
    emu = make_emulator(fast_certs(lifetime=3, delay=SLOW))
    a = emu.localapi(CERT)
    nb = emu.certs()[WEB1]["not_before"]
    time.sleep(max(0.0, nb + 2.05 - time.time()))   # renewal point: NotBefore + 2s
    results = []

    def fetch():
        results.append(emu.localapi(CERT))
    ts = [threading.Thread(target=fetch) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    # Everyone got the current cert at once; one renewal runs in the background.
    assert all(r.body == a.body and r.elapsed < FAST for r in results)
    time.sleep(SLOW + 0.3)
    b = emu.localapi(CERT)
    assert _serial(b.body) != _serial(a.body) and b.elapsed < FAST
    info = emu.certs()[WEB1]
    assert info["issue_count"] == 2 and not info["renewing"]


def test_min_validity_renews_synchronously(make_emulator):
    emu = make_emulator(fast_certs(delay=SLOW))
    a = emu.localapi(CERT + "?type=pair")
    same = emu.localapi(CERT + "?type=pair&min_validity=720h")   # 30 days < 90 days left
    assert same.body == a.body and same.elapsed < FAST
    b = emu.localapi(CERT + "?type=pair&min_validity=2400h")     # 100 days: unmet
    assert b.elapsed >= SLOW and b.body != a.body
    assert emu.localapi(CERT + "?type=pair&min_validity=0s").body == b.body
    assert emu.certs()[WEB1]["issue_count"] == 2


def test_nonzero_min_validity_past_renewal_point_renews_synchronously(make_emulator):
    # tailscaled only goes async when min_validity is 0; "1ns" is met here,
    # but the 2/3 point is passed, so the caller waits for the new cert.
    emu = make_emulator(fast_certs(lifetime=3, delay=SLOW))
    a = emu.localapi(CERT)
    nb = emu.certs()[WEB1]["not_before"]
    time.sleep(max(0.0, nb + 2.05 - time.time()))
    b = emu.localapi(CERT + "?min_validity=1ns")
    assert b.elapsed >= SLOW and _serial(b.body) != _serial(a.body)


def test_expired_cert_is_reissued_blocking(make_emulator):
    emu = make_emulator(fast_certs(lifetime=2, delay=0.3))
    a = emu.localapi(CERT)
    na = emu.certs()[WEB1]["not_after"]
    time.sleep(max(0.0, na + 0.15 - time.time()))
    b = emu.localapi(CERT)
    assert b.elapsed >= 0.3 and _serial(b.body) != _serial(a.body)
    assert emu.certs()[WEB1]["issue_count"] == 2


def test_cert_cache_survives_restart(make_emulator, tmp_path):
    state = tmp_path / "persist"
    emu = make_emulator(state=state)
    a = emu.localapi(CERT + "?type=pair").body
    assert oct(os.stat(state / "certs" / (WEB1 + ".key")).st_mode & 0o777) == "0o600"
    emu.stop()
    emu2 = make_emulator(state=state)
    b = emu2.localapi(CERT + "?type=pair")
    assert b.body == a
    assert emu2.certs()[WEB1]["issue_count"] == 0, "served from the on-disk cache"


def test_clear_certs_forces_new_issuance(emulator):
    a = emulator.localapi(CERT).body
    emulator.clear_certs()
    assert emulator.certs() == {}
    assert not os.listdir(os.path.join(emulator.state_dir, "certs"))
    b = emulator.localapi(CERT)
    assert b.body != a and emulator.certs()[WEB1]["issue_count"] == 1


def test_certs_control_reports_leaf_fingerprint(emulator):
    body = emulator.localapi(CERT).body
    leaf = x509.load_pem_x509_certificate(body)
    info = emulator.certs()[WEB1]
    assert info["sha256"] == leaf.fingerprint(hashes.SHA256()).hex()
    assert info["serial"] == "%x" % leaf.serial_number
    assert info["names"] == [WEB1]


def test_429_carries_retry_after(emulator):
    emulator.fault("http429", retry_after=120, endpoints=["cert"])
    r = emulator.localapi(CERT + "?type=pair")
    assert r.status == 429 and r.header("Retry-After") == "120"
    assert r.text.startswith('acme: error code 429 "urn:ietf:params:acme:error:rateLimited"')
    assert r.header("Content-Type") == ERROR_CT
    assert whois(emulator, "100.64.0.2").status == 200, "the filter spares whois"


def test_rate_limited_ca_still_serves_the_cached_cert(emulator):
    a = emulator.localapi(CERT).body
    emulator.fault("ca429", retry_after=60)
    assert emulator.localapi(CERT).body == a
    r = emulator.localapi(CERT + "?min_validity=2400h")      # forces issuance
    assert r.status == 429 and r.header("Retry-After") == "60"
    assert emulator.certs()[WEB1]["last_error"].startswith("acme: error code 429")
    assert emulator.localapi(CERT).body == a, "a failed renewal never replaces the cert"


# ---------------------------------------------------------------- faults

def test_fault_down_removes_socket(emulator):
    emulator.fault("down")
    assert not os.path.lexists(emulator.socket_path)
    with pytest.raises(FileNotFoundError):
        emulator.localapi("/localapi/v0/status")
    emulator.clear_fault()
    assert stat.S_IMODE(os.stat(emulator.socket_path).st_mode) == 0o666
    assert emulator.localapi("/localapi/v0/status").status == 200


def test_fault_refuse_leaves_a_dead_socket(emulator):
    emulator.fault("refuse")
    assert stat.S_ISSOCK(os.stat(emulator.socket_path).st_mode)
    with pytest.raises(ConnectionRefusedError):
        emulator.localapi("/localapi/v0/status")
    emulator.clear_fault()
    assert emulator.localapi("/localapi/v0/status").status == 200


def test_fault_down_drops_open_connections(emulator):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(3)
    s.connect(emulator.socket_path)
    time.sleep(0.1)
    emulator.fault("down")
    assert s.recv(1) == b""
    s.close()


def test_fault_slow_delays_the_answer(emulator):
    emulator.fault("slow", delay=0.3)
    r = whois(emulator, "100.64.0.2")
    assert r.status == 200 and r.elapsed >= 0.3


def test_fault_hang_never_answers(emulator):
    emulator.fault("hang")
    with pytest.raises(socket.timeout):
        whois(emulator, "100.64.0.2", timeout=0.4)


def test_fault_reset_closes_without_answer(emulator):
    emulator.fault("reset")
    with pytest.raises(EOFError):
        whois(emulator, "100.64.0.2")


def test_fault_garbage_is_200_with_a_broken_body(emulator):
    emulator.fault("garbage")
    r = whois(emulator, "100.64.0.2")
    assert r.status == 200 and r.header("Content-Type") == "application/json"
    with pytest.raises(ValueError):
        json.loads(r.body)
    c = emulator.localapi(CERT)
    assert c.status == 200 and b"-----END CERTIFICATE-----" not in c.body


def test_fault_oversized_body_is_many_mib(emulator):
    emulator.fault("oversized")
    r = whois(emulator, "100.64.0.2")
    assert r.status == 200 and r.chunked and len(r.body) >= 8 << 20


def test_fault_http500(emulator):
    emulator.fault("http500")
    assert_go_error(whois(emulator, "100.64.0.2"), 500, "internal error")


def test_fault_count_limits_it_to_the_next_requests(emulator):
    emulator.fault("http500", count=2)
    assert [whois(emulator, "100.64.0.2").status for _ in range(3)] == [500, 500, 200]
    assert emulator.fault_state()["mode"] == "none"


@pytest.mark.other_user
def test_faults_do_not_bypass_the_strict_checks(emulator):
    emulator.fault("http500")
    assert_go_error(whois(emulator, "100.64.0.2", host="localhost"), 403,
                    "invalid localapi request")
    assert_go_error(emulator.localapi("/localapi/v0/nope"), 404, "404 page not found")
    if os.geteuid() == 0:
        assert_go_error(emulator.localapi(CERT, uid=WWW_DATA), 403, "cert access denied")
    assert emulator.fault_state()["applied"] == 0


def test_unknown_fault_mode_is_rejected(emulator):
    with pytest.raises(EmulatorError):
        emulator.fault("explode")


# ---------------------------------------------------------------- control channel

def test_counters_by_endpoint_and_status(emulator):
    whois(emulator, "100.64.0.2")
    whois(emulator, "100.64.0.99")
    emulator.localapi(CERT + "?type=key")
    emulator.localapi("/localapi/v0/status", host="localhost")
    c = emulator.counters()
    assert c["total"] == 4 and c["invalid_host"] == 1
    assert c["by_endpoint"] == {"whois": 2, "cert": 1, "status": 1}
    assert c["by_status"] == {"200": 2, "404": 1, "403": 1}
    emulator.reset_counters()
    assert emulator.counters()["total"] == 0 and emulator.requests() == []


def test_set_tailnet_swaps_at_runtime(emulator):
    t = emulator.tailnet()
    del t["nodes"]["laptop"]
    emulator.set_tailnet(t)
    assert whois(emulator, "100.101.102.103").status == 404
    with pytest.raises(EmulatorError, match="needs a user or tags"):
        emulator.add_node("broken", addresses=["100.64.7.7"])
    assert whois(emulator, "100.64.0.2").status == 200, "a rejected tailnet changes nothing"
    emulator.add_node("newbie", user="bob@example.com", addresses=["100.64.7.7"])
    assert whois(emulator, "100.64.7.7").json()["Node"]["Name"] == "newbie.tail1234.ts.net."


def test_patch_node_changes_tags_and_caps(emulator):
    emulator.patch_node("ci-runner", tags=["tag:build"], cap_map=None)
    j = whois(emulator, "100.88.1.2").json()
    assert j["Node"]["Tags"] == ["tag:build"] and j["CapMap"] is None
    emulator.remove_node("edge")
    assert whois(emulator, "100.64.0.10").status == 404


def test_sigterm_removes_sockets_and_exits_cleanly(tmp_path):
    emu = Emulator()
    try:
        emu.start(tmp_path / "s")
        sock, ctl, proc = emu.socket_path, emu.control_path, emu.proc
        proc.terminate()
        assert proc.wait(5) == 0
        assert not os.path.lexists(sock) and not os.path.lexists(ctl)
    finally:
        emu.stop()


@needs_root
def test_staged_copy_runs_as_www_data_with_its_package(tmp_path):
    # -I from /: nothing but the staged copy is on sys.path (the checkout may
    # be unreadable for www-data), so the script must find tsemu/ next to it
    prog = staged_program()
    pw = pwd.getpwnam("www-data")
    run = Path(tempfile.mkdtemp(prefix="tsemu-w", dir="/tmp"))
    os.chown(run, pw.pw_uid, pw.pw_gid)
    with open(tmp_path / "emulator.log", "wb") as log:
        p = subprocess.Popen([PYTHON, "-I", str(prog), "--socket", str(run / "s.sock"),
                              "--control", str(run / "c.sock"), "--state-dir", str(run / "state")],
                             stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, cwd="/",
                             user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
    try:
        ready = select.select([p.stdout], [], [], 20)[0]
        assert ready and p.stdout.readline() == b"READY\n", (tmp_path / "emulator.log").read_text()
        r = localapi_request(run / "s.sock", "/localapi/v0/whois?addr=100.64.0.2")
        assert r.status == 200 and r.json()["UserProfile"]["LoginName"] == "bob@example.com"
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
        p.stdout.close()
        shutil.rmtree(run, ignore_errors=True)


def test_stale_socket_file_is_replaced_but_a_live_one_is_not(make_emulator, tmp_path):
    base = Path("/tmp") / ("tsemu-s%d" % os.getpid())
    base.mkdir(exist_ok=True)
    sock = base / "tailscaled.sock"
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(sock))
        s.close()                      # a stale socket file, nobody listening
        emu = make_emulator(socket_path=sock)
        assert emu.localapi("/localapi/v0/status").status == 200
        with pytest.raises(EmulatorError, match="in use"):
            Emulator().start(tmp_path / "second", socket_path=sock,
                             control_path=base / "ctl2.sock")
        assert emu.localapi("/localapi/v0/status").status == 200
    finally:
        import shutil
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- Go-compatible helpers

@pytest.mark.parametrize("s,ns", [("0", 0), ("0s", 0), ("720h", 720 * 3600 * 10 ** 9),
                                  ("1h30m", 5400 * 10 ** 9), ("-1.5s", -1500000000),
                                  ("1.5µs", 1500), ("300ms", 300 * 10 ** 6), (".5m", 30 * 10 ** 9)])
def test_go_duration_parser_accepts_what_go_accepts(s, ns):
    assert go_parse_duration(s) == ns


@pytest.mark.parametrize("s", ["", "+", "h", ".s", "1.h2", "9223372036854775808ns", "1hh"])
def test_go_duration_parser_rejects_what_go_rejects(s):
    with pytest.raises(ValueError):
        go_parse_duration(s)


def test_go_quote_of_string_list_is_space_separated():
    assert go_quote_list(["a.b", 'q"x']) == '["a.b" "q\\"x"]'
