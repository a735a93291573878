"""Keep-alive HTTP client driven line by line, for the hardening tests (run
inside the tailnet namespace).  argv: host port src.  Each stdin line is a
JSON {"conn": name, "path": path}; the request goes over the connection of
that name (opened on first use, kept alive) and one JSON line comes back:
{"status": n, "body": text} or {"status": 0, "error": text}."""

import http.client
import json
import sys


def main():
    host, port, src = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    conns = {}
    for line in sys.stdin:
        job = json.loads(line)
        c = conns.get(job["conn"])
        if c is None:
            c = conns[job["conn"]] = http.client.HTTPConnection(
                host, port, timeout=30, source_address=(src, 0))
        try:
            c.request("GET", job["path"])
            r = c.getresponse()
            out = {"status": r.status, "body": r.read().decode("utf-8", "replace")}
        except (OSError, http.client.HTTPException) as e:
            c.close()
            conns.pop(job["conn"], None)
            out = {"status": 0, "error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
