"""HTTP/1.x on raw sockets, with Go net/http's observable framing."""

import re

from .gocompat import (TOKEN_CHARS, body_allowed, canonical_header_key, go_parse_query,
                       go_unescape, has_token, http_date, sniff_content_type, status_text,
                       valid_host_header)


# Go's net/http buffers this many bytes of a handler's output before it has to
# decide on framing: a body that fits and is complete when the handler returns
# gets Content-Length, anything else goes chunked (HTTP/1.1).
GO_RESPONSE_BUFFER = 2048
# Go's DefaultMaxHeaderBytes plus the slop its bufio reader allows.
GO_MAX_HEADER_BYTES = (1 << 20) + 4096
# net/http reads at most this much of an unread request body after the handler
# to keep the connection usable; beyond it the connection is closed.
GO_MAX_POST_HANDLER_READ = 256 << 10
# ParseForm reads at most 10 MB of urlencoded body.
GO_MAX_FORM_BODY = 10 << 20


class BadRequest(Exception):
    """A request Go rejects before any handler runs."""

    def __init__(self, code=400, text=None, raw=None):
        super().__init__(text or raw)
        self.code = code
        self.text = text
        self.raw = raw


class ClientGone(Exception):
    pass


class SockReader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def _fill(self):
        if self.eof:
            raise ClientGone()
        try:
            data = self.sock.recv(65536)
        except (ConnectionError, OSError):
            raise ClientGone()
        if not data:
            self.eof = True
            raise ClientGone()
        self.buf += data

    def readline(self, limit):
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i != -1:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if len(self.buf) > limit:
                raise BadRequest(431)
            start = len(self.buf)
            self._fill()

    def read(self, n):
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def pending(self):
        return bool(self.buf)


class Request:
    def __init__(self):
        self.method = ""
        self.target = ""
        self.proto = ""
        self.major = 1
        self.minor = 1
        self.raw_headers = []          # [(name as sent, value)]
        self.header = {}               # canonical name -> [values]
        self.host = ""
        self.path = ""
        self.raw_query = ""
        self.content_length = 0        # -1 = chunked
        self.body = None
        self.body_consumed = False
        self.expect_continue = False
        self.continue_sent = False
        self.reader = None
        self.sock = None
        self.creds = (0, -1, -1)       # pid, uid, gid
        self.form = None

    def get(self, name):
        v = self.header.get(canonical_header_key(name))
        return v[0] if v else ""

    def at_least_11(self):
        return (self.major, self.minor) >= (1, 1)

    @property
    def query(self):
        return go_parse_query(self.raw_query)

    def read_body(self, limit=GO_MAX_FORM_BODY):
        if self.body is not None:
            return self.body
        if self.expect_continue and not self.continue_sent and self.content_length != 0:
            self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.continue_sent = True
        self.body = read_body(self.reader, self.content_length, limit)
        self.body_consumed = True
        return self.body

    def form_value(self, name):
        """Request.FormValue: urlencoded POST/PUT/PATCH body first, then query."""
        if self.form is None:
            form = {}
            if self.method in ("POST", "PUT", "PATCH"):
                ct = self.get("Content-Type").split(";")[0].strip().lower()
                if ct == "application/x-www-form-urlencoded":
                    try:
                        body = self.read_body()
                        form = go_parse_query(body.decode("utf-8", "surrogateescape"))
                    except BadRequest:
                        form = {}
            for k, v in self.query.items():
                form.setdefault(k, []).extend(v)
            self.form = form
        v = self.form.get(name)
        return v[0] if v else ""


def read_body(reader, length, limit):
    if length == 0:
        return b""
    if length > 0:
        if length > limit:
            raise BadRequest(413)
        return reader.read(length)
    out = bytearray()
    while True:
        line = reader.readline(4096).rstrip(b"\r\n")
        size_s = line.split(b";")[0].strip()
        try:
            size = int(size_s, 16)
        except ValueError:
            raise BadRequest(400, raw=b"bad chunk")
        if size == 0:
            while reader.readline(GO_MAX_HEADER_BYTES) not in (b"\r\n", b"\n"):
                pass
            return bytes(out)
        out += reader.read(size)
        reader.read(2)
        if len(out) > limit:
            raise BadRequest(413)


def parse_request(reader):
    """Read one request the way net/http's readRequest does; raises
    BadRequest with what Go would answer (carrying what was parsed so far),
    or ClientGone."""
    req = Request()
    try:
        return _parse_request(reader, req)
    except BadRequest as e:
        e.req = req
        raise


def _parse_request(reader, req):
    budget = [GO_MAX_HEADER_BYTES]

    def line():
        ln = reader.readline(budget[0])
        budget[0] -= len(ln)
        if budget[0] < 0:
            raise BadRequest(431)
        return ln.rstrip(b"\n").rstrip(b"\r").decode("latin-1")

    first = line()
    method, sp1, rest = first.partition(" ")
    target, sp2, proto = rest.partition(" ")
    req.method, req.target, req.proto = method, target, proto
    # Go judges the request line before it reads any header.
    if not sp1 or not sp2:
        raise BadRequest(400)  # "malformed HTTP request"
    if proto == "HTTP/1.1":
        req.major, req.minor = 1, 1
    elif proto == "HTTP/1.0":
        req.major, req.minor = 1, 0
    else:
        m = re.fullmatch(r"HTTP/(\d)\.(\d)", proto)
        if not m:
            raise BadRequest(400)  # "malformed HTTP version"
        req.major, req.minor = int(m.group(1)), int(m.group(2))
    if not method or any(c not in TOKEN_CHARS for c in method):
        raise BadRequest(400)  # "invalid method"
    headers = []
    while True:
        ln = line()
        if ln == "":
            break
        if ln[0] in " \t":
            if not headers:
                raise BadRequest(400)
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + ln.strip(" \t"))
            continue
        k, colon, v = ln.partition(":")
        if not colon or not k or any(c not in TOKEN_CHARS for c in k):
            raise BadRequest(400)
        headers.append((k, v.strip(" \t")))
    req.raw_headers = headers
    for k, v in headers:
        req.header.setdefault(canonical_header_key(k), []).append(v)

    if req.major != 1:
        raise BadRequest(505, "unsupported protocol version")

    # request-target -> URL (url.ParseRequestURI)
    raw = target
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise BadRequest(400)
    url_host = ""
    if method == "CONNECT" and not raw.startswith("/"):
        url_host, path, query = raw, "", ""
    elif raw == "*":
        path, query = "*", ""
    else:
        m = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*):(.*)$", raw)
        if m:
            rest_ = m.group(2)
            if rest_.startswith("//"):
                auth, slash, after = rest_[2:].partition("/")
                hp, _, after_q = (slash + after).partition("?")
                url_host = auth.rpartition("@")[2]
                path, query = hp, after_q
            else:
                path, query = "", ""
        elif raw.startswith("/"):
            path, _, query = raw.partition("?")
        else:
            raise BadRequest(400)
    try:
        req.path = go_unescape(path, False)
    except ValueError:
        raise BadRequest(400)
    req.raw_query = query

    hosts = req.header.get("Host")
    req.host = url_host or (hosts[0] if hosts else "")
    if req.at_least_11() and not hosts and method != "CONNECT":
        raise BadRequest(400, "missing required Host header")
    if hosts and len(hosts) > 1:
        raise BadRequest(400, "too many Host headers")
    if hosts and not valid_host_header(hosts[0]):
        raise BadRequest(400, "malformed Host header")
    for k, vals in req.header.items():
        for v in vals:
            if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in v):
                raise BadRequest(400, "invalid header value")

    # body framing
    te = req.header.get("Transfer-Encoding")
    if te and req.at_least_11():
        if len(te) != 1 or te[0].lower() != "chunked":
            raise BadRequest(501, raw=b"Unsupported transfer encoding")
        req.content_length = -1
    else:
        cls = req.header.get("Content-Length")
        if cls:
            if len(set(c.strip() for c in cls)) > 1 or not cls[0].strip().isdigit():
                raise BadRequest(400)
            req.content_length = int(cls[0].strip())
        else:
            req.content_length = 0
    exp = req.get("Expect")
    if exp:
        if exp.lower() == "100-continue":
            req.expect_continue = req.at_least_11() and req.content_length != 0
        else:
            req.expect_failed = True
    return req


def write_bad_request(sock, err):
    """Go's pre-handler error responses (server.go): written raw, then the
    connection is closed."""
    eh = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
    if err.code == 431:
        pub = "431 Request Header Fields Too Large"
        out = "HTTP/1.1 " + pub + eh + pub
    elif err.code == 501:
        out = "HTTP/1.1 501 Not Implemented" + eh + "Unsupported transfer encoding"
    elif err.text:
        st = status_text(err.code)
        out = "HTTP/1.1 %d %s: %s%s%d %s: %s" % (err.code, st, err.text, eh, err.code, st, err.text)
    else:
        out = "HTTP/1.1 400 Bad Request" + eh + "400 Bad Request"
    try:
        sock.sendall(out.encode("latin-1"))
    except OSError:
        pass


class ResponseWriter:
    """http.ResponseWriter with Go's framing: a 2048-byte bufio.Writer in
    front of a chunkWriter.  A body that is complete and fits when the handler
    returns gets Content-Length; otherwise HTTP/1.1 is chunked (one chunk per
    underlying write, exactly where Go's buffer would flush) and HTTP/1.0 is
    closed after the body."""

    def __init__(self, sock, req):
        self.sock = sock
        self.req = req
        self.header = {}          # canonical name -> [values]
        self.status = None
        self._buf = bytearray()
        self.header_sent = False
        self.chunking = False
        self.handler_done = False
        self.close_after = False
        self.raw_len = 0
        self.body_len = 0
        self.wants_close = has_token(req.get("Connection"), "close") if req.at_least_11() else False
        self.wants10_keepalive = (not req.at_least_11()) and has_token(req.get("Connection"), "keep-alive")

    def set(self, name, value):
        self.header[canonical_header_key(name)] = [str(value)]

    def delete(self, name):
        self.header.pop(canonical_header_key(name), None)

    def write_header(self, code):
        if self.status is None:
            self.status = code

    def write(self, data):
        if self.status is None:
            self.status = 200
        if not data:
            return
        p = memoryview(bytes(data))
        while len(p) > GO_RESPONSE_BUFFER - len(self._buf):
            if not self._buf:
                self._cw_write(bytes(p))  # large write, empty buffer: straight through
                return
            n = GO_RESPONSE_BUFFER - len(self._buf)
            self._buf += p[:n]
            p = p[n:]
            self._flush_buf()
        self._buf += p

    def flush(self):
        """http.Flusher: pushes buffered bytes and, at the latest, the header."""
        if self.status is None:
            self.status = 200
        self._flush_buf()
        if not self.header_sent:
            self._send_header(b"")

    def finish(self):
        if self.status is None:
            self.status = 200
        self.handler_done = True
        self._flush_buf()
        if not self.header_sent:
            self._send_header(b"")
        if self.chunking:
            self._send(b"0\r\n\r\n")

    def _flush_buf(self):
        if self._buf:
            data = bytes(self._buf)
            self._buf.clear()
            self._cw_write(data)

    def _send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            raise ClientGone()
        self.raw_len += len(data)

    def _cw_write(self, p):
        if not self.header_sent:
            self._send_header(p)
        if self.req.method == "HEAD" or not body_allowed(self.status):
            return
        self.body_len += len(p)
        if self.chunking:
            self._send(b"%x\r\n" % len(p) + p + b"\r\n")
        else:
            self._send(p)

    def _send_header(self, p):
        self.header_sent = True
        code = self.status
        req = self.req
        hdr = {k: list(v) for k, v in self.header.items()}
        extra = {}
        is_head = req.method == "HEAD"
        has_te = "Transfer-Encoding" in hdr
        if (self.handler_done and not has_te and body_allowed(code)
                and "Content-Length" not in hdr and (not is_head or len(p) > 0)):
            extra["Content-Length"] = str(len(p))
        has_cl = "Content-Length" in hdr or "Content-Length" in extra
        if self.wants10_keepalive and (is_head or has_cl or not body_allowed(code)):
            if "Connection" not in hdr:
                extra["Connection"] = "keep-alive"
        elif not req.at_least_11() or self.wants_close:
            self.close_after = True
        if has_token(hdr.get("Connection", [""])[0], "close"):
            self.close_after = True
        if self.close_after:
            hdr.pop("Connection", None)
            if req.at_least_11():
                extra["Connection"] = "close"
        if "Content-Type" not in hdr and not has_te and body_allowed(code) and len(p) > 0:
            extra["Content-Type"] = sniff_content_type(p)
        extra["Date"] = http_date()
        if is_head or not body_allowed(code):
            hdr.pop("Transfer-Encoding", None)
        elif has_cl:
            hdr.pop("Transfer-Encoding", None)
        elif req.at_least_11():
            self.chunking = True
            extra["Transfer-Encoding"] = "chunked"
            hdr.pop("Transfer-Encoding", None)
        else:
            self.close_after = True
        lines = ["HTTP/%d.%d %d %s" % (1, 1 if req.at_least_11() else 0, code, status_text(code))]
        for k in sorted(hdr):
            for v in hdr[k]:
                lines.append("%s: %s" % (k, v))
        # net/http writes its own headers after the sorted map, in this order.
        for k in ("Date", "Content-Length", "Content-Type", "Connection", "Transfer-Encoding"):
            if k in extra:
                lines.append("%s: %s" % (k, extra[k]))
        self._send(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))


def http_error(w, text, code):
    """http.Error: plain text, nosniff, body = text + newline."""
    w.delete("Content-Length")
    w.set("Content-Type", "text/plain; charset=utf-8")
    w.set("X-Content-Type-Options", "nosniff")
    w.write_header(code)
    w.write((text + "\n").encode("utf-8", "surrogateescape"))
