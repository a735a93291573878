"""The control channel (tests only; no tailscaled equivalent)."""

import copy
import json
import os
import traceback

from .gocompat import go_unescape
from .http1 import write_bad_request
from .log import log
from .tailnet import deep_merge


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
