"""A minimal HTTP/1.1 client over a raw socket, so tests control exactly what
is sent: the source address and port, a PROXY protocol preamble, forged
headers.  Usable as a module or as a script (for network namespaces):

  rawhttp.py HOST PORT PATH [--src IP] [--sport N] [--proxy 'PROXY TCP4 ...']
             [-H 'Name: value'] ...   -> prints a JSON {status, headers, body}
"""

import argparse
import json
import socket
import sys


def request(host, port, path="/", src=None, sport=0, headers=None, proxy=None,
            timeout=20, method="GET"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        if src or sport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((src or ("::" if fam == socket.AF_INET6 else "0.0.0.0"), sport))
        s.connect((host, port))
        out = b""
        if proxy:
            out += proxy.encode() + b"\r\n"
        hosthdr = f"[{host}]" if fam == socket.AF_INET6 else host
        lines = [f"{method} {path} HTTP/1.1", f"Host: {hosthdr}:{port}", "Connection: close"]
        for h in headers or []:
            lines.append(h)
        out += ("\r\n".join(lines) + "\r\n\r\n").encode()
        s.sendall(out)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    head_lines = head.decode("latin-1").split("\r\n")
    status = int(head_lines[0].split()[1]) if head_lines and head_lines[0] else 0
    hdrs = {}
    for line in head_lines[1:]:
        k, _, v = line.partition(":")
        hdrs.setdefault(k.strip().lower(), v.strip())
    if hdrs.get("transfer-encoding", "").lower() == "chunked":
        body = dechunk(body)
    return status, hdrs, body.decode("utf-8", "replace")


def dechunk(b):
    """The payload of a chunked body (trailers dropped)."""
    out = b""
    while b:
        size_line, _, rest = b.partition(b"\r\n")
        n = int(size_line.split(b";")[0], 16)
        if n == 0:
            break
        out += rest[:n]
        b = rest[n + 2:]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("path")
    ap.add_argument("--src")
    ap.add_argument("--sport", type=int, default=0)
    ap.add_argument("--proxy")
    ap.add_argument("-H", action="append", default=[])
    a = ap.parse_args()
    status, hdrs, body = request(a.host, a.port, a.path, src=a.src, sport=a.sport,
                                 headers=a.H, proxy=a.proxy)
    json.dump({"status": status, "headers": hdrs, "body": body}, sys.stdout)


if __name__ == "__main__":
    main()
