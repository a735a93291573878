"""Drive the tailscaled emulator (test/emulator/tailscaled_emu.py) from tests.

    emu = Emulator().start(state_dir)            # sample tailnet, strict mode
    r = emu.localapi("/localapi/v0/whois?addr=100.64.0.2")
    assert r.status == 200 and r.json()["UserProfile"]["LoginName"] == "bob@example.com"
    r = emu.localapi("/localapi/v0/cert/web1.tail1234.ts.net?type=pair", uid=33)
    assert (r.status, r.text) == (403, "cert access denied\\n")
    emu.fault("down"); ...; emu.clear_fault()
    emu.stop()

No pytest in here: test/conftest.py and test/emulator/conftest.py build
fixtures on top of it.  The raw LocalAPI client lives in this file too, because
a request "as another uid" re-runs this file in a child process that has
dropped to that uid (peer credentials are per connecting process).
"""

import base64
import json
import os
import pwd
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PYTHON = "/usr/bin/python3"
TEST_DIR = Path(__file__).resolve().parent.parent
PROGRAM = TEST_DIR / "emulator" / "tailscaled_emu.py"
PACKAGE = TEST_DIR / "emulator" / "tsemu"        # the code PROGRAM runs
DEFAULT_TAILNET = TEST_DIR / "emulator" / "tailnet.json"
LOCALAPI_HOST = "local-tailscaled.sock"
DEFAULT_HOST = object()   # marker: send "Host: local-tailscaled.sock"


class EmulatorError(RuntimeError):
    pass


# --------------------------------------------------------------------------
# Raw HTTP/1.x client over a unix socket: every byte on the wire is ours, so
# tests can send exactly the Host/Origin they mean and see the framing tailscaled
# (or the emulator) chose.
# --------------------------------------------------------------------------

class LocalAPIResponse:
    def __init__(self, d):
        self.status = d["status"]
        self.reason = d["reason"]
        self.version = d["version"]
        self.headers = [tuple(h) for h in d["headers"]]
        self.body = base64.b64decode(d["body"])
        self.raw = base64.b64decode(d["raw"])
        self.chunked = d["chunked"]
        self.chunks = d["chunks"]
        self.closed = d["closed"]
        self.elapsed = d["elapsed"]

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def text(self):
        return self.body.decode("utf-8")

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<LocalAPIResponse %s %s %r>" % (self.status, self.reason, self.body[:80])


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.raw = bytearray()
        self.eof = False

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            self.eof = True
            raise EOFError("connection closed by the server")
        self.buf += data

    def line(self):
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i != -1:
                break
            start = len(self.buf)
            self._fill()
        ln = bytes(self.buf[:i + 1])
        del self.buf[:i + 1]
        self.raw += ln
        return ln

    def read(self, n):
        while len(self.buf) < n:
            self._fill()
        d = bytes(self.buf[:n])
        del self.buf[:n]
        self.raw += d
        return d

    def read_to_eof(self):
        try:
            while True:
                self._fill()
        except EOFError:
            pass
        d = bytes(self.buf)
        self.buf.clear()
        self.raw += d
        return d


def build_request(spec):
    """Request bytes for a spec (see raw_exchange)."""
    if spec.get("raw") is not None:
        return base64.b64decode(spec["raw"])
    version = "HTTP/1.0" if spec.get("http10") else "HTTP/1.1"
    lines = ["%s %s %s" % (spec.get("method", "GET"), spec["path"], version)]
    headers = [list(h) for h in spec.get("headers") or []]
    names = [h[0].lower() for h in headers]
    host = spec.get("host", LOCALAPI_HOST)
    if "host" not in names and host is not None:
        lines.append("Host: " + host)
    body = base64.b64decode(spec["body"]) if spec.get("body") is not None else b""
    for k, v in headers:
        if v is not None:
            lines.append("%s: %s" % (k, v))
    if "user-agent" not in names:
        lines.append("User-Agent: tsemu-test/1")
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def read_response(rd, method):
    start = len(rd.raw)
    while True:
        status_line = rd.line().decode("latin-1").rstrip("\r\n")
        version, _, rest = status_line.partition(" ")
        code_s, _, reason = rest.partition(" ")
        status = int(code_s)
        headers = []
        while True:
            ln = rd.line().decode("latin-1").rstrip("\r\n")
            if ln == "":
                break
            k, _, v = ln.partition(":")
            headers.append([k, v.strip()])
        if status != 100:
            break
    hmap = {k.lower(): v for k, v in headers}
    chunked, chunks, body = False, [], bytearray()
    if method == "HEAD" or 100 <= status < 200 or status in (204, 304):
        pass
    elif "chunked" in hmap.get("transfer-encoding", "").lower():
        chunked = True
        while True:
            size = int(rd.line().split(b";")[0].strip(), 16)
            if size == 0:
                while rd.line() not in (b"\r\n", b"\n"):
                    pass
                break
            chunks.append(size)
            body += rd.read(size)
            rd.read(2)
    elif "content-length" in hmap:
        body = rd.read(int(hmap["content-length"]))
    else:
        body = rd.read_to_eof()
    return {"status": status, "reason": reason, "version": version, "headers": headers,
            "body": bytes(body), "raw": bytes(rd.raw[start:]), "chunked": chunked, "chunks": chunks}


def raw_exchange(socket_path, specs, timeout=30.0, check_closed=False):
    """Send each request spec on ONE connection, in order, and read the
    responses.  A spec is a dict: path, method, http10, host (None = no Host
    header), headers ([[name, value], ...]), body (base64), raw (base64 bytes
    sent verbatim instead of a built request).  Returns a list of dicts
    (bodies base64) ready for LocalAPIResponse."""
    out = []
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(socket_path)
        rd = _Reader(s)
        for i, spec in enumerate(specs):
            t0 = time.monotonic()
            s.sendall(build_request(spec))
            r = read_response(rd, spec.get("method", "GET"))
            r["elapsed"] = time.monotonic() - t0
            r["closed"] = None
            if rd.eof:
                r["closed"] = True
            elif check_closed and i == len(specs) - 1:
                # A server that closes does so right after the response.
                s.settimeout(0.3)
                try:
                    r["closed"] = s.recv(1) == b""
                except socket.timeout:
                    r["closed"] = False
                except OSError:
                    r["closed"] = True
            r["body"] = base64.b64encode(r["body"]).decode()
            r["raw"] = base64.b64encode(r["raw"]).decode()
            out.append(r)
    finally:
        s.close()
    return out


def _child_main():
    """Entry point for requests made as another uid (see _exchange_as)."""
    job = json.loads(sys.stdin.read())
    try:
        res = {"ok": raw_exchange(job["socket"], job["specs"], job["timeout"], job["check_closed"])}
    except Exception as e:  # reported to the parent, which re-raises
        res = {"error": "%s: %s" % (type(e).__name__, e), "errno": getattr(e, "errno", None)}
    sys.stdout.write(json.dumps(res))


def _uid_gid(uid):
    if isinstance(uid, str):
        pw = pwd.getpwnam(uid)
        return pw.pw_uid, pw.pw_gid
    try:
        return uid, pwd.getpwuid(uid).pw_gid
    except KeyError:
        return uid, uid


def _exchange_as(uid, socket_path, specs, timeout, check_closed):
    uid, gid = _uid_gid(uid)
    if uid == os.geteuid():
        return raw_exchange(socket_path, specs, timeout, check_closed)
    if os.geteuid() != 0:
        raise EmulatorError("requests as uid %d need root" % uid)
    job = {"socket": str(socket_path), "specs": specs, "timeout": timeout,
           "check_closed": check_closed}
    from . import staging   # the checkout may be unreadable for uid (below /root)
    child = staging.stage(Path(__file__))
    p = subprocess.run([PYTHON, "-I", str(child), "--child"],
                       input=json.dumps(job), capture_output=True, text=True, cwd="/",
                       user=uid, group=gid, extra_groups=[], timeout=timeout + 10)
    if p.returncode != 0:
        raise EmulatorError("child as uid %d failed: %s" % (uid, p.stderr.strip()))
    res = json.loads(p.stdout)
    if "error" in res:
        err = res["error"]
        if res.get("errno"):
            raise OSError(res["errno"], err)
        raise EmulatorError(err)
    return res["ok"]


def request_spec(path, method="GET", headers=None, http10=False, body=None, host=DEFAULT_HOST,
                 raw=None):
    if isinstance(headers, dict):
        headers = list(headers.items())
    spec = {"path": path, "method": method, "http10": http10,
            "headers": [[k, v] for k, v in (headers or [])]}
    hdr_host = [v for k, v in (headers or []) if k.lower() == "host"]
    if host is not DEFAULT_HOST:
        spec["host"] = host
    elif hdr_host and hdr_host[0] is None:
        spec["host"] = None
    if body is not None:
        spec["body"] = base64.b64encode(body.encode() if isinstance(body, str) else body).decode()
    if raw is not None:
        spec["raw"] = base64.b64encode(raw.encode() if isinstance(raw, str) else raw).decode()
    return spec


def localapi_request(socket_path, path, headers=None, method="GET", uid=None, http10=False,
                     body=None, host=DEFAULT_HOST, raw=None, timeout=30.0, check_closed=False):
    """One raw LocalAPI request.  Host is "local-tailscaled.sock" unless given
    (host=... or a "Host" entry in headers; None leaves it out).  uid runs the
    connecting process as that uid (name or number; needs root)."""
    specs = [request_spec(path, method, headers, http10, body, host, raw)]
    if uid is None:
        res = raw_exchange(str(socket_path), specs, timeout, check_closed)
    else:
        res = _exchange_as(uid, str(socket_path), specs, timeout, check_closed)
    return LocalAPIResponse(res[0])


# --------------------------------------------------------------------------
# The emulator process and its control channel
# --------------------------------------------------------------------------

def staged_program():
    """A copy of PROGRAM that every uid can run (staging.py), with its package
    and the sample tailnet it defaults to: for an emulator run as another user."""
    from . import staging
    return staging.stage(PROGRAM, PACKAGE, DEFAULT_TAILNET)


class Emulator:
    def __init__(self, python=PYTHON, program=PROGRAM):
        self.python = python
        self.program = Path(program)
        self.proc = None
        self.state_dir = None
        self.socket_path = None
        self.control_path = None
        self.log_path = None
        self.mode = None
        self._rundir = None
        self._stdout = None
        self._ready = False

    # --- lifecycle ---

    def start(self, state_dir, tailnet=None, socket_path=None, control_path=None,
              mode="strict", env=None, timeout=20.0):
        """Start the emulator; returns self once both sockets listen.
        tailnet: None (the sample tailnet), a dict, or a path to a JSON file.
        Sockets default to a fresh 0755 directory under /tmp, short enough for
        sun_path and reachable by www-data children."""
        if self.proc is not None:
            raise EmulatorError("already started")
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if socket_path is None or control_path is None:
            self._rundir = Path(tempfile.mkdtemp(prefix="tsemu-", dir="/tmp"))
            os.chmod(self._rundir, 0o755)
        self.socket_path = str(socket_path or self._rundir / "tailscaled.sock")
        self.control_path = str(control_path or self._rundir / "control.sock")
        if tailnet is None:
            tailnet_file = DEFAULT_TAILNET
        elif isinstance(tailnet, dict):
            tailnet_file = self.state_dir / "tailnet.json"
            tailnet_file.write_text(json.dumps(tailnet, indent=2, ensure_ascii=False))
        else:
            tailnet_file = Path(tailnet)
        self.mode = mode
        self.log_path = self.state_dir / "emulator.log"
        cmd = [self.python, str(self.program), "--socket", self.socket_path,
               "--tailnet", str(tailnet_file), "--state-dir", str(self.state_dir),
               "--control", self.control_path, "--mode", mode]
        penv = dict(os.environ)
        penv.update(env or {})
        logf = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=logf,
                                         stdin=subprocess.DEVNULL, env=penv,
                                         start_new_session=True)
        finally:
            logf.close()
        self._stdout = self.proc.stdout
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            r, _, _ = select.select([self._stdout], [], [], 0.1)
            if r:
                line = self._stdout.readline()
                if line.strip() == b"READY":
                    self._ready = True
                    return self
                if line == b"":
                    break
            if self.proc.poll() is not None:
                break
        log = self.log()
        self.stop()
        raise EmulatorError("emulator did not become ready (%r):\n%s" % (line, log[-3000:]))

    def stop(self):
        """SIGTERM (the emulator removes its sockets), SIGKILL if it lingers;
        idempotent."""
        p, self.proc = self.proc, None
        try:
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        finally:
            # the pipe, sockets and run directory go even if it never exits
            if self._stdout is not None:
                self._stdout.close()
                self._stdout = None
            self._remove_files()

    def _remove_files(self):
        # Leftovers of a killed emulator; never touch sockets of one that did
        # not start (they may belong to another, live, process).
        if self._ready:
            for path in (self.socket_path, self.control_path):
                if path and os.path.lexists(path) and self._rundir is None:
                    try:
                        os.unlink(path)
                    except OSError:
                        pass
        self._ready = False
        if self._rundir is not None:
            shutil.rmtree(self._rundir, ignore_errors=True)
            self._rundir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def ca_pem_path(self):
        """The test root CA: verify chains served by the emulator with it.
        (The emulator writes it just after start; this waits for it.)"""
        path = self.state_dir / "ca.pem"
        deadline = time.monotonic() + 20
        while not path.exists() and self.running and time.monotonic() < deadline:
            time.sleep(0.02)
        return str(path)

    def log(self):
        try:
            return Path(self.log_path).read_text(errors="replace")
        except (OSError, TypeError):
            return ""

    # --- control channel ---

    def control(self, method, path, body=None, timeout=30.0):
        """One control request; returns the decoded JSON, raises EmulatorError
        on an error status."""
        data = json.dumps(body).encode() if body is not None else None
        spec = request_spec(path, method, [["Content-Type", "application/json"]] if data else None,
                            http10=True, body=data, host="control")
        r = LocalAPIResponse(raw_exchange(self.control_path, [spec], timeout)[0])
        obj = r.json() if r.body else None
        if r.status >= 400:
            raise EmulatorError("control %s %s: %s %s" % (method, path, r.status,
                                                          (obj or {}).get("error", r.text)))
        return obj

    def health(self):
        return self.control("GET", "/health")

    def counters(self):
        """{"total", "by_endpoint", "by_status", "invalid_host", "by_uid"}"""
        return self.control("GET", "/counters")

    def reset_counters(self):
        """Zero the counters and forget the request log."""
        self.control("POST", "/counters/reset")

    def requests(self, last=None):
        """Recent LocalAPI requests, oldest first: method, target, path, host,
        headers ([[name, value]] as sent), uid/gid/pid, endpoint, status, fault."""
        return self.control("GET", "/requests" + ("?last=%d" % last if last else ""))

    def reset_requests(self):
        self.control("POST", "/requests/reset")

    def tailnet(self):
        """The current tailnet description (a dict you may edit and set_tailnet)."""
        return self.control("GET", "/tailnet")

    def set_tailnet(self, tailnet):
        self.control("POST", "/tailnet", tailnet)

    def patch_tailnet(self, patch):
        """Deep-merge patch into the tailnet description."""
        self.control("PATCH", "/tailnet", patch)

    def node(self, name):
        return self.control("GET", "/node/" + name)

    def patch_node(self, name, **fields):
        """Change fields of a node description (README.md lists them); a None
        value removes the field (cap_map/online/key_expiry: sets null)."""
        self.control("PATCH", "/node/" + name, fields)

    def add_node(self, name, **fields):
        self.control("POST", "/node", dict(fields, name=name))

    def remove_node(self, name):
        self.control("DELETE", "/node/" + name)

    def fault(self, mode, **kw):
        """Inject a fault: none, down, refuse, slow, reset, garbage, oversized,
        http500, http429, hang, ca429, ca500, cabadchain.  Options: delay,
        retry_after, endpoints=[...], count, text, body, size, status, chain."""
        return self.control("POST", "/fault", dict(kw, mode=mode))

    def clear_fault(self):
        return self.fault("none")

    def fault_state(self):
        return self.control("GET", "/fault")

    def proxymap(self, addr, node=None, proto="tcp", ip=None):
        """Map a userspace-networking ip:port (e.g. 127.0.0.1:40001) to a node."""
        body = {"addr": addr, "proto": proto}
        if node is not None:
            body["node"] = node
        if ip is not None:
            body["ip"] = ip
        return self.control("POST", "/proxymap", body)

    def clear_proxymap(self, addr=None, proto=None):
        self.control("DELETE", "/proxymap", {"addr": addr, "proto": proto} if addr else None)

    def certs(self):
        """Per domain: serial, not_before, not_after, sha256, issue_count,
        renew_at, renewing, last_error."""
        return self.control("GET", "/certs")

    def clear_certs(self):
        self.control("POST", "/certs/clear")

    def set_backend(self, state, netmap=None):
        """BackendState (Running, NeedsLogin, ...).  netmap defaults to what
        that state implies (none for NoState/NeedsLogin)."""
        self.control("POST", "/backend", {"state": state, "netmap": netmap})

    def backend(self):
        return self.control("GET", "/backend")

    def dns_records(self):
        """TXT records published through LocalAPI set-dns."""
        return self.control("GET", "/dns")

    # --- the LocalAPI itself ---

    def localapi(self, path, headers=None, method="GET", uid=None, http10=False, body=None,
                 host=DEFAULT_HOST, raw=None, timeout=30.0, check_closed=False):
        """A raw request to the LocalAPI socket; see localapi_request."""
        return localapi_request(self.socket_path, path, headers=headers, method=method, uid=uid,
                                http10=http10, body=body, host=host, raw=raw, timeout=timeout,
                                check_closed=check_closed)

    def localapi_many(self, requests, uid=None, timeout=30.0, check_closed=False):
        """Several requests on one connection (keep-alive).  requests: dicts of
        localapi() keyword arguments (path, method, headers, http10, body, host, raw)."""
        specs = [request_spec(**r) for r in requests]
        if uid is None:
            res = raw_exchange(self.socket_path, specs, timeout, check_closed)
        else:
            res = _exchange_as(uid, self.socket_path, specs, timeout, check_closed)
        return [LocalAPIResponse(r) for r in res]


if __name__ == "__main__" and sys.argv[1:] == ["--child"]:
    _child_main()
