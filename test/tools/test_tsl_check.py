"""tsl-check (tools/tsl-check.c) against the tailscaled emulator.

Uses the `emulator` fixture of test/conftest.py (the strict emulator with the
sample tailnet: self web1.tail1234.ts.net, laptop 100.101.102.103 owned by
alice@example.com, ci-runner 100.88.1.2 tagged). The `cache` tests ask a
real httpd (or a fake status server) instead; the one with identified requests
puts tailnet addresses on host interfaces: run this file under
flock /tmp/tsl-netns.lock."""

import os
import stat
import subprocess
from pathlib import Path

import pytest

from lib import staging

ROOT = Path(__file__).resolve().parents[2]
TSL_CHECK = Path(os.environ.get("TSL_CHECK", ROOT / "tools" / "tsl-check"))
WWW_DATA = 33

pytestmark = pytest.mark.skipif(not TSL_CHECK.exists(),
                                reason="tools/tsl-check is not built (run make)")


def run(emu_or_socket, *args, uid=None, timeout=60):
    sock = emu_or_socket if isinstance(emu_or_socket, str) else emu_or_socket.socket_path
    exe, kw = TSL_CHECK, {}
    if uid is not None:
        # a copy uid can run: the checkout may be unreadable for it (/root)
        exe = staging.stage(TSL_CHECK)
        kw = dict(user=uid, group=uid, extra_groups=[], cwd="/")
    cmd = [str(exe), "--socket", sock, *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    return p.returncode, p.stdout, p.stderr


def test_status(emulator):
    rc, out, err = run(emulator, "status")
    assert rc == 0, out + err
    assert "backend state:   Running" in out
    assert "self:            web1.tail1234.ts.net\n" in out
    assert "tailnet name:    example.com" in out
    assert 'cert domains:    ["web1.tail1234.ts.net"]' in out
    assert "version:         1.102.3" in out
    assert "services:        svc:web 100.100.100.50 fd7a:115c:a1e0::50\n" in out


def test_status_file_url_socket(emulator):
    rc, out, _ = run("file://localhost" + emulator.socket_path, "status")
    assert rc == 0 and "backend state:   Running" in out


def test_requests_use_localapi_host(emulator):
    emulator.reset_requests()
    assert run(emulator, "status")[0] == 0
    reqs = [r for r in emulator.requests() if r.get("endpoint") == "status"]
    assert reqs and reqs[-1]["host"] == "local-tailscaled.sock"
    assert reqs[-1]["target"] == "/localapi/v0/status?peers=false"


def test_whois_user(emulator):
    rc, out, err = run(emulator, "whois", "100.101.102.103:443")
    assert rc == 0, out + err
    assert "login:           alice@example.com" in out
    assert "node:            laptop.tail1234.ts.net" in out
    assert "tagged:          no" in out
    assert 'example.com/cap/web: [{"role":"admin"}]' in out


def test_whois_ipv6_bracketed(emulator):
    rc, out, _ = run(emulator, "whois", "[fd7a:115c:a1e0::e901:6667]:8443")
    assert rc == 0 and "login:           alice@example.com" in out


def test_whois_tagged(emulator):
    rc, out, _ = run(emulator, "whois", "100.88.1.2")
    assert rc == 0
    assert "login:           tagged-devices" in out
    assert "tagged:          tag:ci tag:build" in out
    assert "node:            ci-runner.tail1234.ts.net" in out


def test_whois_unknown(emulator):
    rc, out, _ = run(emulator, "whois", "100.99.1.1:443")
    assert rc == 1
    assert "TS03011" in out and 'tailscaled said "no match for IP:port"' in out


def test_whois_bad_address_is_usage_error(emulator):
    rc, _, err = run(emulator, "whois", "laptop:443")
    assert rc == 2 and "TS03010" in err


def test_cert_as_root(emulator, tmp_dir):
    key, chain = tmp_dir / "k.pem", tmp_dir / "c.pem"
    rc, out, err = run(emulator, "cert", "web1.tail1234.ts.net", "--out-key", str(key),
                       "--out-chain", str(chain))
    assert rc == 0, out + err
    assert "names:           web1.tail1234.ts.net" in out
    assert "fingerprint:     sha256 " in out
    assert "PRIVATE KEY" not in out
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "PRIVATE KEY-----" in key.read_text()
    assert chain.read_text().startswith("-----BEGIN CERTIFICATE-----")
    sha = emulator.certs()["web1.tail1234.ts.net"]["sha256"].replace(":", "").lower()
    assert sha in out


def test_cert_without_out_key_never_prints_key(emulator):
    rc, out, _ = run(emulator, "cert", "web1.tail1234.ts.net", "--min-validity", "3600")
    assert rc == 0 and "PRIVATE KEY" not in out and "not shown" in out
    assert any("min_validity=3600s" in r["target"] for r in emulator.requests())


def test_cert_wrong_domain(emulator):
    rc, out, _ = run(emulator, "cert", "other.tail1234.ts.net")
    assert rc == 1
    assert 'invalid domain "other.tail1234.ts.net"; must be one of ["web1.tail1234.ts.net"]' in out


@pytest.mark.other_user
def test_cert_denied_as_www_data_never_suggests_giving_it_access(emulator):
    rc, out, _ = run(emulator, "cert", "web1.tail1234.ts.net", uid=WWW_DATA)
    assert rc == 1
    assert "cert access denied" in out and "run it as root" in out
    assert "every CGI or PHP script could fetch the node's private key" in out
    assert "--operator" not in out and "TS_PERMIT_CERT_UID=" not in out, out


def test_check_as_root_issues_nothing(emulator):
    rc, out, err = run(emulator, "check")
    assert rc == 0, out + err
    assert "FAIL" not in out and out.rstrip().endswith("all checks passed")
    assert "ok   uid 0 (root) may fetch certificates" in out
    assert emulator.certs() == {}   # the permission probe does not issue


@pytest.mark.other_user
def test_check_as_www_data_calls_no_cert_access_healthy(emulator):
    # getting-started: mod_md_tailscale fetches as root; the children's user
    # without access is the healthy state, and giving it away is the risk
    rc, out, _ = run(emulator, "check", "web1.tail1234.ts.net", uid=WWW_DATA)
    assert rc == 0, out
    assert "ok   uid 33 (www-data) may not fetch certificates" in out and "as it should be" in out
    assert "FAIL" not in out and out.rstrip().endswith("all checks passed")
    assert "--operator" not in out and "TS_PERMIT_CERT_UID=" not in out, out


@pytest.mark.other_user
def test_check_permit_cert_uid(emulator):
    emulator.patch_tailnet({"permissions": {"permit_cert_uid": "www-data"}})
    rc, out, _ = run(emulator, "check", uid=WWW_DATA)
    assert rc == 0, out
    assert "ok   uid 33 (www-data) may fetch certificates" in out


def test_check_https_disabled(emulator):
    emulator.patch_tailnet({"https": False})
    rc, out, _ = run(emulator, "check")
    assert rc == 1
    assert "FAIL TS03005" in out and "HTTPS Certificates in the admin console" in out


def test_check_needs_login(emulator):
    emulator.set_backend("NeedsLogin")
    rc, out, _ = run(emulator, "check")
    assert rc == 1
    assert "FAIL TS03004: tailscale is not running: BackendState is NeedsLogin" in out
    assert "tailscale up" in out


def test_check_domain_not_allowed(emulator):
    rc, out, _ = run(emulator, "check", "app.web1.tail1234.ts.net")
    assert rc == 1
    assert "FAIL TS03006" in out and "*.web1.tail1234.ts.net" in out


def test_socket_missing(tmp_dir):
    missing = str(tmp_dir / "nope" / "tailscaled.sock")
    rc, out, _ = run(missing, "status")
    assert rc == 3 and "does not exist" in out and missing in out
    rc, out, _ = run(missing, "check")
    assert rc == 3 and "FAIL TS03001" in out and "start tailscaled" in out


def test_tailscaled_down(emulator):
    emulator.fault("refuse")
    rc, out, _ = run(emulator, "status")
    assert rc == 3, out


def test_timeout(emulator):
    emulator.fault("hang")
    rc, out, _ = run(emulator, "--timeout", "0.5", "status")
    assert rc == 3 and "did not answer" in out


def test_usage_errors(emulator):
    assert run(emulator, "frobnicate")[0] == 2
    assert run(emulator, "cert")[0] == 2
    rc, _, err = run("relative.sock", "status")
    assert rc == 2 and "file://localhost/" in err


def test_whois_labels_magicdns_suffix_not_tailnet(emulator):
    # status's "tailnet name" is CurrentTailnet.Name; whois knows only the suffix
    rc, out, _ = run(emulator, "whois", "100.101.102.103")
    assert rc == 0
    assert "MagicDNS suffix: tail1234.ts.net\n" in out
    assert "tailnet:" not in out


def run_bare(*args, timeout=60):
    """tsl-check with exactly these arguments (no --socket put first)."""
    p = subprocess.run([str(TSL_CHECK), *args], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def test_options_after_the_command(emulator):
    sock = emulator.socket_path
    rc, out, err = run_bare("status", "--socket", sock)
    assert rc == 0, out + err
    assert "socket:          %s\n" % sock in out
    rc, out, err = run_bare("whois", "100.101.102.103:443", "--socket=" + sock,
                            "--timeout", "5")
    assert rc == 0 and "login:           alice@example.com" in out, out + err
    rc, out, err = run_bare("check", "--socket", sock, "web1.tail1234.ts.net")
    assert rc == 0 and "all checks passed" in out, out + err


def test_cert_options_and_global_options_mixed(emulator, tmp_dir):
    key = tmp_dir / "k.pem"
    rc, out, err = run_bare("cert", "--out-key", str(key), "--socket", emulator.socket_path,
                            "web1.tail1234.ts.net", "--timeout", "60")
    assert rc == 0, out + err
    assert key.read_text().startswith("-----BEGIN")


def test_misplaced_or_unknown_option_is_named(emulator):
    rc, out, err = run(emulator, "status", "--verbose")
    assert rc == 2 and "TS03010" in err and "--verbose" in err, err
    assert "unknown command" not in err
    rc, _, err = run(emulator, "whois", "-x", "100.101.102.103")
    assert rc == 2 and "-x" in err
    rc, _, err = run(emulator, "status", "extra")
    assert rc == 2 and "status takes no arguments" in err and "extra" in err
    rc, _, err = run_bare("status", "--socket")
    assert rc == 2 and "--socket needs a value" in err


@pytest.fixture
def not_found_socket(tmp_dir):
    """A unix socket whose server answers every request 404, like a program
    that is not tailscaled (or one without the endpoint)."""
    import socket
    import threading
    path = str(tmp_dir / "other.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)
    stop = threading.Event()

    def serve():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                body = b"404 page not found\n"
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; "
                             b"charset=utf-8\r\nContent-Length: %d\r\nConnection: close"
                             b"\r\n\r\n%s" % (len(body), body))

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield path
    stop.set()
    t.join(5)
    srv.close()
    os.unlink(path)


def test_status_404_gets_a_status_hint_not_the_whois_hint(not_found_socket):
    rc, out, _ = run(not_found_socket, "status")
    assert rc == 1 and "FAIL TS03030" in out, out
    assert "not a node of this tailnet" not in out
    assert "hint:" in out and "socket is tailscaled's" in out and not_found_socket in out


def test_check_and_cert_404_get_their_own_hint(not_found_socket):
    rc, out, _ = run(not_found_socket, "check")
    assert rc != 0 and "FAIL TS03003" in out, out
    assert "not a node of this tailnet" not in out
    rc, out, _ = run(not_found_socket, "cert", "web1.tail1234.ts.net")
    assert rc == 1 and "FAIL TS03020" in out, out
    assert "not a node of this tailnet" not in out and "socket is tailscaled's" in out


def test_whois_404_from_another_program_is_an_error(not_found_socket):
    # Only tailscaled's own "no match for IP:port" says "not a node"; another
    # program's 404 says nothing about the address.
    rc, out, _ = run(not_found_socket, "whois", "100.101.102.103")
    assert "TS03011" not in out and "not a node of this tailnet" not in out, out
    assert rc != 0 and "TS03012" in out and "not another program's" in out, out



def test_a_path_that_is_not_a_socket_is_named_not_a_restart(tmp_dir):
    plain = tmp_dir / "plain-file"
    plain.write_text("not a socket\n")
    rc, out, _ = run(str(plain), "status")
    assert rc == 3, out
    assert f"{plain} is not a unix socket" in out and "restart" not in out, out


@pytest.mark.parametrize("command", ["check", "cert"])
@pytest.mark.parametrize("arg", ["https://web1.tail1234.ts.net/", "web1.tail1234.ts.net:443",
                                 "web1.tail1234.ts.net/app"])
def test_a_url_for_a_domain_is_a_usage_error(emulator, command, arg):
    rc, out, err = run(emulator, command, arg)
    assert rc == 2 and "TS03010" in err and "not a URL" in err and arg in err, out + err
    assert emulator.certs() == {}


def test_whois_on_a_node_that_is_not_running_says_so(emulator):
    emulator.set_backend("NeedsLogin")
    rc, out, _ = run(emulator, "whois", "100.101.102.103")
    assert rc == 1, out
    assert "FAIL TS03013: this node is not running (BackendState NeedsLogin)" in out, out
    assert "not a node of this tailnet" not in out and "tailscale up" in out


@pytest.mark.other_user
def test_socket_behind_a_0700_directory_names_the_user_and_the_mode(tmp_dir):
    import socket as socketlib
    private = tmp_dir / "private"
    private.mkdir()
    os.chmod(private, 0o700)
    path = private / "tailscaled.sock"
    srv = socketlib.socket(socketlib.AF_UNIX)
    try:
        srv.bind(str(path))
        srv.listen(1)
        os.chmod(path, 0o666)
        rc, out, _ = run(str(path), "status", uid=WWW_DATA)
    finally:
        srv.close()
    assert rc == 3, out
    assert f"www-data (uid 33) may not enter the directory {private} (mode 0700" in out, out
    assert "restart" not in out


# ------------------------------------------------------------------ cache
# `tsl-check cache [URL]` asks a running httpd for its server-status?auto page
# and prints mod_authnz_tailscale's cache figures. The identified-requests
# test puts tailnet addresses on host interfaces (tailnet_ns): run it under
# flock /tmp/tsl-netns.lock like test/authnz.

STATUS_LOCATION = """
<Location /server-status>
  SetHandler server-status
  Require local
</Location>
"""

IDENTIFIED_SITE = """
AuthTailscaleURL @SOCKET@
AuthTailscaleCacheTimeout 60
AuthTailscaleNegativeCacheTimeout 60
<Location /who>
  Require tailscale-user *
</Location>
"""


def cache_figures(text):
    """{label: value} of tsl-check cache's output lines."""
    out = {}
    for line in text.splitlines():
        label, sep, value = line.strip().partition(":")
        if sep:
            out[label] = value.strip()
    return out


def status_auto(httpd):
    from lib import rawhttp
    _, _, body = rawhttp.request("127.0.0.1", httpd.port, "/server-status?auto")
    return dict(l.split(": ", 1) for l in body.splitlines() if ": " in l)


def test_cache_prints_what_server_status_says_after_identified_requests(
        make_httpd, emulator, tailnet_ns):
    h = make_httpd(IDENTIFIED_SITE + STATUS_LOCATION, mpm="prefork", tailnet=True,
                   modules=["socache_shmcb", "status"], start=False)
    h.write_file("who", "hello\n")
    h.start()
    emulator.reset_counters()
    for client in ["laptop", "phone", "stranger", "laptop", "phone"]:
        code, _, err = tailnet_ns.curl(client, tailnet_ns.server_url(h.ts_port, "/who"))
        assert code == (403 if client == "stranger" else 200), err
    whois = [r for r in emulator.requests() if r.get("endpoint") == "whois"]
    assert whois, "the requests asked tailscaled"
    rc, out, err = run_bare("cache", f"http://127.0.0.1:{h.port}/server-status")
    assert rc == 0, out + err
    st = status_auto(h)
    fig = cache_figures(out)
    assert fig["server-status"] == f"http://127.0.0.1:{h.port}/server-status?auto"
    assert fig["shared cache"] == st["TailscaleSharedCache"] == "shmcb"
    for label, key in [("entries", "Entries"), ("hits", "Hits"), ("misses", "Misses"),
                       ("waits", "Waits"), ("unreadable", "Unreadable")]:
        assert fig[label] == st["TailscaleSharedCache" + key], (label, out, st)
    assert int(fig["entries"]) >= 3 and int(fig["misses"]) >= 3, out
    assert fig["whois calls"].split()[0] == st["TailscaleWhoisCalls"] != "0"
    assert "one process's figure" in fig["process cache"], out


def test_cache_without_mod_status_is_a_404_with_the_fix(make_httpd, emulator):
    h = make_httpd("AuthTailscaleURL @SOCKET@\n")
    rc, out, _ = run_bare("cache", h.url("/server-status"))
    assert rc == 1, out
    assert "FAIL TS03033" in out and "404" in out, out
    assert "enable mod_status" in out
    assert "<Location /server-status> SetHandler server-status Require local" in out


def test_cache_with_the_status_page_refused_says_allow_this_host(make_httpd, emulator):
    h = make_httpd("AuthTailscaleURL @SOCKET@\n<Location /server-status>\n"
                   "  SetHandler server-status\n  Require ip 192.0.2.1\n</Location>\n",
                   modules=["status"])
    rc, out, _ = run_bare("cache", h.url("/server-status"))
    assert rc == 1 and "FAIL TS03033" in out and "403" in out, out
    assert "Require local" in out


def test_cache_httpd_not_listening_is_unreachable():
    from lib.httpd import free_port
    url = f"http://127.0.0.1:{free_port()}/server-status"
    rc, out, _ = run_bare("cache", url)
    assert rc == 3, out
    assert "FAIL TS03031" in out and "unreachable" in out and "start httpd" in out, out


def test_cache_server_without_our_module_names_it(make_httpd):
    h = make_httpd(STATUS_LOCATION, modules=["status"], our=())
    rc, out, _ = run_bare("cache", h.url("/server-status"))
    assert rc == 1, out
    assert "FAIL TS03036" in out and "load mod_authnz_tailscale" in out, out


def test_cache_shared_cache_none_is_reported(make_httpd, emulator):
    h = make_httpd("AuthTailscaleURL @SOCKET@\nAuthTailscaleCache none\n" + STATUS_LOCATION,
                   modules=["status", "socache_shmcb"])
    rc, out, err = run_bare("cache", h.url("/server-status?auto"))
    assert rc == 0, out + err
    assert cache_figures(out)["shared cache"].startswith("none"), out
    assert status_auto(h)["TailscaleSharedCache"] == "none"


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/server-status", "file:///etc/passwd",
                                 "localhost/server-status", "127.0.0.1:80"])
def test_cache_url_that_is_not_http_is_a_usage_error(url):
    rc, out, err = run_bare("cache", url)
    assert rc == 2 and "TS03010" in err, out + err
    assert "cache takes the URL of httpd's server-status: not an http:// or https:// URL" in err
    assert "FAIL" not in out


def test_cache_is_in_the_usage():
    rc, out, _ = run_bare("--help")
    assert rc == 0 and "cache [URL]" in out and "server-status" in out


@pytest.fixture
def fake_status_server():
    """An HTTP server on 127.0.0.1 answering each path with what the test
    sets: fake_status_server.pages[path] = (status, headers, body)."""
    import http.server
    import threading

    pages = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status, headers, body = pages.get(self.path.split("?")[0],
                                              (404, {}, b"not here\n"))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    srv.pages = pages
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()
    t.join(5)


OUR_LINES = (b"localhost\nServerVersion: Apache/2.4\nBusyWorkers: 1\nScoreboard: _W_\n"
             b"TailscaleWhoisCalls: 5\nTailscaleCacheEntries: 2\n"
             b"TailscaleSharedCache: shmcb\nTailscaleSharedCacheEntries: 3\n"
             b"TailscaleSharedCacheHits: 4\nTailscaleSharedCacheMisses: 3\n"
             b"TailscaleSharedCacheWaits: 0\nTailscaleSharedCacheUnreadable: 0\n")


@pytest.mark.parametrize("body, why", [
    (b"<html><body>It works!</body></html>\n", "not a server-status?auto page"),
    (OUR_LINES.replace(b"Hits: 4", b"Hits: 4x"), "TailscaleSharedCacheHits is not a count"),
    (OUR_LINES.replace(b"Hits: 4", b"Hits: -4"), "TailscaleSharedCacheHits is not a count"),
    (OUR_LINES.replace(b"Hits: 4", b"Hits: 99999999999999999999999"), "is not a count"),
    (OUR_LINES.replace(b"TailscaleSharedCacheMisses: 3\n", b""), "without TailscaleSharedCacheMisses"),
    (OUR_LINES + b"TailscaleSharedCache: none\n", "TailscaleSharedCache appears twice"),
    (OUR_LINES + b"\0binary", "NUL bytes"),
], ids=["html", "letters", "negative", "overflow", "missing-line", "twice", "nul"])
def test_cache_garbage_page_is_refused(fake_status_server, body, why):
    fake_status_server.pages["/server-status"] = (200, {}, body)
    rc, out, _ = run_bare("cache", fake_status_server.base + "/server-status")
    assert rc == 1, out
    assert "FAIL TS03037" in out and why in out, out


def test_cache_fake_page_figures_are_read(fake_status_server):
    fake_status_server.pages["/server-status"] = (200, {}, OUR_LINES.replace(b"\n", b"\r\n"))
    rc, out, err = run_bare("cache", fake_status_server.base + "/server-status")
    assert rc == 0, out + err
    fig = cache_figures(out)
    assert (fig["shared cache"], fig["entries"], fig["hits"], fig["misses"]) == \
        ("shmcb", "3", "4", "3")
    assert fig["whois calls"].startswith("5 ") and fig["process cache"].startswith("2 entries (one process's figure")


def test_cache_control_characters_in_the_provider_are_not_printed(fake_status_server):
    fake_status_server.pages["/server-status"] = (
        200, {}, OUR_LINES.replace(b"Cache: shmcb", b"Cache: shm\x1b[31mcb\rFAKE"))
    rc, out, _ = run_bare("cache", fake_status_server.base + "/server-status")
    assert rc == 0 and "\x1b" not in out and "\r" not in out, repr(out)


def test_cache_page_over_one_mib_is_refused(fake_status_server):
    fake_status_server.pages["/server-status"] = (200, {}, OUR_LINES + b"x" * (1 << 20))
    rc, out, _ = run_bare("cache", fake_status_server.base + "/server-status")
    assert rc == 1 and "FAIL TS03035" in out and "too large" in out, out


def test_cache_follows_a_redirect_only_on_the_same_host(fake_status_server):
    base = fake_status_server.base
    fake_status_server.pages["/server-status"] = (200, {}, OUR_LINES)
    fake_status_server.pages["/old"] = (301, {"Location": base + "/server-status?auto"}, b"")
    rc, out, err = run_bare("cache", base + "/old")
    assert rc == 0, out + err
    assert cache_figures(out)["server-status"] == base + "/server-status?auto"
    other = base.replace("127.0.0.1", "localhost")
    fake_status_server.pages["/elsewhere"] = (302, {"Location": other + "/server-status"}, b"")
    rc, out, _ = run_bare("cache", base + "/elsewhere")
    assert rc == 1 and "FAIL TS03034" in out and "another host" in out, out


def test_cache_honours_the_timeout():
    import socket
    with socket.socket() as srv:       # accepts (backlog) and never answers
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        url = f"http://127.0.0.1:{srv.getsockname()[1]}/server-status"
        rc, out, _ = run_bare("--timeout", "0.5", "cache", url, timeout=20)
    assert rc == 3 and "FAIL TS03031" in out and "within 0.5 s" in out, out


def test_cache_https_certificate_is_verified(make_httpd, emulator):
    # the test PKI's CA is in no trust store: a verifying client must refuse it
    h = make_httpd("AuthTailscaleURL @SOCKET@\n" + STATUS_LOCATION +
                   "<VirtualHost 127.0.0.1:@TLS_PORT@>\n  SSLEngine on\n"
                   "  SSLCertificateFile @SERVER_CERT@\n  SSLCertificateKeyFile @SERVER_KEY@\n"
                   "</VirtualHost>\n", modules=["ssl", "status", "socache_shmcb"])
    rc, out, _ = run_bare("cache", h.url("/server-status", tls=True))
    assert rc == 1, out
    assert "FAIL TS03032" in out and "did not verify" in out, out
    assert "/server-status" not in h.access_log(), "no request went past the handshake"
