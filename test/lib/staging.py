"""Copies, readable by every user, of what tests run as another user.

A checkout may live anywhere, below a 0700 home such as /root included, where
www-data and nobody cannot read it.  So whatever runs as another uid -- a
helper script and the test modules it imports, tsl-check, our httpd modules
(loaded by an httpd started as www-data, run by www-data children), a CGI
script -- is used from a copy in a 0755 directory under /tmp:

    exe = staging.stage(REPO / "tools" / "tsl-check")     # path of the copy

A copy keeps its path relative to the checkout (test/lib/emulator.py becomes
<area>/test/lib/emulator.py), so a staged script finds its staged neighbours
where it finds them in the checkout; stage(script, *neighbours) copies both.
Files outside the checkout go below <area>/ext/.  Directories are 0755,
files 0755 when executable and 0644 otherwise.  A source that changed since
it was copied is copied again.

One area per process, made on first use.  The session fixture in
test/conftest.py removes it when the session ends, and it is removed at exit
in any case.  Scripts that use test/lib outside pytest (build/demo.py,
build/valgrind-smoke, test/bench/run.py) stage into their own work directory
with use(), so that what --keep keeps still finds its modules.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_area = None          # the staging directory of this process
_owner_pid = None     # the process that made it (forked children leave it alone)
_copied = {}          # source path -> (mtime_ns, size) of the copy


def area():
    """The staging directory (0755, under /tmp), made on first use."""
    global _area, _owner_pid
    if _area is None or not _area.is_dir():
        _area = Path(tempfile.mkdtemp(prefix="tsl-staged-", dir="/tmp"))
        os.chmod(_area, 0o755)
        _owner_pid = os.getpid()
        _copied.clear()
        atexit.register(remove)
    return _area


def use(directory):
    """Stage into directory (made 0755) from now on; its owner removes it."""
    global _area, _owner_pid
    remove()
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    _area, _owner_pid = d, None
    _copied.clear()
    return d


def remove():
    """Remove the staging directory that area() made (the next stage() makes
    a new one); a directory given to use() is left to its owner."""
    global _area
    if _area is not None and os.getpid() == _owner_pid:
        shutil.rmtree(_area, ignore_errors=True)
        _area = None
        _copied.clear()


def staged_path(src):
    """Where stage(src) puts the copy of src (nothing is copied)."""
    src = Path(src).resolve()
    try:
        rel = src.relative_to(REPO)
    except ValueError:
        rel = Path("ext") / src.relative_to(src.anchor)
    return area() / rel


def _make_dirs(d):
    """Make directory d and its missing parents below the area, each 0755."""
    top = area()
    missing = []
    while d != top and not d.exists():
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        d.mkdir()
        os.chmod(d, 0o755)


def _copy_file(src, dest):
    st = src.stat()
    stamp = (st.st_mtime_ns, st.st_size)
    if _copied.get(src) == stamp and dest.exists():
        return
    _make_dirs(dest.parent)
    # copy then rename: a copy some process still runs is replaced, not rewritten
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    os.chmod(tmp, 0o755 if st.st_mode & 0o111 else 0o644)
    os.replace(tmp, dest)
    _copied[src] = stamp


def _stage_one(src):
    src = Path(src).resolve()
    dest = staged_path(src)
    if src.is_dir():
        for root, dirs, files in os.walk(src):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for f in files:
                if not f.endswith(".pyc"):
                    p = Path(root) / f
                    _copy_file(p, staged_path(p))
        _make_dirs(dest)
    elif src.is_file():
        _copy_file(src, dest)
    else:
        raise FileNotFoundError(f"cannot stage {src}: no such file or directory")
    return dest


def stage(path, *also):
    """Copy path (a file or a directory tree) and the neighbours it needs
    (also: files or directories it imports or reads) into the staging area;
    returns the path of path's copy."""
    dest = _stage_one(path)
    for p in also:
        _stage_one(p)
    return dest
