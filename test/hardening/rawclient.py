"""Raw HTTP/1.1 client for the hardening tests, run inside the tailnet
namespace.  Reads one JSON job on stdin:

  host, port, path, src        where to connect, from which address
  method                       default GET
  headers                      [[name, value], ...] sent verbatim, in order
  proxy_v1                     text preamble line (without CRLF)
  proxy_v2                     {"cmd": "PROXY"|"LOCAL", "src": ip, "sport": n,
                                "dst": ip, "dport": n}: binary PROXY v2 preamble
  body                         request body (text)
  chunked                      send the body chunked
  trailers                     [[name, value], ...] after the last chunk

and prints {"status", "headers": [[name, value], ...], "body"}."""

import ipaddress
import json
import socket
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from rawhttp import dechunk  # noqa: E402

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(spec):
    if spec.get("cmd", "PROXY") == "LOCAL":
        return V2_SIGNATURE + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    src = ipaddress.ip_address(spec["src"])
    dst = ipaddress.ip_address(spec["dst"])
    if src.version == 4:
        fam, addrs = 0x11, src.packed + dst.packed
    else:
        fam, addrs = 0x21, src.packed + dst.packed
    payload = addrs + struct.pack("!HH", spec["sport"], spec["dport"])
    return V2_SIGNATURE + bytes([0x21, fam]) + struct.pack("!H", len(payload)) + payload


def build(job):
    out = b""
    if job.get("proxy_v2"):
        out += proxy_v2(job["proxy_v2"])
    if job.get("proxy_v1"):
        out += job["proxy_v1"].encode() + b"\r\n"
    host = job["host"]
    hosthdr = f"[{host}]" if ":" in host else host
    lines = [f"{job.get('method', 'GET')} {job['path']} HTTP/1.1",
             f"Host: {hosthdr}:{job['port']}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in job.get("headers") or []]
    body = (job.get("body") or "").encode()
    if job.get("chunked"):
        lines.append("Transfer-Encoding: chunked")
        if job.get("trailers"):
            lines.append("Trailer: " + ", ".join(k for k, _ in job["trailers"]))
        data = (f"{len(body):x}\r\n".encode() + body + b"\r\n") if body else b""
        data += b"0\r\n"
        data += b"".join(f"{k}: {v}\r\n".encode() for k, v in job.get("trailers") or [])
        data += b"\r\n"
    else:
        if body or job.get("method") in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        data = body
    return out + ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def main():
    job = json.load(sys.stdin)
    fam = socket.AF_INET6 if ":" in job["host"] else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(30)
    s.bind((job["src"], 0))
    s.connect((job["host"], job["port"]))
    s.sendall(build(job))
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append([k.strip(), v.strip()])
    if any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers):
        body = dechunk(body)
    json.dump({"status": status, "headers": headers, "body": body.decode("utf-8", "replace")},
              sys.stdout)


if __name__ == "__main__":
    main()
