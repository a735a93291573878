"""Small clients for the package test: HTTP(S) from a source port chosen
before connecting (so the emulator's proxymap can name it), and the
emulator's control channel over its unix socket."""

import http.client
import json
import socket
import ssl


class Response:
    def __init__(self, status, headers, body, peer_cert=None, sport=None):
        self.status = status
        self.headers = headers
        self.body = body
        self.peer_cert = peer_cert
        self.sport = sport


def bound_socket(host="127.0.0.1"):
    """A TCP socket already bound to an ephemeral source port on host."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    return s


def get(sock, port, path, host_header, tls_context=None, server_name=None, timeout=20):
    """GET path over sock (bound, not yet connected) to 127.0.0.1:port; with
    tls_context, TLS with SNI server_name (verified as the context says)."""
    sport = sock.getsockname()[1]
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    cert = None
    if tls_context is not None:
        sock = tls_context.wrap_socket(sock, server_hostname=server_name)
        cert = sock.getpeercert(binary_form=True)
    try:
        req = ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
               "User-Agent: tsl-check-packages\r\n\r\n" % (path, host_header))
        sock.sendall(req.encode())
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ssl.SSLEOFError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP/") else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return Response(status, headers, body.decode("utf-8", "replace"), cert, sport)


def _dechunk(b):
    out = b""
    while b:
        size, _, rest = b.partition(b"\r\n")
        n = int(size.split(b";")[0] or b"0", 16)
        if n == 0:
            break
        out += rest[:n]
        b = rest[n + 2:]
    return out


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def control(path, method, endpoint, body=None):
    """Call the emulator's control channel; returns (status, decoded JSON)."""
    c = _UnixConnection(path)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        c.request(method, endpoint, body=data, headers=headers)
        r = c.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw or b"null")
        except ValueError:
            return r.status, raw.decode("utf-8", "replace")
    finally:
        c.close()
