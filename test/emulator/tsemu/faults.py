"""Faults: what the control channel injects into the LocalAPI and the CA."""

import threading
import time

from .certs import CertError


FAULT_MODES = ("none", "down", "refuse", "slow", "reset", "garbage", "oversized",
               "http500", "http429", "hang", "ca429", "ca500", "cabadchain")
BAD_CHAINS = ("leaf-only", "unrelated-ca", "cn-only")
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
             "status": int(cfg.get("status", 200)),
             "chain": cfg.get("chain", "leaf-only")}
        if mode == "cabadchain" and c["chain"] not in BAD_CHAINS:
            raise ValueError("unknown chain %r; want one of %s" % (c["chain"], ", ".join(BAD_CHAINS)))
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
