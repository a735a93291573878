"""ThreadSanitizer report files (build/check-sanitizers --thread): split a
tsan.PID file into its reports and tell ours from theirs.

A report is ours when a stack frame of its accesses, mutexes or memory
location is in this project's code (localapi/, mod_authnz_tailscale/,
mod_md_tailscale/, tools/).  apache2, APR, libcurl and OpenSSL are not
instrumented, so their own frames never appear in TSan's stacks: a report of
theirs is one whose stacks hold only intercepted calls (memcpy, free,
pthread_*) made from uninstrumented code.  The "Thread Tn created by" stacks
do not count (our code starts no threads; httpd's do not make a race ours).

One shape is theirs although a frame of ours is in it: a race whose current
access is memory being filled (memset/memcpy) by uninstrumented code alone,
and whose previous access is ours.  That is httpd handing memory our code
used to a new owner: the event MPM recycles transaction and connection pools
between worker threads through APR atomics (fdqueue's recycled-pool list,
apr_atomic_casptr) that TSan cannot see, and apr_pcalloc() then zeroes the
reused memory (ap_create_conn_config for the next connection).  Likewise
the other way round: our code filling memory that an APR pool function
(apr_pstrcat, apr_pcalloc, ...) has just handed out, when the previous
access to it was httpd's alone (a writev of the request that last owned it).
Any other order or shape with a frame of ours (ours after httpd's fill
outside an allocation, two accesses of ours) stays ours.
"""

import re

OURS = re.compile(r"/(localapi|mod_authnz_tailscale|mod_md_tailscale|tools)/[\w.-]+\.c"
                  r"|mod_authnz_tailscale\.so|mod_md_tailscale\.so|\btsl_\w+|\bazt_\w+|\bmdt_\w+")
START = re.compile(r"^WARNING: ThreadSanitizer: (.*?)(?: \(pid=\d+\))?$")
END = re.compile(r"^SUMMARY: ThreadSanitizer: ")
FRAME = re.compile(r"^\s+#\d+ ")
ACCESS = re.compile(r"^\s+(Read|Write|Atomic|Previous|Location|Mutex|Heap)")
FILL = re.compile(r"#\d+ (memset|memcpy|memmove) ")
# APR pool functions that fill memory they have just allocated
FRESH = re.compile(r"#\d+ (apr_pstrcat|apr_pstrdup|apr_pstrndup|apr_pstrmemdup|apr_pmemdup"
                   r"|apr_pcalloc|apr_palloc|apr_psprintf|apr_pvsprintf|apr_array_pstrcat) ")
THREAD = re.compile(r"^\s+Thread T\d+ .*created by")
FATAL = re.compile(r"FATAL: ThreadSanitizer|ThreadSanitizer: CHECK failed|ThreadSanitizer: nested bug")


class Report:
    def __init__(self, kind):
        self.kind = kind          # "data race", "heap-use-after-free", ...
        self.lines = []
        self.frames = []          # frames of the accesses/mutexes/location
        self.stacks = []          # the same, one list per stack, in order
        self.summary = ""

    @property
    def ours(self):
        if not any(OURS.search(f) for f in self.frames):
            return False
        return not self.recycled_by_httpd()

    def recycled_by_httpd(self):
        """A data race whose current access is uninstrumented code filling
        memory (see the module docstring) and whose previous one is ours."""
        if self.kind != "data race" or len(self.stacks) < 2:
            return False
        current, previous = self.stacks[0], self.stacks[1]
        if not current or FILL.search(current[0]) is None:
            return False
        if not any(OURS.search(f) for f in current):
            return any(OURS.search(f) for f in previous)
        caller = next((f for f in current if not FILL.search(f)), "")
        return FRESH.search(caller) is not None and not any(OURS.search(f) for f in previous)

    def text(self):
        return "\n".join(self.lines)

    def key(self):
        """What identifies the cause: the kind and the first frames of each stack."""
        return (self.kind, self.summary)


def reports(text):
    """The Report objects of one tsan.PID file, in order."""
    out, cur, in_thread = [], None, False
    for line in text.splitlines():
        m = START.match(line)
        if m:
            cur, in_thread = Report(m.group(1)), False
            cur.lines.append(line)
            continue
        if cur is None:
            continue
        cur.lines.append(line)
        if END.match(line):
            cur.summary = line.split(": ", 1)[1]
            out.append(cur)
            cur = None
        elif THREAD.match(line):
            in_thread = True
        elif ACCESS.match(line) and not in_thread:
            cur.stacks.append([])
        elif FRAME.match(line):
            if not in_thread:
                cur.frames.append(line.strip())
                if cur.stacks:
                    cur.stacks[-1].append(line.strip())
        elif line.strip() and not line.startswith("    "):
            in_thread = False
    if cur is not None:           # cut off (process killed while writing)
        out.append(cur)
    return out


def fatal_lines(text):
    """Lines saying TSan itself failed (it then stops checking that process)."""
    return [line for line in text.splitlines() if FATAL.search(line)]
