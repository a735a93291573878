"""Load generator for fault_soak.py, run inside the tailnet network namespace
(ip netns exec ...): worker threads send requests from the sample tailnet's
client addresses over keep-alive connections (plain and TLS) and print one
JSON line per request:

  {"t0": start, "t1": end, "c": client, "p": path, "s": status (0 = failed),
   "ok": body held the protected content, "tls": bool, "fp": served cert
   SHA-256 (TLS connections, first request only), "err": text}

Job (JSON on stdin): server, port, tls_port, sni, cafile, clients {name: ip},
paths [..], duration, workers, secret."""

import hashlib
import http.client
import json
import random
import socket
import ssl
import sys
import threading
import time

lock = threading.Lock()


def emit(rec):
    line = json.dumps(rec)
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Conn:
    def __init__(self, job, client, tls):
        self.job, self.client, self.tls = job, client, tls
        self.c = None
        self.uses = 0
        self.fp = None

    def open(self):
        j = self.job
        src = (j["clients"][self.client], 0)
        if self.tls:
            # TCP to the tailnet address, TLS (SNI and name check) for the
            # managed name, as a browser resolving it through MagicDNS does
            ctx = ssl.create_default_context(cafile=j["cafile"])
            raw = socket.create_connection((j["server"], j["tls_port"]), timeout=20,
                                           source_address=src)
            try:
                tls = ctx.wrap_socket(raw, server_hostname=j["sni"])
            except (OSError, ssl.SSLError):
                raw.close()
                raise
            c = http.client.HTTPConnection(j["server"], j["tls_port"], timeout=20)
            c.sock = tls
            der = tls.getpeercert(binary_form=True)
            self.fp = hashlib.sha256(der).hexdigest() if der else None
        else:
            c = http.client.HTTPConnection(j["server"], j["port"], timeout=20,
                                           source_address=src)
            c.connect()
        self.c, self.uses = c, 0

    def close(self):
        if self.c:
            try:
                self.c.close()
            except OSError:
                pass
        self.c = None

    def get(self, path):
        fresh = self.c is None
        if fresh:
            self.open()
        host = self.job["sni"] if self.tls else self.job["server"]
        self.c.request("GET", path, headers={"Host": host})
        r = self.c.getresponse()
        body = r.read()
        self.uses += 1
        if self.uses >= 20 or r.getheader("Connection", "").lower() == "close":
            self.close()
        return r.status, body, self.fp if fresh and self.tls else None


def worker(job, seed, deadline):
    rnd = random.Random(seed)
    conns = {}
    clients = sorted(job["clients"])
    secret = job["secret"].encode()
    while time.time() < deadline:
        client = rnd.choice(clients)
        tls = rnd.random() < 0.25
        path = rnd.choice(job["paths"])
        key = (client, tls)
        conn = conns.setdefault(key, Conn(job, client, tls))
        t0 = time.time()
        rec = {"t0": t0, "c": client, "p": path, "tls": tls}
        try:
            status, body, fp = conn.get(path)
            rec.update(s=status, ok=secret in body)
            if fp:
                rec["fp"] = fp
        except (OSError, http.client.HTTPException, ssl.SSLError) as e:
            conn.close()
            rec.update(s=0, ok=False, err=f"{type(e).__name__}: {e}"[:200])
        rec["t1"] = time.time()
        emit(rec)
    for c in conns.values():
        c.close()


def main():
    job = json.load(sys.stdin)
    deadline = time.time() + job["duration"]
    threads = [threading.Thread(target=worker, args=(job, i, deadline), daemon=True)
               for i in range(job["workers"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
