"""The emulator: the LocalAPI and control listeners, the state they share, and main()."""

import argparse
import copy
import ipaddress
import json
import os
import signal
import sys
import threading

from .certs import CertStore
from .control import Control
from .faults import Faults
from .gocompat import addr_key, addrport_str, go_parse_addrport, unmap_addr
from .listeners import UnixServer
from .localapi import LocalAPI
from .log import log
from .tailnet import BACKEND_STATES, Tailnet


# the program's directory (test/emulator), where the sample tailnet lives
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_TAILNET = os.path.join(HERE, "tailnet.json")


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
