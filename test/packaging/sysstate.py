"""What the package test changes on the system, and how it puts it back.

Manifest: a comparable record of every path below a set of roots (type, mode,
owner, size, mtime, content hash or link target).  Backup: a tar archive of
the roots that existed, restored by deleting the roots and extracting it, so
the result is byte-for-byte what was there, and roots that did not exist are
removed again.
"""

import hashlib
import os
import shutil
import stat
import subprocess
import tempfile


def _digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def _entry(path, st, with_mtime):
    kind = stat.S_IFMT(st.st_mode)
    e = {"mode": oct(stat.S_IMODE(st.st_mode)), "uid": st.st_uid, "gid": st.st_gid}
    if stat.S_ISLNK(st.st_mode):
        e["type"] = "link"
        e["target"] = os.readlink(path)
        return e
    if with_mtime:
        e["mtime"] = st.st_mtime_ns
    if stat.S_ISDIR(st.st_mode):
        e["type"] = "dir"
    elif stat.S_ISREG(st.st_mode):
        e["type"] = "file"
        e["size"] = st.st_size
        e["sha256"] = _digest(path)
    elif stat.S_ISSOCK(st.st_mode):
        e["type"] = "socket"
    else:
        e["type"] = "other:%o" % kind
    return e


def manifest(roots, with_mtime=True):
    """{path: entry} for each root (absent roots are recorded as absent) and
    everything below it, symlinks not followed."""
    out = {}
    for root in roots:
        try:
            st = os.lstat(root)
        except FileNotFoundError:
            out[root] = {"type": "absent"}
            continue
        out[root] = _entry(root, st, with_mtime)
        if not stat.S_ISDIR(st.st_mode):
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in sorted(dirnames + filenames):
                p = os.path.join(dirpath, name)
                try:
                    out[p] = _entry(p, os.lstat(p), with_mtime)
                except FileNotFoundError:
                    pass
    return out


def diff(before, after, ignore_mtime_of_dirs=False):
    """Human-readable differences between two manifests, one line each."""
    lines = []
    for p in sorted(set(before) | set(after)):
        a, b = before.get(p), after.get(p)
        absent = {"type": "absent"}
        a = a or absent
        b = b or absent
        if a == b:
            continue
        if ignore_mtime_of_dirs and a.get("type") == "dir" == b.get("type"):
            if {k: v for k, v in a.items() if k != "mtime"} == \
               {k: v for k, v in b.items() if k != "mtime"}:
                continue
        if a["type"] == "absent":
            lines.append("added    %s (%s)" % (p, b["type"]))
        elif b["type"] == "absent":
            lines.append("removed  %s (%s)" % (p, a["type"]))
        else:
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            lines.append("changed  %s (%s)" % (p, ", ".join(
                "%s %s -> %s" % (k, _short(a.get(k)), _short(b.get(k))) for k in keys)))
    return lines


def _short(v):
    s = str(v)
    return s[:12] if len(s) > 16 else s


class Backup:
    """tar archive of the roots that exist now; restore() makes them exactly
    so again and removes the roots that did not exist."""

    def __init__(self, roots, workdir):
        self.roots = list(roots)
        self.present = [r for r in self.roots if os.path.lexists(r)]
        self.archive = os.path.join(workdir, "system-backup.tar")

    def take(self):
        rel = [r.lstrip("/") for r in self.present]
        if rel:
            subprocess.run(["tar", "-C", "/", "--numeric-owner", "--xattrs", "--acls",
                            "-cpf", self.archive] + rel, check=True)
        return self

    def restore(self):
        for r in self.roots:
            if os.path.islink(r) or os.path.isfile(r):
                os.unlink(r)
            elif os.path.isdir(r):
                shutil.rmtree(r)
        if self.present:
            subprocess.run(["tar", "-C", "/", "--numeric-owner", "--xattrs", "--acls",
                            "-xpf", self.archive], check=True)


def make_workdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    return d


# ---------------------------------------------------------------------------
# processes

def pids_by_exe(exe):
    """Pids of processes whose executable is exe."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.readlink("/proc/%s/exe" % d) == exe:
                out.append(int(d))
        except OSError:
            pass
    return out


def ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rindex(")") + 2:].split()[1])


def descendants(root):
    """root and every live process below it."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            pp = ppid(int(d))
            if pp is not None:
                children.setdefault(pp, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(")") + 2] != "Z"
