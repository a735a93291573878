"""Go-compatible encodings.  Clients are written against Go's exact output, so
these reproduce the Go standard library's observable behaviour."""

import datetime
import email.utils
import http
import ipaddress
import json
import pwd
import re


def go_json(obj, indent=False, newline=False):
    """encoding/json output: HTML-safe escaping, UTF-8 kept raw, tab indent
    like MarshalIndent(v, "", "\\t"); newline=True mimics Encoder.Encode."""
    if indent:
        s = json.dumps(obj, ensure_ascii=False, indent="\t", separators=(",", ": "))
    else:
        s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    # Go escapes these even inside strings; they only ever occur inside
    # strings in JSON text, so a plain replace is exact.
    s = (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
         .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    if newline:
        s += "\n"
    return s.encode("utf-8", "surrogateescape")


def go_quote(s):
    """strconv.Quote (what %q prints for a string)."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                        "\r": "\\r", "\t": "\\t", "\v": "\\v"}[ch])
        elif 0xDC80 <= o <= 0xDCFF:      # an undecodable byte (surrogateescape)
            out.append("\\x%02x" % (o - 0xDC00))
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        elif ch.isprintable():
            out.append(ch)
        elif o < 0x10000:
            out.append("\\u%04x" % o)
        else:
            out.append("\\U%08x" % o)
    out.append('"')
    return "".join(out)


def go_quote_list(items):
    """fmt's %q applied to a []string: ["a" "b"]."""
    return "[" + " ".join(go_quote(i) for i in items) + "]"


def _time_quote(s):
    # time.quote: non-ASCII and control bytes become \xNN, per UTF-8 byte.
    out = ['"']
    for ch in s:
        if ord(ch) >= 0x80 or ord(ch) < 0x20:
            for b in ch.encode("utf-8", "surrogateescape"):
                out.append("\\x%02x" % b)
        else:
            if ch in '"\\':
                out.append("\\")
            out.append(ch)
    out.append('"')
    return "".join(out)


_DURATION_UNITS = {"ns": 1, "us": 1000, "\u00b5s": 1000, "\u03bcs": 1000,
                   "ms": 10 ** 6, "s": 10 ** 9, "m": 60 * 10 ** 9, "h": 3600 * 10 ** 9}


def go_parse_duration(s):
    """time.ParseDuration; returns nanoseconds or raises ValueError with Go's
    exact error text (it ends up in the 400 body of cert?min_validity=)."""
    orig = s
    invalid = ValueError("time: invalid duration " + _time_quote(orig))
    d = 0
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if s == "":
        raise invalid
    limit = 1 << 63
    while s:
        if not (s[0] == "." or "0" <= s[0] <= "9"):
            raise invalid
        i = 0
        v = 0
        while i < len(s) and "0" <= s[i] <= "9":
            if v > limit // 10:
                raise invalid
            v = v * 10 + (ord(s[i]) - 48)
            if v > limit:
                raise invalid
            i += 1
        pre = i > 0
        s = s[i:]
        post = False
        f, scale = 0, 1.0
        if s and s[0] == ".":
            s = s[1:]
            i = 0
            overflow = False
            while i < len(s) and "0" <= s[i] <= "9":
                if not overflow:
                    if f > (limit - 1) // 10:
                        overflow = True
                    else:
                        y = f * 10 + (ord(s[i]) - 48)
                        if y > limit:
                            overflow = True
                        else:
                            f = y
                            scale *= 10
                i += 1
            post = i > 0
            s = s[i:]
        if not pre and not post:
            raise invalid
        i = 0
        while i < len(s) and not (s[i] == "." or "0" <= s[i] <= "9"):
            i += 1
        if i == 0:
            raise ValueError("time: missing unit in duration " + _time_quote(orig))
        u, s = s[:i], s[i:]
        if u not in _DURATION_UNITS:
            raise ValueError("time: unknown unit " + _time_quote(u) + " in duration " + _time_quote(orig))
        unit = _DURATION_UNITS[u]
        if v > limit // unit:
            raise invalid
        v *= unit
        if f > 0:
            v += int(float(f) * (float(unit) / scale))
            if v > limit:
                raise invalid
        d += v
        if d > limit:
            raise invalid
    if neg:
        return -d
    if d > limit - 1:
        raise invalid
    return d


def go_parse_bool(s):
    if s in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if s in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError("invalid bool")


def def_bool(s, default):
    # localapi's defBool: empty or unparsable means the default.
    if s == "":
        return default
    try:
        return go_parse_bool(s)
    except ValueError:
        return default


def go_parse_addr(s):
    """netip.ParseAddr: strict dotted IPv4 (no leading zeros), IPv6 with an
    optional non-empty zone.  Returns an ipaddress object (zone in scope_id)."""
    if not s or s.strip() != s:
        raise ValueError("invalid IP")
    try:
        a = ipaddress.ip_address(s)
    except ValueError:
        raise ValueError("invalid IP")
    return a


def go_parse_addrport(s):
    """netip.ParseAddrPort: the port is mandatory and IPv6 must be bracketed."""
    i = s.rfind(":")
    if i == -1:
        raise ValueError("not an ip:port")
    ip, port = s[:i], s[i + 1:]
    if not ip:
        raise ValueError("no IP")
    if not port:
        raise ValueError("no port")
    v6 = False
    if ip[0] == "[":
        if len(ip) < 2 or ip[-1] != "]":
            raise ValueError("missing ]")
        ip = ip[1:-1]
        v6 = True
    if not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise ValueError("invalid port")
    addr = go_parse_addr(ip)
    if v6 and addr.version == 4:
        raise ValueError("square brackets can only be used with IPv6 addresses")
    if not v6 and addr.version == 6:
        raise ValueError("IPv6 addresses must be surrounded by square brackets")
    return addr, int(port)


def unmap_addr(a):
    # netip.Addr.Unmap: ::ffff:a.b.c.d becomes a.b.c.d (the zone goes with it).
    if a.version == 6 and a.ipv4_mapped is not None:
        return a.ipv4_mapped
    return a


def addr_key(a):
    # Map key that, like netip.Addr, distinguishes zones.
    return str(a)


def addrport_str(a, port):
    return ("[%s]:%d" if a.version == 6 else "%s:%d") % (a, port)


_HEX = "0123456789abcdefABCDEF"


def go_unescape(s, query):
    """net/url unescape: '%' must be followed by two hex digits; in query
    mode '+' is a space.  Returns a str (undecodable bytes surrogate-escaped)."""
    out = bytearray()
    i = 0
    b = s.encode("utf-8", "surrogateescape")
    while i < len(b):
        c = b[i]
        if c == 0x25:
            if i + 2 >= len(b) or chr(b[i + 1]) not in _HEX or chr(b[i + 2]) not in _HEX:
                raise ValueError("invalid URL escape")
            out.append(int(b[i + 1:i + 3], 16))
            i += 3
            continue
        if c == 0x2B and query:
            out.append(0x20)
        else:
            out.append(c)
        i += 1
    return out.decode("utf-8", "surrogateescape")


def go_parse_query(raw):
    """url.ParseQuery, ignoring the pairs it would report errors for (which is
    what Query().Get and FormValue do)."""
    m = {}
    for part in raw.split("&"):
        if ";" in part or part == "":
            continue
        k, _, v = part.partition("=")
        try:
            k = go_unescape(k, True)
            v = go_unescape(v, True)
        except ValueError:
            continue
        m.setdefault(k, []).append(v)
    return m


TOKEN_CHARS = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HOST_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                  "!$%&'()*+,-.:;=[]_~")


def canonical_header_key(k):
    # textproto.CanonicalMIMEHeaderKey (only for valid tokens, like Go).
    if not k or any(c not in TOKEN_CHARS for c in k):
        return k
    return "-".join(p[:1].upper() + p[1:].lower() for p in k.split("-"))


def valid_host_header(h):
    # httpguts.ValidHostHeader: a permissive byte table, >= 0x80 allowed.
    return all(c in _HOST_CHARS or ord(c) >= 0x80 for c in h)


def has_token(v, token):
    return any(p.strip().lower() == token for p in v.split(","))


def http_date(t=None):
    return email.utils.formatdate(t, usegmt=True)


def status_text(code):
    try:
        return http.HTTPStatus(code).phrase
    except ValueError:
        return "status code %d" % code


def go_time(t):
    """time.Time JSON (RFC 3339 with trimmed nanoseconds, UTC)."""
    if t is None:
        return "0001-01-01T00:00:00Z"
    if isinstance(t, str):
        return t
    dt = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    s = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        s += ("." + "%06d" % dt.microsecond).rstrip("0")
    return s + "Z"


def parse_time(s):
    s = s.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", s)
    if m and m.group(2):  # Python only parses up to microseconds
        s = m.group(1) + m.group(2)[:7] + m.group(3)
    return datetime.datetime.fromisoformat(s).timestamp()


def sniff_content_type(p):
    # The only untyped body this emulator writes is the HTML banner; this is
    # the part of http.DetectContentType that matters for it.
    head = p[:512].lstrip(b"\t\n\x0c\r ")
    if head[:5].lower() == b"<html":
        return "text/html; charset=utf-8"
    if all(b >= 0x20 or b in (9, 10, 13, 12, 27) for b in p[:512]):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def body_allowed(code):
    return not (100 <= code <= 199 or code in (204, 304))


def resolve_uid(v):
    """TS_PERMIT_CERT_UID / operator semantics: a numeric uid or a user name;
    an unknown name matches nobody."""
    if v is None or v == "":
        return None
    if isinstance(v, int):
        return v
    v = str(v)
    if v.isdigit():
        return int(v)
    try:
        return pwd.getpwnam(v).pw_uid
    except KeyError:
        return None
