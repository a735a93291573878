#!/usr/bin/python3
"""Clients of the benchmark's hanging-tailscaled row (test/bench/run.py,
`--only hang`); run inside the benchmark's network namespace.

    hang_load.py --server IP:PORT --protected PATH --open PATH
                 --nodes A,B,... --open-src A,... --start EPOCH
                 [--clients 40] [--requests 20] [--seconds 12]
                 [--recover-seconds 4]

Load phase, from --start for --seconds: each of --clients clients (client
i speaks from node address i mod len(--nodes)) sends --requests requests to
the protected path, the k-th one not before start + k * seconds/requests and
not before its previous one was answered; every request is its own TCP
connection (a new peer for the module).  An answer counts when it arrived
before the end of the phase.  Alongside, one client per --open-src address
asks the unprotected path every 20 ms.

Recovery phase, right after: one client per node address (at most 4) asks
the protected path every 20 ms for --recover-seconds; the caller clears the
fault during it and compares the time of each answer with its own clock.

Prints one JSON object.  Nothing here asserts anything.
"""

import argparse
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import rawhttp  # noqa: E402


def request(server, src, path, timeout):
    """(status, body) of one GET on a new connection; (None, error) when no
    complete answer came within timeout seconds."""
    host, port = server
    try:
        status, _, body = rawhttp.request(host, port, path, src=src,
                                          timeout=max(0.01, timeout))
    except OSError as e:
        return None, type(e).__name__
    except (IndexError, ValueError):
        return None, "unparsable"
    return (status, body) if status else (None, "unparsable")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--protected", required=True)
    ap.add_argument("--open", required=True)
    ap.add_argument("--nodes", required=True)
    ap.add_argument("--open-src", required=True)
    ap.add_argument("--start", type=float, required=True)
    ap.add_argument("--clients", type=int, default=40)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=12)
    ap.add_argument("--recover-seconds", type=float, default=4)
    ap.add_argument("--marker", default="bench", help="text only the protected body holds")
    a = ap.parse_args()
    host, port = a.server.rsplit(":", 1)
    server = (host, int(port))
    nodes = a.nodes.split(",")
    start, end = a.start, a.start + a.seconds
    gap = a.seconds / a.requests
    lock = threading.Lock()
    prot = {"sent": 0, "answered": 0, "late": 0, "status": {}, "granted": 0, "lat": []}
    opened = {"answered": 0, "status": {}, "lat": []}

    def count(d, status):
        k = str(status)
        d["status"][k] = d["status"].get(k, 0) + 1

    def protected_client(i):
        src = nodes[i % len(nodes)]
        time.sleep(max(0.0, start - time.time()))
        for k in range(a.requests):
            due = start + k * gap
            now = time.time()
            if due > now:
                time.sleep(due - now)
            t0 = time.time()
            if t0 >= end:
                break
            status, body = request(server, src, a.protected, end - t0)
            t1 = time.time()
            with lock:
                prot["sent"] += 1
                if status is not None and t1 <= end:
                    prot["answered"] += 1
                    prot["lat"].append(t1 - t0)
                    count(prot, status)
                    if status == 200 or a.marker in body:
                        prot["granted"] += 1
                else:
                    prot["late"] += 1

    def open_client(src):
        time.sleep(max(0.0, start - time.time()))
        while time.time() < end:
            t0 = time.time()
            status, _ = request(server, src, a.open, end - t0 + 5)
            with lock:
                opened["answered"] += status is not None
                opened["lat"].append(time.time() - t0)
                count(opened, status)
            time.sleep(max(0.0, t0 + 0.02 - time.time()))

    threads = [threading.Thread(target=protected_client, args=(i,)) for i in range(a.clients)]
    threads += [threading.Thread(target=open_client, args=(s,)) for s in a.open_src.split(",")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Recovery: (time, status) of every answer.
    answers = []
    rec_end = time.time() + a.recover_seconds

    def recover_client(src):
        while time.time() < rec_end:
            t0 = time.time()
            status, body = request(server, src, a.protected, 10)
            with lock:
                answers.append((time.time(), status, t0))
            time.sleep(0.02)

    threads = [threading.Thread(target=recover_client, args=(s,)) for s in nodes[:4]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    def pct(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000 if xs else None

    out = {
        "protected": {k: v for k, v in prot.items() if k != "lat"},
        "open": {k: v for k, v in opened.items() if k != "lat"},
        "scheduled": a.clients * a.requests,
        "protected_p50_ms": pct(prot["lat"], 50), "protected_p99_ms": pct(prot["lat"], 99),
        "open_p50_ms": pct(opened["lat"], 50), "open_p99_ms": pct(opened["lat"], 99),
        "recovery": sorted(answers),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
