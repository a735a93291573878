#!/usr/bin/python3
"""tailscaled LocalAPI emulator: the test double for a daemon that cannot run here.

It serves /localapi/v0/* on a unix socket the way tailscaled >= 1.32.3 does
(shared/spec/localapi.md is the specification), strict by default: a wrong
Host, a Referer or an Origin gets 403 "invalid localapi request", peer
credentials decide who may fetch certificates, whois errors carry the exact
status and text, large bodies are chunked like Go's net/http chunks them, and
certificates renew on tailscaled's schedule.  A second unix socket (the
control channel) lets tests inspect and steer it at run time.

Standard library plus `cryptography`; run with /usr/bin/python3.
See README.md next to this file for the tailnet file format and the control API.
"""

import argparse
import base64
import binascii
import copy
import datetime
import email.utils
import hashlib
import http
import ipaddress
import json
import os
import pwd
import queue
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
import traceback

# cryptography is imported by the CA thread (see CertStore): it is most of the
# start-up time, and most tests start an emulator without needing certificates.
x509 = hashes = serialization = ec = ExtendedKeyUsageOID = NameOID = None


def _load_crypto():
    global x509, hashes, serialization, ec, ExtendedKeyUsageOID, NameOID
    from cryptography import x509 as _x509
    from cryptography.hazmat.primitives import hashes as _hashes, serialization as _ser
    from cryptography.hazmat.primitives.asymmetric import ec as _ec
    from cryptography.x509.oid import ExtendedKeyUsageOID as _eku, NameOID as _name
    x509, hashes, serialization, ec = _x509, _hashes, _ser, _ec
    ExtendedKeyUsageOID, NameOID = _eku, _name

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TAILNET = os.path.join(HERE, "tailnet.json")

LOCALAPI_HOST = "local-tailscaled.sock"
CSP = ("default-src 'none'; frame-ancestors 'none'; script-src 'none'; "
       "script-src-elem 'none'; script-src-attr 'none'")
ROOT_BANNER = b"<html><title>Tailscale</title><body><h1>Tailscale</h1>This is the local Tailscale daemon.\n"

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

BACKEND_STATES = ["NoState", "InUseOtherUser", "NeedsLogin", "NeedsMachineAuth",
                  "Stopped", "Starting", "Running"]


def log(msg):
    sys.stderr.write("%s tailscaled-emu: %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# --------------------------------------------------------------------------
# Go-compatible encodings.  Clients are written against Go's exact output, so
# these reproduce the Go standard library's observable behaviour.
# --------------------------------------------------------------------------

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


_TOKEN_CHARS = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HOST_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                  "!$%&'()*+,-.:;=[]_~")


def canonical_header_key(k):
    # textproto.CanonicalMIMEHeaderKey (only for valid tokens, like Go).
    if not k or any(c not in _TOKEN_CHARS for c in k):
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


# --------------------------------------------------------------------------
# The tailnet: what the netmap says.  Loaded from a JSON description
# (README.md documents it) and compiled into the JSON shapes tailscaled emits.
# --------------------------------------------------------------------------

class TailnetError(ValueError):
    pass


def _derived_hex(*parts):
    return hashlib.sha256("\x00".join(str(p) for p in parts).encode()).hexdigest()


def _derived_id(*parts):
    # Realistic-looking positive int64 (control's IDs are 13-16 digits).
    return int(_derived_hex("id", *parts)[:13], 16) % (9 * 10 ** 15) + 10 ** 15


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _derived_stable_id(name):
    n = int(_derived_hex("stable", name), 16)
    s = ""
    for _ in range(9):
        n, r = divmod(n, 62)
        s += _B62[r]
    return "n" + s + "CNTRL"


def sanitize_hostname(h):
    # dnsname.SanitizeHostname, reduced to what matters for ComputedName.
    h = h.strip().lower()
    if h.endswith(".local"):
        h = h[:-6]
    h = h.split(".")[0]
    h = re.sub(r"[^a-z0-9-]", "-", h).strip("-")
    return h[:63]


def sorted_map(m):
    # Go marshals map keys in sorted order.
    if m is None:
        return None
    return {k: m[k] for k in sorted(m)}


TOP_KEYS = {"comment", "version", "capability_version", "backend_state", "netmap", "auth_url",
            "tailnet", "https", "wildcard_certs", "cert_domains", "certs", "permissions",
            "tagged_devices_user_id", "users", "self", "nodes", "health", "prefs"}
NODE_KEYS = {"comment", "name", "fqdn", "id", "stable_id", "user", "tags", "shared_by", "addresses",
             "allowed_ips", "primary_routes", "hostname", "os", "os_version", "distro", "ipn_version",
             "online", "created", "last_seen", "key_expiry", "cap_map", "cap_map_by_dst",
             "capabilities", "node_cap_map", "endpoints", "home_derp", "cap", "key", "machine",
             "disco", "machine_authorized", "expired", "hostinfo", "extra"}
SEE_GROUPS_ATTR = "tailscale.com/see-groups"
USER_KEYS = {"comment", "id", "login", "display_name", "profile_pic_url", "groups"}


def _entries(coll, key, what):
    """users/nodes may be an object keyed by login/name (the documented form)
    or a list of objects carrying that key."""
    if coll is None:
        return []
    if isinstance(coll, dict):
        out = []
        for k, v in coll.items():
            if not isinstance(v, dict):
                raise TailnetError("%s[%r] must be an object" % (what, k))
            if key in v and v[key] != k:
                raise TailnetError("%s[%r] has %s %r" % (what, k, key, v[key]))
            out.append(dict(v, **{key: k}))
        return out
    if isinstance(coll, list) and all(isinstance(v, dict) for v in coll):
        return coll
    raise TailnetError("%s must be an object keyed by %s (or a list of objects)" % (what, key))


class Tailnet:
    """A validated, compiled tailnet description.  Immutable once built; the
    emulator swaps whole instances so a request always sees one consistent view."""

    def __init__(self, raw):
        if not isinstance(raw, dict):
            raise TailnetError("tailnet description must be a JSON object")
        self.raw = copy.deepcopy(raw)
        r = self.raw
        unknown = set(r) - TOP_KEYS
        if unknown:
            raise TailnetError("unknown top-level keys: %s" % ", ".join(sorted(unknown)))
        self.version = str(r.get("version", "1.102.3-t53a0d659a-g4567ef89"))
        self.short_version = self.version.split("-")[0]
        self.capver = int(r.get("capability_version", 145))
        self.backend_state = r.get("backend_state", "Running")
        if self.backend_state not in BACKEND_STATES:
            raise TailnetError("backend_state must be one of %s" % BACKEND_STATES)
        nm = r.get("netmap")
        self.has_netmap = (self.backend_state not in ("NoState", "NeedsLogin")) if nm is None else bool(nm)
        self.auth_url = r.get("auth_url", "")
        tn = r.get("tailnet") or {}
        self.tailnet_name = tn.get("name", "example.com")
        self.suffix = tn.get("magic_dns_suffix", "tail1234.ts.net").strip(".")
        self.magic_dns = bool(tn.get("magic_dns_enabled", True))
        self.https = bool(r.get("https", True))
        self.wildcard = bool(r.get("wildcard_certs", False))
        self.health = r.get("health") or []
        certs = r.get("certs") or {}
        self.cert_lifetime = float(certs.get("lifetime", 7776000))
        self.issue_delay = float(certs.get("issue_delay", 0.3))
        self.renew_fraction = float(certs.get("renew_fraction", 2.0 / 3.0))
        if self.cert_lifetime < 2:
            raise TailnetError("certs.lifetime must be at least 2 seconds")
        perms = r.get("permissions") or {}
        self.write_uids = set(int(u) for u in perms.get("write_uids", [0]))
        self.cert_uids = set(int(u) for u in perms.get("cert_uids", []))
        self.operator = perms.get("operator_uid")
        self.permit_cert_uid = perms.get("permit_cert_uid")
        self.tagged_uid = int(r.get("tagged_devices_user_id", 3817266590173952))

        self.users = {}
        self.users_by_login = {}
        self.user_groups = {}
        for u in _entries(r.get("users"), "login", "users"):
            unknown = set(u) - USER_KEYS
            if unknown:
                raise TailnetError("user %r: unknown keys %s" % (u.get("login"), sorted(unknown)))
            if "login" not in u:
                raise TailnetError("every user needs a login")
            uid = int(u.get("id") or _derived_id("user", u["login"]))
            prof = {"ID": uid, "LoginName": u["login"],
                    "DisplayName": u.get("display_name") or u["login"].split("@")[0]}
            if u.get("profile_pic_url"):
                prof["ProfilePicURL"] = u["profile_pic_url"]
            groups = u.get("groups") or []
            if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
                raise TailnetError("user %s: groups must be a list of strings" % u["login"])
            if uid in self.users or u["login"] in self.users_by_login:
                raise TailnetError("duplicate user %s" % u["login"])
            self.users[uid] = prof
            self.users_by_login[u["login"]] = uid
            self.user_groups[uid] = groups

        self.nodes = []
        self.by_name = {}
        self.by_addr = {}
        self.by_key = {}
        self.by_id = {}
        for n in _entries(r.get("nodes"), "name", "nodes"):
            node = self._compile_node(n)
            self.nodes.append(node)
        self.self_name = r.get("self")
        if self.self_name not in self.by_name:
            raise TailnetError("'self' must name one of the nodes")
        self.self_node = self.by_name[self.self_name]
        self.self_node["is_self"] = True

        cd = r.get("cert_domains")
        if not self.https:
            self.cert_domains = None
        elif cd is None:
            self.cert_domains = [self.self_node["fqdn"]]
        else:
            self.cert_domains = [str(d).rstrip(".") for d in cd] or None
        if self.wildcard:
            ncm = self.self_node.setdefault("node_cap_map", {}) or {}
            ncm.setdefault("dns-subdomain-resolve", None)
            self.self_node["node_cap_map"] = ncm
        self._fill_groups()
        self.prefs_overrides = r.get("prefs") or {}
        for node in self.nodes:
            node["json"] = self._node_json(node)

    def _fill_groups(self):
        """UserProfile.Groups as control sends them (tailscale 1.98+): only to a
        self node with the node attribute tailscale.com/see-groups, and only the
        groups its values list ([{"groups": ["group:eng"]}]); sorted; omitted
        when empty."""
        ncm = self.self_node.get("node_cap_map") or {}
        allowed = set()
        for v in ncm.get(SEE_GROUPS_ATTR) or []:
            if isinstance(v, dict):
                allowed.update(g for g in v.get("groups") or [] if isinstance(g, str))
        for uid, prof in self.users.items():
            seen = sorted(set(self.user_groups.get(uid, [])) & allowed)
            if seen:
                prof["Groups"] = seen

    def _user_ref(self, ref, what, name):
        if ref is None:
            return None
        if isinstance(ref, int):
            if ref not in self.users:
                raise TailnetError("node %s: %s %r is not a user" % (name, what, ref))
            return ref
        if ref not in self.users_by_login:
            raise TailnetError("node %s: %s %r is not a user" % (name, what, ref))
        return self.users_by_login[ref]

    def _compile_node(self, n):
        if "name" not in n:
            raise TailnetError("every node needs a name")
        name = n["name"]
        unknown = set(n) - NODE_KEYS
        if unknown:
            raise TailnetError("node %s: unknown keys %s" % (name, sorted(unknown)))
        if name in self.by_name:
            raise TailnetError("duplicate node name %s" % name)
        fqdn = (n.get("fqdn") or "%s.%s" % (name, self.suffix)).rstrip(".")
        tags = list(n.get("tags") or [])
        for t in tags:
            if not str(t).startswith("tag:"):
                raise TailnetError("node %s: tag %r must start with 'tag:'" % (name, t))
        if tags:
            user_id = self.tagged_uid
            if user_id not in self.users:
                self.users[user_id] = {"ID": user_id, "LoginName": "tagged-devices",
                                       "DisplayName": "Tagged Devices"}
        else:
            if n.get("user") is None:
                raise TailnetError("node %s needs a user or tags" % name)
            user_id = self._user_ref(n.get("user"), "user", name)
        sharer = self._user_ref(n.get("shared_by"), "shared_by", name)
        addrs = []
        for a in n.get("addresses") or []:
            try:
                ip = ipaddress.ip_address(a)
            except ValueError:
                raise TailnetError("node %s: bad address %r" % (name, a))
            if addr_key(ip) in self.by_addr:
                raise TailnetError("node %s: address %s already used" % (name, a))
            addrs.append(ip)
        if not addrs:
            raise TailnetError("node %s needs at least one address" % name)
        node = {
            "name": name, "fqdn": fqdn, "tags": tags, "user_id": user_id, "sharer": sharer,
            "addresses": addrs,
            "id": int(n.get("id") or _derived_id("node", name)),
            "stable_id": n.get("stable_id") or _derived_stable_id(name),
            "key": n.get("key") or "nodekey:" + _derived_hex("nodekey", name),
            "machine": n.get("machine") or "mkey:" + _derived_hex("mkey", name),
            "disco": n.get("disco") or "discokey:" + _derived_hex("disco", name),
            "hostname": n.get("hostname") or name,
            "os": n.get("os", "linux"),
            "os_version": n.get("os_version"),
            "distro": n.get("distro"),
            "ipn_version": n.get("ipn_version"),
            "online": n.get("online", True),
            "created": n.get("created") or "2025-03-04T05:06:07.123456789Z",
            "last_seen": n.get("last_seen"),
            "key_expiry": n.get("key_expiry", None if tags else "2026-12-01T10:00:00Z"),
            "cap_map": n.get("cap_map"),
            "cap_map_by_dst": n.get("cap_map_by_dst") or {},
            "capabilities": n.get("capabilities") or [],
            "node_cap_map": n.get("node_cap_map"),
            "endpoints": n.get("endpoints"),
            "home_derp": n.get("home_derp", 2),
            "cap": n.get("cap", self.capver),
            "allowed_ips": n.get("allowed_ips") or [],
            "primary_routes": n.get("primary_routes") or [],
            "machine_authorized": n.get("machine_authorized", True),
            "expired": bool(n.get("expired", False)),
            "hostinfo": n.get("hostinfo") or {},
            "extra": n.get("extra") or {},
        }
        if not re.fullmatch(r"nodekey:[0-9a-fA-F]{64}", node["key"]):
            raise TailnetError("node %s: key must be nodekey:<64 hex>" % name)
        if node["cap_map"] is not None and not isinstance(node["cap_map"], dict):
            raise TailnetError("node %s: cap_map must be an object or null" % name)
        self.by_name[name] = node
        for a in addrs:
            self.by_addr[addr_key(a)] = node
        self.by_key[node["key"].lower()] = node
        self.by_id[node["id"]] = node
        return node

    # --- JSON shapes -----------------------------------------------------

    @staticmethod
    def _cidr(a):
        return "%s/%d" % (a, 32 if a.version == 4 else 128)

    def computed_names(self, node):
        # tailcfg.Node.InitDisplayNames
        fq = node["fqdn"]
        name = fq[:-len(self.suffix) - 1] if fq.endswith("." + self.suffix) else fq
        host = sanitize_hostname(node["hostname"])
        if name.lower() == host.lower():
            host = ""
        if name == "":
            name, host = (host, "") if host else (node["key"], "")
        return name, ("%s (%s)" % (name, host) if host else name)

    def _node_json(self, node):
        """tailcfg.Node in struct order with v1.92+ omitzero rules."""
        j = {"ID": node["id"], "StableID": node["stable_id"], "Name": node["fqdn"] + ".",
             "User": node["user_id"]}
        if node["sharer"]:
            j["Sharer"] = node["sharer"]
        j["Key"] = node["key"]
        if node["key_expiry"]:
            j["KeyExpiry"] = node["key_expiry"]
        j["Machine"] = node["machine"]
        j["DiscoKey"] = node["disco"]
        j["Addresses"] = [self._cidr(a) for a in node["addresses"]]
        j["AllowedIPs"] = [self._cidr(a) for a in node["addresses"]] + list(node["allowed_ips"])
        if node["endpoints"]:
            j["Endpoints"] = list(node["endpoints"])
        if node["home_derp"]:
            j["HomeDERP"] = node["home_derp"]
        hi = {"IPNVersion": node["ipn_version"] or self.version, "OS": node["os"]}
        if node["os_version"]:
            hi["OSVersion"] = node["os_version"]
        if node["distro"]:
            hi["Distro"] = node["distro"]
        hi["Hostname"] = node["hostname"]
        hi.update(node["hostinfo"])
        j["Hostinfo"] = hi
        j["Created"] = node["created"]
        if node["cap"]:
            j["Cap"] = node["cap"]
        if node["tags"]:
            j["Tags"] = list(node["tags"])
        if node["primary_routes"]:
            j["PrimaryRoutes"] = list(node["primary_routes"])
        if node["last_seen"]:
            j["LastSeen"] = node["last_seen"]
        if node["online"] is not None:
            j["Online"] = bool(node["online"])
        if node["machine_authorized"]:
            j["MachineAuthorized"] = True
        if node["capabilities"]:
            j["Capabilities"] = list(node["capabilities"])
        if node["node_cap_map"]:
            j["CapMap"] = sorted_map(node["node_cap_map"])
        cn, cnh = self.computed_names(node)
        j["ComputedName"] = cn
        j["ComputedNameWithHost"] = cnh
        if node["expired"]:
            j["Expired"] = True
        j.update(node["extra"])
        return j

    def service_ips(self):
        """Self.CapMap["service-host"]: {"svc:web": [VIP, ...]} (tailcfg.ServiceIPMappings)."""
        out = {}
        for v in (self.self_node.get("node_cap_map") or {}).get("service-host") or []:
            if isinstance(v, dict):
                for name, ips in v.items():
                    out.setdefault(name, []).extend(ipaddress.ip_address(a) for a in ips)
        return out

    def peer_cap_map(self, node, svc_name="", dst_ip=""):
        """The whois CapMap (null when the peer has no capabilities), as
        tailscaled 1.100+ scopes it: svc_name (which wins over dst_ip) is
        resolved to the service's VIP of the peer's address family; a
        destination that is one of this node's own addresses gets the host's
        grants, a hosted service's VIP the grants that target that service,
        anything else none."""
        by_dst = node["cap_map_by_dst"]
        if svc_name:
            fam = node["addresses"][0].version
            vips = [a for a in self.service_ips().get(svc_name, []) if a.version == fam]
            if not vips:
                return None
            cm = by_dst.get(svc_name, by_dst.get(str(vips[0])))
        elif dst_ip:
            d = unmap_addr(go_parse_addr(dst_ip))
            if any(addr_key(d) == addr_key(a) for a in self.self_node["addresses"]):
                cm = node["cap_map"]
            else:
                names = [n for n, ips in self.service_ips().items()
                         if any(addr_key(d) == addr_key(a) for a in ips)]
                cm = by_dst.get(str(d))
                if cm is None and names:
                    cm = by_dst.get(names[0])
        else:
            cm = node["cap_map"]
        return sorted_map(cm) if cm else None

    def peer_status(self, node):
        """ipnstate.PeerStatus for status JSON."""
        ips = [str(a) for a in node["addresses"]]
        j = {"ID": node["stable_id"], "PublicKey": node["key"], "HostName": node["hostname"],
             "DNSName": node["fqdn"] + ".", "OS": node["os"], "UserID": node["user_id"]}
        if node["sharer"]:
            j["AltSharerUserID"] = node["sharer"]
        j["TailscaleIPs"] = ips
        j["AllowedIPs"] = [self._cidr(a) for a in node["addresses"]] + list(node["allowed_ips"])
        if node["tags"]:
            j["Tags"] = list(node["tags"])
        if node["primary_routes"]:
            j["PrimaryRoutes"] = list(node["primary_routes"])
        j.update({
            "Addrs": list(node["endpoints"]) if node["endpoints"] else None,
            "CurAddr": "", "Relay": "fra", "PeerRelay": "",
            "RxBytes": 0, "TxBytes": 0,
            "Created": node["created"],
            "LastWrite": "0001-01-01T00:00:00Z",
            "LastSeen": node["last_seen"] or "0001-01-01T00:00:00Z",
            "LastHandshake": "0001-01-01T00:00:00Z",
            "Online": bool(node["online"]), "ExitNode": False, "ExitNodeOption": False,
            "Active": False,
            "PeerAPIURL": ["http://%s:%d" % (node["addresses"][0], 40000 + node["id"] % 20000)],
            "TaildropTarget": 0, "NoFileSharingReason": "",
        })
        if node["capabilities"]:
            j["Capabilities"] = list(node["capabilities"])
        if node["node_cap_map"]:
            j["CapMap"] = sorted_map(node["node_cap_map"])
        j.update({"InNetworkMap": True, "InMagicSock": not node.get("is_self"),
                  "InEngine": False})
        if node["key_expiry"]:
            j["KeyExpiry"] = node["key_expiry"]
        # The int NodeID sits right after ID in the struct.
        out = {"ID": j.pop("ID"), "NodeID": node["id"]}
        out.update(j)
        return out

    def status_json(self, with_peers):
        st = {"Version": self.version, "TUN": True, "BackendState": self.backend_state}
        nm = self.has_netmap
        if nm:
            st["HaveNodeKey"] = True
        st["AuthURL"] = self.auth_url
        st["TailscaleIPs"] = [str(a) for a in self.self_node["addresses"]] if nm else None
        if nm:
            st["Self"] = self.peer_status(self.self_node)
        else:
            st["Self"] = {"ID": "", "NodeID": 0, "PublicKey": self.self_node["key"],
                          "HostName": self.self_node["hostname"], "DNSName": "", "OS": "linux",
                          "UserID": 0, "TailscaleIPs": None, "Addrs": None, "CurAddr": "",
                          "Relay": "", "PeerRelay": "", "RxBytes": 0, "TxBytes": 0,
                          "Created": "0001-01-01T00:00:00Z", "LastWrite": "0001-01-01T00:00:00Z",
                          "LastSeen": "0001-01-01T00:00:00Z",
                          "LastHandshake": "0001-01-01T00:00:00Z", "Online": False,
                          "ExitNode": False, "ExitNodeOption": False, "Active": False,
                          "PeerAPIURL": None, "TaildropTarget": 0, "NoFileSharingReason": "",
                          "InNetworkMap": False, "InMagicSock": False, "InEngine": False}
        st["Health"] = list(self.health) if self.health else None
        st["MagicDNSSuffix"] = self.suffix if nm else ""
        st["CurrentTailnet"] = ({"Name": self.tailnet_name, "MagicDNSSuffix": self.suffix,
                                 "MagicDNSEnabled": self.magic_dns} if nm else None)
        st["CertDomains"] = list(self.cert_domains) if (nm and self.cert_domains) else None
        st["ExtraRecords"] = None
        if nm and with_peers:
            peers = {n["key"]: self.peer_status(n) for n in self.nodes if not n.get("is_self")}
            st["Peer"] = sorted_map(peers)
            users = {str(uid): p for uid, p in self.users.items()}
            st["User"] = sorted_map(users)
        else:
            st["Peer"] = None
            if nm:  # since v1.100 the self user stays in User with peers=false
                su = self.self_node["user_id"]
                st["User"] = {str(su): self.users[su]} if su in self.users else None
            else:
                st["User"] = None
        st["ClientVersion"] = None
        return st

    def netmap_json(self):
        """A reduced netmap.NetworkMap for watch-ipn-bus."""
        if not self.has_netmap:
            return None
        return {
            "SelfNode": self.self_node["json"],
            "NodeKey": self.self_node["key"],
            "Name": self.self_node["fqdn"] + ".",
            "Addresses": [self._cidr(a) for a in self.self_node["addresses"]],
            "MachineKey": self.self_node["machine"],
            "Peers": [n["json"] for n in sorted(self.nodes, key=lambda n: n["id"])
                      if not n.get("is_self")],
            "DNS": self.dns_config_json(),
            "Domain": self.tailnet_name,
            "UserProfiles": sorted_map({str(k): v for k, v in self.users.items()}),
        }

    def dns_config_json(self):
        j = {"Resolvers": [{"Addr": "100.100.100.100"}], "Domains": [self.suffix],
             "Proxied": self.magic_dns}
        if self.cert_domains:
            j["CertDomains"] = list(self.cert_domains)
        return j


def deep_merge(base, patch):
    """JSON merge: objects merge recursively, everything else replaces."""
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# --------------------------------------------------------------------------
# Certificates: a local CA shaped like Let's Encrypt's ECDSA hierarchy
# (P-384 root -> P-384 intermediate -> P-256 leaf), and a store that renews
# on tailscaled's schedule.
# --------------------------------------------------------------------------

class CertError(Exception):
    def __init__(self, text, status=500, retry_after=None):
        super().__init__(text)
        self.text = text
        self.status = status
        self.retry_after = retry_after


def _write_file(path, data, mode):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


class TestCA:
    def __init__(self, state_dir):
        self.dir = state_dir
        self.root_path = os.path.join(state_dir, "ca.pem")
        self.inter_path = os.path.join(state_dir, "intermediate.pem")
        rk = os.path.join(state_dir, "ca-key.pem")
        ik = os.path.join(state_dir, "intermediate-key.pem")
        if all(os.path.exists(p) for p in (self.root_path, self.inter_path, rk, ik)):
            with open(self.root_path, "rb") as f:
                self.root = x509.load_pem_x509_certificate(f.read())
            with open(self.inter_path, "rb") as f:
                self.inter_pem = f.read()
                self.inter = x509.load_pem_x509_certificate(self.inter_pem)
            with open(ik, "rb") as f:
                self.inter_key = serialization.load_pem_private_key(f.read(), None)
            return
        now = datetime.datetime.now(datetime.timezone.utc)
        root_key = ec.generate_private_key(ec.SECP384R1())
        root_name = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tailscale Emulator Test CA"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Emulator Test Root X2"),
        ])
        root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
        self.root = (x509.CertificateBuilder()
                     .subject_name(root_name).issuer_name(root_name)
                     .public_key(root_key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=3650))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
                     .add_extension(root_ski, critical=False)
                     .sign(root_key, hashes.SHA384()))
        self.inter_key = ec.generate_private_key(ec.SECP384R1())
        inter_name = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tailscale Emulator Test CA"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Emulator E5"),
        ])
        self.inter = (x509.CertificateBuilder()
                      .subject_name(inter_name).issuer_name(root_name)
                      .public_key(self.inter_key.public_key())
                      .serial_number(x509.random_serial_number())
                      .not_valid_before(now - datetime.timedelta(days=1))
                      .not_valid_after(now + datetime.timedelta(days=1095))
                      .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                      .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
                      .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                            ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                      .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.inter_key.public_key()), critical=False)
                      .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False)
                      .add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                          x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
                          x509.UniformResourceIdentifier("http://x2.i.lencr.emulator.test/"))]), critical=False)
                      .add_extension(x509.CertificatePolicies([x509.PolicyInformation(
                          x509.ObjectIdentifier("2.23.140.1.2.1"), None)]), critical=False)
                      .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                          [x509.UniformResourceIdentifier("http://x2.c.lencr.emulator.test/")],
                          None, None, None)]), critical=False)
                      .sign(root_key, hashes.SHA384()))
        self.inter_pem = self.inter.public_bytes(serialization.Encoding.PEM)
        _write_file(self.root_path, self.root.public_bytes(serialization.Encoding.PEM), 0o644)
        _write_file(self.inter_path, self.inter_pem, 0o644)
        _write_file(rk, root_key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.TraditionalOpenSSL,
                                               serialization.NoEncryption()), 0o600)
        _write_file(ik, self.inter_key.private_bytes(serialization.Encoding.PEM,
                                                     serialization.PrivateFormat.TraditionalOpenSSL,
                                                     serialization.NoEncryption()), 0o600)

    def issue(self, names, lifetime):
        """Issue a leaf for names; returns (key_pem, chain_pem)."""
        key = ec.generate_private_key(ec.SECP256R1())
        nb_ts = int(time.time())  # X.509 has second resolution
        nb = datetime.datetime.fromtimestamp(nb_ts, datetime.timezone.utc)
        na = nb + datetime.timedelta(seconds=lifetime)
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(self.inter.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(nb).not_valid_after(na)
                .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.inter_key.public_key()), critical=False)
                .add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                    x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
                    x509.UniformResourceIdentifier("http://e5.i.lencr.emulator.test/"))]), critical=False)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
                .add_extension(x509.CertificatePolicies([x509.PolicyInformation(
                    x509.ObjectIdentifier("2.23.140.1.2.1"), None)]), critical=False)
                .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                    [x509.UniformResourceIdentifier("http://e5.c.lencr.emulator.test/61.crl")],
                    None, None, None)]), critical=False)
                .add_extension(_fake_sct_list_extension(), critical=False)
                .sign(self.inter_key, hashes.SHA384()))
        # SEC1 "EC PRIVATE KEY", like x509.MarshalECPrivateKey in tailscaled.
        key_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
        chain_pem = leaf.public_bytes(serialization.Encoding.PEM) + self.inter_pem
        return key_pem, chain_pem


def _fake_sct_list_extension():
    """An embedded-SCT list (RFC 6962) shaped like the two a Let's Encrypt leaf
    carries.  It is structurally valid TLS encoding with real ECDSA signature
    bytes, but no log ever saw it; its point is a realistic leaf size (a real
    chain is well past Go's 2048-byte buffer, so cert bodies go chunked)."""
    scts = b""
    for _ in range(2):
        log_key = ec.generate_private_key(ec.SECP256R1())
        sig = log_key.sign(secrets.token_bytes(32), ec.ECDSA(hashes.SHA256()))
        body = (b"\x00" + secrets.token_bytes(32) + struct.pack(">Q", int(time.time() * 1000))
                + b"\x00\x00" + b"\x04\x03" + struct.pack(">H", len(sig)) + sig)
        scts += struct.pack(">H", len(body)) + body
    tls = struct.pack(">H", len(scts)) + scts
    # extnValue holds an OCTET STRING wrapping the TLS-encoded list.
    n = len(tls)
    der_len = bytes([n]) if n < 0x80 else (b"\x81" + bytes([n]) if n < 0x100 else b"\x82" + struct.pack(">H", n))
    return x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2"),
                                      b"\x04" + der_len + tls)


def valid_looking_cert_domain(name):
    if (name == "" or ".." in name or any(c in name for c in ":/\\\x00")
            or "." not in name):
        return False
    if name.startswith("*."):
        rest = name[2:]
        if "*" in rest or "." not in rest:
            return False
    elif "*" in name:
        return False
    return True


class CertEntry:
    def __init__(self, storage_key, key_pem, chain_pem):
        self.storage_key = storage_key
        self.key_pem = key_pem
        self.chain_pem = chain_pem
        self.leaf = x509.load_pem_x509_certificate(chain_pem)
        self.not_before = self.leaf.not_valid_before.replace(tzinfo=datetime.timezone.utc).timestamp()
        self.not_after = self.leaf.not_valid_after.replace(tzinfo=datetime.timezone.utc).timestamp()

    def valid_at(self, now):
        # x509 verification: invalid before NotBefore and after NotAfter.
        return self.not_before <= now <= self.not_after

    def info(self):
        try:
            names = self.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
        except x509.ExtensionNotFound:
            names = []
        return {"names": names, "serial": "%x" % self.leaf.serial_number,
                "not_before": int(self.not_before), "not_after": int(self.not_after),
                "sha256": self.leaf.fingerprint(hashes.SHA256()).hex()}


class CertStore:
    """tailscaled's cert cache and renewal logic (spec §3.5):
    - no valid cached cert: the request blocks through issuance;
    - cached, min_validity unmet: synchronous renewal;
    - cached, past NotBefore + 2/3 lifetime: one async renewal, current cert returned;
    - per-domain lock: concurrent callers wait and get the fresh result."""

    def __init__(self, emu, state_dir):
        self.emu = emu
        self.state_dir = state_dir
        self.dir = os.path.join(state_dir, "certs")
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.ca = None
        self.ca_path = os.path.join(state_dir, "ca.pem")
        self.lock = threading.Lock()
        self.domain_locks = {}
        self.cache = {}
        self.renew_at = {}
        self.renewing = set()
        self.issue_count = {}
        self.last_error = {}
        self.generation = 0
        self.ready = threading.Event()
        self.init_error = None
        threading.Thread(target=self._init, daemon=True, name="test-ca").start()

    def _init(self):
        try:
            _load_crypto()
            self.ca = TestCA(self.state_dir)
            self._load_disk_cache()
        except Exception as e:
            self.init_error = "test CA: %r" % e
            log(self.init_error + "\n" + traceback.format_exc())
        finally:
            self.ready.set()

    def wait_ready(self):
        self.ready.wait()
        if self.init_error:
            raise CertError(self.init_error)

    def _load_disk_cache(self):
        for fn in os.listdir(self.dir):
            if fn.endswith(".crt"):
                sk = fn[:-4]
                try:
                    with open(os.path.join(self.dir, fn), "rb") as f:
                        chain = f.read()
                    with open(os.path.join(self.dir, sk + ".key"), "rb") as f:
                        key = f.read()
                    self.cache[sk] = CertEntry(sk, key, chain)
                except Exception as e:  # an unreadable cached cert counts as missing
                    log("ignoring cached cert %s: %s" % (fn, e))

    def _domain_lock(self, sk):
        with self.lock:
            return self.domain_locks.setdefault(sk, threading.Lock())

    def _cached_valid(self, sk, now):
        with self.lock:
            e = self.cache.get(sk)
        if e is not None and e.valid_at(now):
            return e
        return None

    def _should_renew(self, sk, now, entry, min_validity_ns):
        if min_validity_ns != 0 and entry.not_after - now < min_validity_ns / 1e9:
            return True
        with self.lock:
            at = self.renew_at.get(sk)
            if at is None:
                tn = self.emu.tailnet
                at = entry.not_before + (entry.not_after - entry.not_before) * tn.renew_fraction
                self.renew_at[sk] = at
        return now > at

    def resolve(self, domain, tn):
        """The domain checks of tailscaled v1.102 in their order."""
        if not valid_looking_cert_domain(domain):
            raise CertError("invalid domain")
        wildcard = domain.startswith("*.")
        base = domain[2:] if wildcard else domain
        base = base[:-1] if base.endswith(".") else base
        if not tn.has_netmap:
            raise CertError("no netmap available")
        cds = tn.cert_domains or []
        if not cds:
            raise CertError("your Tailscale account does not support getting TLS certs")
        if wildcard:
            if not tn.wildcard:
                raise CertError("wildcard certificates are not enabled for this node")
            if base not in cds:
                raise CertError("invalid domain %s; wildcard certificates are not enabled for this domain"
                                % go_quote("*." + base))
            return "*." + base, "wildcard_." + base, ["*." + base, base]
        if base in cds:
            return base, base, [base]
        raise CertError("invalid domain %s; must be one of %s" % (go_quote(base), go_quote_list(cds)))

    def get(self, domain, min_validity_ns):
        self.wait_ready()
        tn = self.emu.tailnet
        cert_domain, sk, names = self.resolve(domain, tn)
        now = time.time()
        entry = self._cached_valid(sk, now)
        if entry is not None:
            if not self._should_renew(sk, now, entry, min_validity_ns):
                return entry
            if min_validity_ns == 0:
                self._start_async(sk, names, now)
                return entry
            log("cert(%s): starting sync renewal" % cert_domain)
        return self._obtain(sk, names, now, min_validity_ns)

    def _start_async(self, sk, names, now):
        with self.lock:
            if sk in self.renewing:  # v1.102: never two renewals of one domain
                return
            self.renewing.add(sk)
        log("cert(%s): starting async renewal" % sk)

        def run():
            try:
                self._obtain(sk, names, now, 0)
            except CertError as e:
                log("cert(%s): async renewal failed: %s" % (sk, e.text))
            except Exception as e:
                log("cert(%s): async renewal crashed: %r" % (sk, e))
            finally:
                with self.lock:
                    self.renewing.discard(sk)
        threading.Thread(target=run, daemon=True, name="renew-" + sk).start()

    def _obtain(self, sk, names, now, min_validity_ns):
        with self._domain_lock(sk):
            # Someone may have issued while we waited for the lock.  Judge that
            # with the current time: our NotBefore is not backdated like Let's
            # Encrypt's, so a cert issued just now can postdate the request.
            now = max(now, time.time())
            entry = self._cached_valid(sk, now)
            if entry is not None and not self._should_renew(sk, now, entry, min_validity_ns):
                return entry
            gen = self.generation
            fault = self.emu.faults.take("cert", ("ca429", "ca500"))
            tn = self.emu.tailnet
            # The ACME round trips take time; a first issuance blocks the caller.
            if self.emu.stopping.wait(tn.issue_delay):
                raise CertError("tailscaled is shutting down")
            if fault is not None:
                err = self.emu.faults.error_for("cert", fault, names[0])
                with self.lock:
                    self.last_error[sk] = err.text
                raise err
            key_pem, chain_pem = self.ca.issue(names, tn.cert_lifetime)
            entry = CertEntry(sk, key_pem, chain_pem)
            with self.lock:
                if gen != self.generation:
                    raise CertError("certificate store was cleared during issuance")
                _write_file(os.path.join(self.dir, sk + ".crt"), chain_pem, 0o644)
                _write_file(os.path.join(self.dir, sk + ".key"), key_pem, 0o600)
                self.cache[sk] = entry
                self.renew_at.pop(sk, None)
                self.issue_count[sk] = self.issue_count.get(sk, 0) + 1
                self.last_error.pop(sk, None)
            log("cert(%s): issued serial %x, valid until %s" % (
                sk, entry.leaf.serial_number, go_time(entry.not_after)))
            return entry

    def info(self):
        self.wait_ready()
        with self.lock:
            out = {}
            for sk in sorted(set(self.cache) | set(self.issue_count) | set(self.last_error)):
                e = self.cache.get(sk)
                d = e.info() if e else {}
                d.update({"storage_key": sk, "issue_count": self.issue_count.get(sk, 0),
                          "renew_at": self.renew_at.get(sk), "renewing": sk in self.renewing,
                          "last_error": self.last_error.get(sk), "cached": e is not None})
                out[sk.replace("wildcard_.", "*.", 1)] = d
            return out

    def clear(self):
        self.wait_ready()
        with self.lock:
            self.generation += 1
            self.cache.clear()
            self.renew_at.clear()
            self.issue_count.clear()
            self.last_error.clear()
            for fn in os.listdir(self.dir):
                if fn.endswith((".crt", ".key")):
                    os.unlink(os.path.join(self.dir, fn))


# --------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------

FAULT_MODES = ("none", "down", "refuse", "slow", "reset", "garbage", "oversized",
               "http500", "http429", "hang", "ca429", "ca500")
CONN_FAULTS = ("slow", "reset", "hang")
RESPONSE_FAULTS = ("garbage", "oversized", "http500", "http429")


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.cfg = {"mode": "none"}
        self.applied = 0

    def set(self, cfg):
        mode = cfg.get("mode", "none")
        if mode not in FAULT_MODES:
            raise ValueError("unknown fault mode %r; want one of %s" % (mode, ", ".join(FAULT_MODES)))
        c = {"mode": mode,
             "delay": float(cfg.get("delay", 2.0)),
             "retry_after": cfg.get("retry_after", 3600),
             "endpoints": list(cfg["endpoints"]) if cfg.get("endpoints") else None,
             "count": int(cfg["count"]) if cfg.get("count") is not None else None,
             "text": cfg.get("text"),
             "body": cfg.get("body"),
             "size": int(cfg.get("size", 16 << 20)),
             "status": int(cfg.get("status", 200))}
        with self.lock:
            self.cfg = c
        return c

    def get(self):
        with self.lock:
            return dict(self.cfg, applied=self.applied)

    def take(self, endpoint, modes):
        """The active fault if it applies to this request; consumes one of
        its `count` uses."""
        with self.lock:
            c = self.cfg
            if c["mode"] not in modes:
                return None
            if c["endpoints"] and endpoint not in c["endpoints"]:
                return None
            if c["count"] is not None:
                c["count"] -= 1
                if c["count"] <= 0:
                    self.cfg = {"mode": "none"}
            self.applied += 1
            return dict(c)

    @staticmethod
    def error_for(endpoint, fault, domain="node.example.ts.net"):
        mode = fault["mode"]
        if mode in ("http429", "ca429"):
            ra = fault.get("retry_after")
            text = fault.get("text") or (
                ('acme: error code 429 "urn:ietf:params:acme:error:rateLimited": too many '
                 'certificates (5) already issued for this exact set of identifiers in the last '
                 '168h0m0s, retry after %s: see https://letsencrypt.org/docs/rate-limits/'
                 '#new-certificates-per-exact-set-of-identifiers')
                % time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(time.time() + float(ra or 3600)))
                if endpoint == "cert" else "rate limited")
            return CertError(text, 429, ra)
        text = fault.get("text") or (
            ('acme.Client.WaitOrder: 500 urn:ietf:params:acme:error:serverInternal: The service is '
             'down for maintenance or had an internal error. Check https://letsencrypt.status.io/ '
             'for more details.') if endpoint == "cert" else "internal error")
        return CertError(text, 500)


# --------------------------------------------------------------------------
# HTTP/1.x on raw sockets, with Go net/http's observable framing.
# --------------------------------------------------------------------------

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
    if not method or any(c not in _TOKEN_CHARS for c in method):
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
        if not colon or not k or any(c not in _TOKEN_CHARS for c in k):
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


# --------------------------------------------------------------------------
# Listeners
# --------------------------------------------------------------------------

def peer_creds(sock):
    try:
        data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return struct.unpack("3i", data)
    except OSError:
        return (0, -1, -1)


class UnixServer:
    """A unix-socket listener serving HTTP/1.x connections, one thread each."""

    def __init__(self, emu, path, handler, name):
        self.emu = emu
        self.path = path
        self.handler = handler
        self.name = name
        self.lsock = None
        self.bound = False      # the socket file is ours to remove
        self.conns = set()
        self.lock = threading.Lock()

    def open(self):
        d = os.path.dirname(self.path) or "."
        if not os.path.isdir(d):
            # tailscaled: MkdirAll(dir, 0755)
            os.makedirs(d, mode=0o755, exist_ok=True)
            os.chmod(d, 0o755)
        if os.path.lexists(self.path):
            # Like safesocket: a live daemon keeps its socket, a stale file goes.
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.path)
                in_use = True
            except OSError:
                in_use = False
            finally:
                probe.close()
            if in_use:
                raise RuntimeError("%s is in use by another process" % self.path)
            os.unlink(self.path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(self.path)
        self.bound = True
        os.chmod(self.path, 0o666)  # peer credentials authorize, not file modes
        s.listen(128)
        s.settimeout(0.2)
        self.lsock = s
        threading.Thread(target=self._accept_loop, args=(s,), daemon=True,
                         name="accept-" + self.name).start()

    @property
    def listening(self):
        return self.lsock is not None

    def close(self, unlink=True, drop_conns=True):
        s, self.lsock = self.lsock, None
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        if unlink and self.bound:
            self.bound = False
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        if drop_conns:
            with self.lock:
                conns = list(self.conns)
            for c in conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _accept_loop(self, s):
        while self.lsock is s:
            try:
                c, _ = s.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            c.settimeout(None)
            with self.lock:
                self.conns.add(c)
            threading.Thread(target=self._serve_conn, args=(c,), daemon=True,
                             name="conn-" + self.name).start()

    def _serve_conn(self, c):
        creds = peer_creds(c)
        reader = SockReader(c)
        try:
            while not self.emu.stopping.is_set():
                try:
                    req = parse_request(reader)
                except BadRequest as e:
                    self.handler.bad_request(c, creds, e)
                    return
                req.reader, req.sock, req.creds = reader, c, creds
                if getattr(req, "expect_failed", False):
                    w = ResponseWriter(c, req)
                    w.set("Connection", "close")
                    w.write_header(417)
                    w.finish()
                    return
                w = ResponseWriter(c, req)
                keep = self.handler.serve(req, w)
                if keep is False or w.close_after:
                    return
                # Go drains a small unread body to reuse the connection.
                if not req.body_consumed and req.content_length != 0:
                    if req.expect_continue and not req.continue_sent:
                        return
                    try:
                        read_body(reader, req.content_length, GO_MAX_POST_HANDLER_READ)
                    except BadRequest:
                        return
        except ClientGone:
            pass
        except Exception:
            log("connection handler crashed:\n" + traceback.format_exc())
        finally:
            with self.lock:
                self.conns.discard(c)
            try:
                c.close()
            except OSError:
                pass


def conn_closed(sock):
    """True once the peer has closed its end (used while streaming/hanging)."""
    try:
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        return data == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


# --------------------------------------------------------------------------
# The LocalAPI
# --------------------------------------------------------------------------

def _perm_read(text):
    return lambda api, req, p: None if p["read"] else text


def _perm_write(text):
    return lambda api, req, p: None if p["write"] else text


def _perm_cert(api, req, p):
    return None if (p["write"] or p["cert"]) else "cert access denied"


def _perm_prefs(api, req, p):
    if not p["read"]:
        return "prefs access denied"
    if req.method == "PATCH" and not p["write"]:
        return "prefs write access denied"
    return None


def _perm_serve_config(api, req, p):
    if req.method == "POST":
        return None if p["write"] else "serve config denied"
    return None if p["read"] else "serve config denied"


class LocalAPI:
    def __init__(self, emu):
        self.emu = emu
        # name -> (permission check, handler); names ending in "/" are prefixes.
        self.routes = {
            "whois": (_perm_read("whois access denied"), self.serve_whois),
            "status": (_perm_read("status access denied"), self.serve_status),
            "prefs": (_perm_prefs, self.serve_prefs),
            "watch-ipn-bus": (_perm_read("watch ipn bus access denied"), self.serve_watch),
            "cert-domains": (_perm_read("cert-domains access denied"), self.serve_cert_domains),
            "cert/": (_perm_cert, self.serve_cert),
            "set-dns": (_perm_write("access denied"), self.serve_set_dns),
            "dns-config": (_perm_read("dns-config access denied"), self.serve_dns_config),
            "user-profile": (_perm_read("user-profile access denied"), self.serve_user_profile),
            "peer-by-id": (_perm_read("peer-by-id access denied"), self.serve_peer_by_id),
            "serve-config": (_perm_serve_config, self.serve_serve_config),
            # Registered so that routing answers like tailscaled (403 rather
            # than 404); the emulator does not implement what they do.
            "logout": (_perm_write("logout access denied"), self.serve_not_emulated),
            "start": (_perm_write("access denied"), self.serve_not_emulated),
            "login-interactive": (_perm_write("login access denied"), self.serve_not_emulated),
            "profiles/": (_perm_write("profiles access denied"), self.serve_not_emulated),
            "id-token": (_perm_write("id-token access denied"), self.serve_not_emulated),
            "goroutines": (_perm_write("goroutine dump access denied"), self.serve_not_emulated),
            "metrics": (_perm_write("metric access denied"), self.serve_not_emulated),
        }

    # --- routing and bookkeeping ---

    def route(self, path):
        suff = path[len("/localapi/v0/"):] if path.startswith("/localapi/v0/") else None
        if suff is None:
            return None, None
        if suff in self.routes and not suff.endswith("/"):
            return suff, self.routes[suff]
        i = suff.find("/")
        if i != -1 and suff[:i + 1] in self.routes:
            return suff[:i], self.routes[suff[:i + 1]]
        if suff in self.routes:
            return suff, self.routes[suff]
        return None, None

    def endpoint_name(self, req):
        if req.method == "CONNECT":
            return "connect"
        if req.path == "/":
            return "root"
        name, _ = self.route(req.path)
        return name or "not-found"

    def permissions(self, creds):
        tn = self.emu.tailnet
        uid = creds[1]
        write = uid in tn.write_uids or uid == os.geteuid()
        op = resolve_uid(tn.operator)
        if op is None:
            op = resolve_uid(self.emu.prefs.get("OperatorUser") or None)
        if op is not None and uid == op:
            write = True
        pcu = tn.permit_cert_uid
        if pcu is None:  # like tailscaled, read from the environment per request
            pcu = os.environ.get("TS_PERMIT_CERT_UID", "")
        cert = uid in tn.cert_uids or (resolve_uid(pcu) is not None and uid == resolve_uid(pcu))
        return {"read": True, "write": write, "cert": cert}

    def bad_request(self, sock, creds, err):
        req = getattr(err, "req", None) or Request()
        self.emu.record({"time": time.time(), "method": req.method, "target": req.target,
                         "version": req.proto, "path": req.path, "host": req.host,
                         "headers": [[k, v] for k, v in req.raw_headers],
                         "uid": creds[1], "gid": creds[2], "pid": creds[0],
                         "status": err.code, "endpoint": "bad-request",
                         "error": err.text or "malformed request", "fault": None})
        write_bad_request(sock, err)

    def serve(self, req, w):
        emu = self.emu
        endpoint = self.endpoint_name(req)
        rec = {"time": time.time(), "method": req.method, "target": req.target,
               "version": req.proto, "path": req.path, "host": req.host,
               "headers": [[k, v] for k, v in req.raw_headers],
               "uid": req.creds[1], "gid": req.creds[2], "pid": req.creds[0],
               "endpoint": endpoint, "status": None, "fault": None}
        # Connection-level faults: the daemon misbehaves before HTTP does.
        f = emu.faults.take(endpoint, CONN_FAULTS)
        if f is not None:
            rec["fault"] = f["mode"]
            if f["mode"] == "reset":
                emu.record(rec)
                try:
                    req.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return False
            if f["mode"] == "hang":
                emu.record(rec)
                while not emu.stopping.is_set() and not conn_closed(req.sock):
                    emu.stopping.wait(0.1)
                return False
            if f["mode"] == "slow":
                if emu.stopping.wait(f["delay"]):
                    return False
        recorded = False
        try:
            self._dispatch(req, w, rec, endpoint)
            if rec["status"] is None:
                rec["status"] = w.status if w.status is not None else 200
            # Recorded before the response completes, so a test that has the
            # response always finds the request in /requests and /counters.
            emu.record(rec)
            recorded = True
            w.finish()
        except ClientGone:
            rec["client_gone"] = True
            if not recorded:
                emu.record(rec)
            return False
        rec["body_bytes"] = w.body_len
        rec["chunked"] = w.chunking
        return True

    def _dispatch(self, req, w, rec, endpoint):
        emu = self.emu
        # ipnserver.Server.ServeHTTP
        if req.method == "CONNECT":
            http_error(w, "bad method for platform", 405)
            return
        if req.path.startswith("/localapi/"):
            reason = req.get("X-Tailscale-Reason")
            if reason:
                try:
                    base64.b64decode(reason, validate=True)
                except (binascii.Error, ValueError):
                    http_error(w, "invalid reason header", 400)
                    return
            perms = self.permissions(req.creds)
            rec["perms"] = perms
            # localapi.Handler.ServeHTTP
            if emu.mode == "strict":
                if req.get("Referer") or req.get("Origin") or req.host not in ("", LOCALAPI_HOST):
                    emu.count_invalid_host()
                    http_error(w, "invalid localapi request", 403)
                    return
            tn = emu.tailnet
            w.set("Tailscale-Version", tn.version)
            w.set("Tailscale-Cap", tn.capver)
            w.set("Content-Security-Policy", CSP)
            w.set("X-Frame-Options", "DENY")
            w.set("X-Content-Type-Options", "nosniff")
            name, route = self.route(req.path)
            if route is None:
                http_error(w, "404 page not found", 404)
                return
            check, handler = route
            denied = check(self, req, perms)
            if denied:
                http_error(w, denied, 403)
                return
            f = emu.faults.take(endpoint, RESPONSE_FAULTS)
            if f is not None:
                rec["fault"] = f["mode"]
                self.serve_fault(req, w, endpoint, f)
                return
            handler(req, w)
            return
        if req.path != "/":
            http_error(w, "404 page not found", 404)
            return
        w.write(ROOT_BANNER)

    # --- faults at the HTTP level ---

    def serve_fault(self, req, w, endpoint, f):
        mode = f["mode"]
        if mode in ("http500", "http429"):
            err = Faults.error_for(endpoint, f)
            if err.retry_after is not None and mode == "http429":
                w.set("Retry-After", int(float(err.retry_after)))
            http_error(w, err.text, err.status)
            return
        ctype = "text/plain" if endpoint == "cert" else "application/json"
        w.set("Content-Type", ctype)
        w.write_header(f.get("status") or 200)
        if mode == "garbage":
            body = f.get("body")
            if body is None:
                body = ("-----BEGIN EC PRIVATE KEY-----\nTm90IGEga2V5IGF0IGFsbA==\n-----END CERT"
                        if endpoint == "cert" else
                        '{"Node": {"ID": 5207519264561923, "Name": "laptop.tail1234.ts.net.", "Addr')
                w.write(body.encode() + b"\x00\xff\xfe<garbage>")
            else:
                w.write(body.encode("utf-8", "surrogateescape"))
            return
        # oversized: a body far beyond any sane client limit, streamed.
        size = f.get("size") or (16 << 20)
        head = b'{"Padding": "'
        w.write(head)
        block = b"A" * 65536
        left = size - len(head)
        while left > 0:
            if self.emu.stopping.is_set():
                raise ClientGone()
            w.write(block[:min(left, len(block))])
            left -= len(block)

    # --- handlers ---

    def serve_whois(self, req, w):
        tn = self.emu.tailnet
        v = req.form_value("addr")
        if v == "":
            return http_error(w, "missing 'addr' parameter", 400)
        node = None
        if v.startswith("nodekey:"):
            if not re.fullmatch(r"nodekey:[0-9a-fA-F]{64}", v):
                return http_error(w, "invalid nodekey in 'addr' parameter", 400)
            node = tn.by_key.get(v.lower()) if tn.has_netmap else None
        else:
            try:
                addr, port = go_parse_addr(v), 0
            except ValueError:
                try:
                    addr, port = go_parse_addrport(v)
                except ValueError:
                    return http_error(w, "invalid 'addr' parameter", 400)
            svc = req.form_value("svc_name")
            if svc and not re.fullmatch(r"svc:[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", svc):
                return http_error(w, "invalid svc_name", 400)
            dst = req.form_value("dst_ip")
            if dst:
                try:
                    go_parse_addr(dst)
                except ValueError:
                    return http_error(w, "invalid dst_ip", 400)
            node = self.emu.whois_lookup(tn, req.form_value("proto"), unmap_addr(addr), port)
        if node is None:
            return http_error(w, "no match for IP:port", 404)
        res = {"Node": node["json"], "UserProfile": tn.users[node["user_id"]],
               "CapMap": tn.peer_cap_map(node, req.form_value("svc_name"), req.form_value("dst_ip"))}
        w.set("Content-Type", "application/json")
        w.write(go_json(res, indent=True))

    def serve_status(self, req, w):
        tn = self.emu.tailnet
        w.set("Content-Type", "application/json")
        st = tn.status_json(def_bool(req.form_value("peers"), True))
        w.write(go_json(st, indent=True, newline=True))

    def serve_cert_domains(self, req, w):
        tn = self.emu.tailnet
        doms = sorted(tn.cert_domains) if (tn.has_netmap and tn.cert_domains) else None
        w.set("Content-Type", "application/json")
        w.write(go_json(doms, newline=True))

    def serve_prefs(self, req, w):
        if req.method == "PATCH":
            try:
                mp = json.loads(req.read_body() or b"{}")
                if not isinstance(mp, dict):
                    raise ValueError("not an object")
            except (ValueError, BadRequest) as e:
                return http_error(w, str(e), 400)
            self.emu.patch_prefs(mp)
        elif req.method not in ("GET", "HEAD"):
            return http_error(w, "unsupported method", 405)
        w.set("Content-Type", "application/json")
        w.write(go_json(self.emu.prefs_json(), indent=True, newline=True))

    def serve_watch(self, req, w):
        mask_s = req.form_value("mask")
        mask = 0
        if mask_s:
            if not mask_s.isdigit() or int(mask_s) >= 1 << 64:
                return http_error(w, "bad mask", 400)
            mask = int(mask_s)
        w.set("Content-Type", "application/json")
        q = queue.Queue()
        self.emu.add_watcher(q)
        try:
            w.flush()  # headers go out before the first notification
            tn = self.emu.tailnet
            if mask & (2 | 4 | 8):
                ini = {"Version": tn.version}
                if mask & 2:
                    ini["SessionID"] = secrets.token_hex(8)
                    ini["State"] = BACKEND_STATES.index(tn.backend_state)
                if mask & 4:
                    ini["Prefs"] = self.emu.prefs_json()
                if mask & 8 and tn.has_netmap:
                    ini["NetMap"] = tn.netmap_json()
                w.write(go_json(ini, newline=True))
                w.flush()
            while not self.emu.stopping.is_set():
                try:
                    n = q.get(timeout=0.2)
                except queue.Empty:
                    if conn_closed(req.sock):
                        raise ClientGone()
                    continue
                if "NetMap" in n and mask & 8192:
                    continue
                w.write(go_json(n, newline=True))
                w.flush()
            raise ClientGone()  # shutting down: drop the stream like a dying daemon
        finally:
            self.emu.remove_watcher(q)

    def serve_cert(self, req, w):
        domain = req.path[len("/localapi/v0/cert/"):]
        q = req.query
        mv = (q.get("min_validity") or [""])[0]
        min_validity = 0
        if mv:
            try:
                min_validity = go_parse_duration(mv)
            except ValueError as e:
                return http_error(w, "invalid validity parameter: %s" % e, 400)
        try:
            entry = self.emu.certs.get(domain, min_validity)
        except CertError as e:
            if e.status == 429 and e.retry_after is not None:
                w.set("Retry-After", int(float(e.retry_after)))
            return http_error(w, e.text, e.status)
        w.set("Content-Type", "text/plain")
        typ = (q.get("type") or [""])[0]
        if typ in ("", "crt", "cert"):
            w.write(entry.chain_pem)
        elif typ == "key":
            w.write(entry.key_pem)
        elif typ == "pair":
            # Two writes, as tailscaled does: the key, then the chain.
            w.write(entry.key_pem)
            w.write(entry.chain_pem)
        else:
            http_error(w, 'invalid type; want "cert" (default), "key", or "pair"', 400)

    def serve_set_dns(self, req, w):
        if req.method != "POST":
            return http_error(w, "want POST", 400)
        name, value = req.form_value("name"), req.form_value("value")
        tn = self.emu.tailnet
        ok = tn.has_netmap and any(name == "_acme-challenge." + d for d in (tn.cert_domains or []))
        w.set("Content-Type", "application/json")
        if not ok:
            w.write_header(500)
            w.write(go_json({"error": "SetDNS %s => %s: not allowed by control" % (
                go_quote(name), go_quote(value))}, newline=True))
            return
        self.emu.dns_records.append({"name": name, "value": value, "time": time.time()})
        w.write(b"{}\n")

    def serve_dns_config(self, req, w):
        tn = self.emu.tailnet
        if not tn.has_netmap:
            return http_error(w, "no netmap", 503)
        w.set("Content-Type", "application/json")
        w.write(go_json(tn.dns_config_json(), newline=True))

    def serve_user_profile(self, req, w):
        tn = self.emu.tailnet
        s = req.form_value("id")
        if not re.fullmatch(r"-?\d+", s or "") or not -(1 << 63) <= int(s) < (1 << 63):
            return http_error(w, "invalid 'id' parameter", 400)
        up = tn.users.get(int(s)) if tn.has_netmap else None
        if up is None:
            return http_error(w, "no user with that UserID", 404)
        w.set("Content-Type", "application/json")
        w.write(go_json(up, newline=True))

    def serve_peer_by_id(self, req, w):
        tn = self.emu.tailnet
        s = req.form_value("id")
        if not re.fullmatch(r"-?\d+", s or "") or not -(1 << 63) <= int(s) < (1 << 63):
            return http_error(w, "invalid 'id' parameter", 400)
        n = tn.by_id.get(int(s)) if tn.has_netmap else None
        if n is None:
            return http_error(w, "no peer with that NodeID", 404)
        w.set("Content-Type", "application/json")
        w.write(go_json(n["json"], newline=True))

    def serve_serve_config(self, req, w):
        emu = self.emu
        if req.method == "POST":
            body = req.read_body()
            cur = go_json(emu.serve_config)
            etag = hashlib.sha256(cur).hexdigest()
            im = req.get("If-Match")
            if im and im != etag:
                return http_error(w, "preconditions failed: etag mismatch", 412)
            try:
                emu.serve_config = json.loads(body or b"null")
            except ValueError as e:
                return http_error(w, str(e), 400)
            return
        if req.method != "GET":
            return http_error(w, "method not allowed", 405)
        cur = go_json(emu.serve_config)
        w.set("Etag", hashlib.sha256(cur).hexdigest())
        w.set("Content-Type", "application/json")
        w.write(cur)

    def serve_not_emulated(self, req, w):
        http_error(w, "not implemented by the tailscaled emulator", 501)


# --------------------------------------------------------------------------
# The control channel (tests only; no tailscaled equivalent)
# --------------------------------------------------------------------------

class Control:
    def __init__(self, emu):
        self.emu = emu

    def bad_request(self, sock, creds, err):
        write_bad_request(sock, err)

    def serve(self, req, w):
        try:
            code, obj = self.dispatch(req)
        except ValueError as e:
            code, obj = 400, {"error": str(e)}
        except Exception as e:
            log("control error:\n" + traceback.format_exc())
            code, obj = 500, {"error": repr(e)}
        body = json.dumps(obj, indent=1, sort_keys=False).encode() + b"\n"
        w.set("Content-Type", "application/json")
        w.set("Content-Length", len(body))
        w.write_header(code)
        w.write(body)
        w.finish()
        return True

    def _json_body(self, req):
        b = req.read_body()
        if not b:
            return {}
        try:
            return json.loads(b)
        except ValueError as e:
            raise ValueError("bad JSON body: %s" % e)

    def dispatch(self, req):
        emu = self.emu
        m, p = req.method, req.path.rstrip("/") or "/"
        q = req.query
        if p == "/health":
            return 200, {"ok": True, "pid": os.getpid(), "socket": emu.socket_path,
                         "listening": emu.api_server.listening, "mode": emu.mode}
        if p == "/counters" and m == "GET":
            return 200, emu.counters_snapshot()
        if p == "/counters/reset" and m == "POST":
            emu.reset_counters()
            return 200, {"ok": True}
        if p == "/requests" and m == "GET":
            last = int((q.get("last") or ["0"])[0] or 0)
            with emu.lock:
                reqs = list(emu.requests)
            return 200, reqs[-last:] if last > 0 else reqs
        if p == "/requests/reset" and m == "POST":
            with emu.lock:
                emu.requests.clear()
            return 200, {"ok": True}
        if p == "/tailnet":
            if m == "GET":
                return 200, emu.tailnet.raw
            if m == "POST":
                emu.set_tailnet(self._json_body(req))
                return 200, {"ok": True}
            if m == "PATCH":
                emu.set_tailnet(deep_merge(emu.tailnet.raw, self._json_body(req)))
                return 200, {"ok": True}
        if p.startswith("/node/") or p == "/node":
            name = go_unescape(p[len("/node/"):], False) if p.startswith("/node/") else None
            raw = copy.deepcopy(emu.tailnet.raw)
            nodes = raw.get("nodes")
            if isinstance(nodes, dict):
                keys = list(nodes)
            else:
                nodes = raw["nodes"] = list(nodes or [])
                keys = list(range(len(nodes)))
            key = next((k for k in keys if (k if isinstance(nodes, dict) else nodes[k].get("name")) == name), None)
            if m == "POST" and name is None:
                body = self._json_body(req)
                if isinstance(nodes, dict):
                    if "name" not in body:
                        raise ValueError("a new node needs a name")
                    nodes[body.pop("name")] = body
                else:
                    nodes.append(body)
                emu.set_tailnet(raw)
                return 200, {"ok": True}
            if key is None:
                return 404, {"error": "no node named %r" % name}
            if m == "GET":
                node = emu.tailnet.by_name[name]
                return 200, {"description": nodes[key], "json": node["json"]}
            if m == "PATCH":
                for k, v in self._json_body(req).items():
                    # null removes a key, except where null is a value of its own
                    if v is None and k not in ("cap_map", "key_expiry", "node_cap_map", "online"):
                        nodes[key].pop(k, None)
                    else:
                        nodes[key][k] = v
                emu.set_tailnet(raw)
                return 200, {"ok": True}
            if m == "DELETE":
                del nodes[key]
                emu.set_tailnet(raw)
                return 200, {"ok": True}
        if p == "/fault":
            if m == "GET":
                return 200, emu.faults.get()
            if m in ("POST", "PUT"):
                return 200, emu.set_fault(self._json_body(req))
            if m == "DELETE":
                return 200, emu.set_fault({"mode": "none"})
        if p == "/proxymap":
            if m == "GET":
                with emu.lock:
                    return 200, [dict(v, key=k) for k, v in emu.proxymap.items()]
            if m == "POST":
                return 200, emu.add_proxymap(self._json_body(req))
            if m == "DELETE":
                b = self._json_body(req)
                emu.del_proxymap(b.get("addr"), b.get("proto"))
                return 200, {"ok": True}
        if p == "/certs" and m == "GET":
            return 200, emu.certs.info()
        if p == "/certs/clear" and m == "POST":
            emu.certs.clear()
            return 200, {"ok": True}
        if p == "/backend":
            if m == "GET":
                t = emu.tailnet
                return 200, {"state": t.backend_state, "netmap": t.has_netmap}
            if m == "POST":
                b = self._json_body(req)
                patch = {"backend_state": b.get("state", emu.tailnet.backend_state),
                         "netmap": b.get("netmap")}
                raw = dict(emu.tailnet.raw, **patch)
                emu.set_tailnet(raw, backend_only=True)
                return 200, {"ok": True}
        if p == "/dns" and m == "GET":
            return 200, list(emu.dns_records)
        if p == "/prefs" and m == "GET":
            return 200, emu.prefs_json()
        return 404, {"error": "no control endpoint %s %s" % (m, p)}


# --------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------

class Emulator:
    def __init__(self, socket_path, tailnet, state_dir, control_path, mode):
        self.socket_path = socket_path
        self.control_path = control_path
        self.state_dir = state_dir
        self.mode = mode
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.tailnet = tailnet
        self.faults = Faults()
        self.requests = []
        self.max_requests = 2000
        self.proxymap = {}
        self.watchers = set()
        self.dns_records = []
        self.serve_config = None
        self.prefs = {}
        self.reset_counters()
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        self.certs = CertStore(self, state_dir)
        self.localapi = LocalAPI(self)
        self.api_server = UnixServer(self, socket_path, self.localapi, "localapi")
        self.control_server = UnixServer(self, control_path, Control(self), "control") if control_path else None

    # --- bookkeeping ---

    def reset_counters(self):
        with self.lock:
            self.counters = {"total": 0, "by_endpoint": {}, "by_status": {}, "invalid_host": 0,
                             "by_uid": {}}
            self.requests = []

    def counters_snapshot(self):
        with self.lock:
            return copy.deepcopy(self.counters)

    def count_invalid_host(self):
        with self.lock:
            self.counters["invalid_host"] += 1

    def record(self, rec):
        with self.lock:
            c = self.counters
            c["total"] += 1
            ep = rec.get("endpoint") or "-"
            c["by_endpoint"][ep] = c["by_endpoint"].get(ep, 0) + 1
            st = str(rec["status"]) if rec.get("status") is not None else "none"
            c["by_status"][st] = c["by_status"].get(st, 0) + 1
            uid = str(rec.get("uid"))
            c["by_uid"][uid] = c["by_uid"].get(uid, 0) + 1
            self.requests.append(rec)
            if len(self.requests) > self.max_requests:
                del self.requests[:len(self.requests) - self.max_requests]
        log("%s uid=%s %s %s -> %s%s" % (rec.get("version", ""), rec.get("uid"), rec.get("method"),
                                         rec.get("target"), rec.get("status"),
                                         " fault=" + rec["fault"] if rec.get("fault") else ""))

    # --- state changes ---

    def set_tailnet(self, raw, backend_only=False):
        old = self.tailnet
        tn = Tailnet(raw)  # raises TailnetError (a ValueError) -> 400
        self.tailnet = tn
        if tn.backend_state != old.backend_state:
            self.notify({"State": BACKEND_STATES.index(tn.backend_state)})
        if not backend_only or tn.has_netmap != old.has_netmap:
            nm = tn.netmap_json()
            if nm is not None:
                self.notify({"NetMap": nm})

    def patch_prefs(self, mp):
        changed = {}
        for k, v in mp.items():
            if k.endswith("Set") and v is True and k[:-3] in mp:
                changed[k[:-3]] = mp[k[:-3]]
        self.prefs.update(changed)
        if changed:
            self.notify({"Prefs": self.prefs_json()})

    def prefs_json(self):
        tn = self.tailnet
        s = tn.self_node
        p = {"ControlURL": "https://controlplane.tailscale.com", "RouteAll": False,
             "ExitNodeID": "", "ExitNodeIP": "", "ExitNodeAllowLANAccess": False,
             "CorpDNS": True, "RunSSH": False, "RunWebClient": False,
             "WantRunning": tn.backend_state in ("Running", "Starting"),
             "LoggedOut": not tn.has_netmap, "ShieldsUp": False, "AdvertiseTags": None,
             "Hostname": "", "NotepadURLs": False, "AdvertiseRoutes": None,
             "AdvertiseServices": None, "NoSNAT": False, "NoStatefulFiltering": True,
             "NetfilterMode": 2, "OperatorUser": "", "ProfileName": "",
             "AutoUpdate": {"Check": True, "Apply": None}, "AppConnector": {"Advertise": False},
             "PostureChecking": False, "NetfilterKind": "", "DriveShares": None,
             "Config": {"PrivateNodeKey": "privkey:" + "0" * 64,
                        "OldPrivateNodeKey": "privkey:" + "0" * 64,
                        "UserProfile": tn.users.get(s["user_id"], {}) if tn.has_netmap else {},
                        "NetworkLockKey": "nlpriv:" + "0" * 64,
                        "NodeID": s["stable_id"] if tn.has_netmap else ""}}
        p.update(tn.prefs_overrides)
        p.update(self.prefs)
        return p

    def set_fault(self, cfg):
        old = self.faults.get()["mode"]
        c = self.faults.set(cfg)
        mode = c["mode"]
        if mode == "down":
            self.api_server.close(unlink=True)
        elif mode == "refuse":
            # the daemon died and left its socket file behind
            self.api_server.close(unlink=False)
        elif old in ("down", "refuse") or not self.api_server.listening:
            self.api_server.open()
        log("fault: %s" % mode)
        return self.faults.get()

    def add_proxymap(self, b):
        try:
            a, port = go_parse_addrport(b["addr"])
        except (KeyError, ValueError) as e:
            raise ValueError("proxymap needs addr as ip:port: %s" % e)
        tn = self.tailnet
        if b.get("ip"):
            ip = b["ip"]
        else:
            node = tn.by_name.get(b.get("node"))
            if node is None:
                raise ValueError("proxymap: no node named %r" % b.get("node"))
            ip = str(node["addresses"][0])
        proto = b.get("proto", "tcp")
        if proto not in ("tcp", "udp"):
            raise ValueError("proto must be tcp or udp")
        key = "%s/%s" % (proto, addrport_str(unmap_addr(a), port))
        with self.lock:
            self.proxymap[key] = {"addr": addrport_str(unmap_addr(a), port), "proto": proto,
                                  "ip": ip, "node": b.get("node")}
        return {"ok": True, "key": key}

    def del_proxymap(self, addr=None, proto=None):
        with self.lock:
            if addr is None:
                self.proxymap.clear()
                return
            a, port = go_parse_addrport(addr)
            for pr in ([proto] if proto else ["tcp", "udp"]):
                self.proxymap.pop("%s/%s" % (pr, addrport_str(unmap_addr(a), port)), None)

    def whois_lookup(self, tn, proto, addr, port):
        """LocalBackend.WhoIs: tailnet IPs match on the IP alone; otherwise an
        ip:port that tailscaled proxied (userspace networking) is mapped back."""
        node = tn.by_addr.get(addr_key(addr))
        if node is None:
            if port == 0:
                return None
            protos = [proto] if proto else ["tcp", "udp"]
            ip = None
            with self.lock:
                for pr in protos:
                    e = self.proxymap.get("%s/%s" % (pr, addrport_str(addr, port)))
                    if e:
                        ip = e["ip"]
                        break
            if ip is None:
                return None
            node = tn.by_addr.get(addr_key(ipaddress.ip_address(ip)))
            if node is None:
                return None
        if not tn.has_netmap:
            return None
        if node["user_id"] not in tn.users:
            return None
        return node

    # --- watch-ipn-bus ---

    def add_watcher(self, q):
        with self.lock:
            self.watchers.add(q)

    def remove_watcher(self, q):
        with self.lock:
            self.watchers.discard(q)

    def notify(self, n):
        with self.lock:
            ws = list(self.watchers)
        for q in ws:
            q.put(n)

    # --- lifecycle ---

    def start(self):
        self.api_server.open()
        if self.control_server:
            self.control_server.open()

    def stop(self):
        self.stopping.set()
        self.api_server.close(unlink=True)
        if self.control_server:
            self.control_server.close(unlink=True)


def load_tailnet(path):
    with open(path, encoding="utf-8") as f:
        return Tailnet(json.load(f))


def main(argv=None):
    ap = argparse.ArgumentParser(description="tailscaled LocalAPI emulator for tests")
    ap.add_argument("--socket", required=True, help="LocalAPI unix socket path")
    ap.add_argument("--tailnet", default=DEFAULT_TAILNET, help="tailnet description (JSON)")
    ap.add_argument("--state-dir", required=True, help="state dir: test CA, certs/")
    ap.add_argument("--control", help="control channel unix socket path")
    ap.add_argument("--mode", choices=("strict", "legacy"), default="strict",
                    help="legacy = pre-1.32.3: any Host, Referer and Origin accepted")
    ap.add_argument("--ready-file", help="written (JSON) once both sockets listen")
    args = ap.parse_args(argv)

    try:
        tn = load_tailnet(args.tailnet)
    except (OSError, ValueError) as e:
        sys.stderr.write("tailscaled-emu: cannot load tailnet %s: %s\n" % (args.tailnet, e))
        return 2
    emu = Emulator(os.path.abspath(args.socket), tn, os.path.abspath(args.state_dir),
                   os.path.abspath(args.control) if args.control else None, args.mode)

    def on_signal(signum, frame):
        emu.stopping.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        emu.start()
    except (OSError, RuntimeError) as e:
        sys.stderr.write("tailscaled-emu: cannot listen: %s\n" % e)
        emu.stop()
        return 1
    info = {"pid": os.getpid(), "socket": emu.socket_path, "control": emu.control_path,
            "ca": emu.certs.ca_path, "mode": emu.mode}
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.replace(tmp, args.ready_file)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    log("listening on %s (mode %s), control %s" % (emu.socket_path, emu.mode, emu.control_path))
    while not emu.stopping.wait(0.5):
        pass
    emu.stop()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
