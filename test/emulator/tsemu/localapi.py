"""The LocalAPI: routing, tailscaled's request checks, permissions and handlers."""

import base64
import binascii
import hashlib
import json
import os
import queue
import re
import secrets
import socket
import time

from .certs import CertError
from .faults import CONN_FAULTS, RESPONSE_FAULTS, Faults
from .gocompat import (def_bool, go_json, go_parse_addr, go_parse_addrport, go_parse_duration,
                       go_quote, resolve_uid, unmap_addr)
from .http1 import BadRequest, ClientGone, Request, http_error, write_bad_request
from .listeners import conn_closed
from .tailnet import BACKEND_STATES


LOCALAPI_HOST = "local-tailscaled.sock"
CSP = ("default-src 'none'; frame-ancestors 'none'; script-src 'none'; "
       "script-src-elem 'none'; script-src-attr 'none'")
ROOT_BANNER = b"<html><title>Tailscale</title><body><h1>Tailscale</h1>This is the local Tailscale daemon.\n"


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
