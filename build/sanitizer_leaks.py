#!/usr/bin/python3
"""Summarise LeakSanitizer reports (build/check-sanitizers, build/valgrind-smoke
use the same idea): each direct leak is "ours" when one of its stack frames
is in this project's code (localapi/, mod_authnz_tailscale/, mod_md_tailscale/,
tools/), otherwise it is httpd's, APR's, OpenSSL's or libcurl's own
end-of-process leak and only counted.  Indirect leaks (blocks reachable only
from a leaked block) are listed as ours only through their direct owner.

    build/sanitizer_leaks.py DIR_OR_FILES...    exit 1 if any leak is ours
"""

import re
import sys
from pathlib import Path

OURS = re.compile(r"/(localapi|mod_authnz_tailscale|mod_md_tailscale|tools)/[\w.-]+\.c"
                  r"|mod_authnz_tailscale\.so|mod_md_tailscale\.so|\btsl_\w+|\bazt_\w+|\bmdt_\w+")
RECORD = re.compile(r"^(Direct|Indirect) leak of (\d+) byte\(s\) in (\d+) object\(s\)")


def records(text):
    """Yield (kind, bytes, objects, frames) for each leak record."""
    cur = None
    for line in text.splitlines():
        m = RECORD.match(line)
        if m:
            if cur:
                yield cur
            cur = (m.group(1), int(m.group(2)), int(m.group(3)), [])
        elif cur and re.match(r"\s+#\d+ ", line):
            cur[3].append(line.strip())
        elif cur and not line.strip():
            yield cur
            cur = None
    if cur:
        yield cur


def main(args):
    files = []
    for a in args:
        p = Path(a)
        files += sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
    ours, theirs, incomplete, indirect_ours = [], [], [], []
    for f in files:
        text = f.read_text(errors="replace")
        if "LeakSanitizer has encountered a fatal error" in text:
            incomplete.append(f)
        for rec in records(text):
            mine = any(OURS.search(fr) for fr in rec[3])
            if mine and rec[0] == "Indirect":
                # only reachable from a leaked block; when no direct leak is
                # ours, that block is library state (OpenSSL 3's provider and
                # decoder caches, filled on first use from whoever called it)
                indirect_ours.append((f, rec))
            else:
                (ours if mine else theirs).append((f, rec))
    print(f"leak reports: {len(files)} files; leaks from our code: {len(ours)} records "
          f"({sum(r[1] for _, r in ours)} bytes); others (httpd/APR/libraries at exit): "
          f"{len(theirs)} records ({sum(r[1] for _, r in theirs)} bytes)")
    if indirect_ours:
        print(f"indirect leaks with a frame of ours: {len(indirect_ours)} records "
              f"({sum(r[1] for _, r in indirect_ours)} bytes), "
              + ("held by the direct leaks below" if ours else
                 "held by library state, not by a leak of ours (no direct leak is ours)"))
    if incomplete:
        print(f"leak check incomplete in {len(incomplete)} process(es): LeakSanitizer could not "
              f"stop the threads for its exit-time scan ({', '.join(f.name for f in incomplete[:5])})")
    seen = set()
    for f, (kind, nbytes, nobj, frames) in ours:
        key = tuple(frames[:8])
        if key in seen:
            continue
        seen.add(key)
        print(f"\n{kind} leak of {nbytes} byte(s) in {nobj} object(s) ({f.name}):")
        for fr in frames[:16]:
            print("    " + fr)
    return 1 if ours else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
