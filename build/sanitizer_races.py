#!/usr/bin/python3
"""Summarise ThreadSanitizer reports (build/check-sanitizers --thread).

The harness (test/lib/httpd.py) fails a test on a report with a frame in our
code and copies every tsan.PID file here; this script sorts them again: ours
(localapi/, mod_*_tailscale/, tools/) are listed with their stacks and fail
the run, the rest (only intercepted calls from httpd, APR or the libraries,
none of which is instrumented) is counted by kind.

    build/sanitizer_races.py DIR_OR_FILES...    exit 1 if any report is ours
"""

import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test" / "lib"))
import tsan_reports  # noqa: E402


def main(args):
    files = []
    for a in args:
        p = Path(a)
        files += sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else [p]
    ours, theirs, fatal = [], collections.Counter(), []
    for f in files:
        text = f.read_text(errors="replace")
        fatal += [(f, line) for line in tsan_reports.fatal_lines(text)]
        for r in tsan_reports.reports(text):
            if r.ours:
                ours.append((f, r))
            else:
                theirs[r.summary or r.kind] += 1
    print(f"ThreadSanitizer reports: {len(files)} files; from our code: {len(ours)}; "
          f"others (httpd/APR/libraries, counted only): {sum(theirs.values())}")
    for what, n in theirs.most_common(10):
        print(f"    {n:5d}  {what}")
    for f, line in fatal:
        print(f"ThreadSanitizer failed in {f.name}: {line}")
    seen = set()
    for f, r in ours:
        if r.key() in seen:
            continue
        seen.add(r.key())
        print(f"\n{f.name}:\n{r.text()}")
    return 1 if ours or fatal else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
