"""MDMessageCmd/MDNotifyCmd get only stdin, stdout and stderr: every other
descriptor httpd and the helper hold (listening sockets, logs, pipes, and
whatever httpd itself was started with, however high its number) is closed
before the command is executed (issue 11, item 7).

httpd is started with three extra inherited descriptors, 100, 1500 and 4000
(1500 and 4000 above the 1024 that select()-era loops stop at).  The event
command lists its own /proc/<pid>/fd.  The closing is checked three ways:
close_range(), and - with a preloaded shim that makes close_range() fail
with ENOSYS (kernels before 5.9) and, for the last case, opendir() of the
descriptor directory fail (no /proc) - each of the two fallbacks."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from lib.httpd import www_data_ids

from .conftest import tailnet
from .mdhelp import FAST, helper_pid, md_config, md_httpd, wait_for

pytestmark = pytest.mark.other_user     # renewed/notify run as www-data

HIGH_FDS = (100, 1500, 4000)

# Lists its own descriptors (name -> what they point to) as JSON in
# <dir>/<name>.json, name = the arguments before the domain.  Not
# /proc/self/fd: the shim below refuses opendir() of that one.
LIST_FDS = """#!/usr/bin/python3
import json, os, sys
d = "/proc/%d/fd" % os.getpid()
fds = {{}}
for n in os.listdir(d):
    try:
        fds[n] = os.readlink(os.path.join(d, n))
    except FileNotFoundError:
        fds[n] = None       # the listing's own directory, closed again
name = "-".join(sys.argv[1:-1])
with open(os.path.join({out!r}, name + ".json.tmp"), "w") as f:
    json.dump({{"uid": os.getuid(), "fds": fds}}, f)
os.rename(os.path.join({out!r}, name + ".json.tmp"), os.path.join({out!r}, name + ".json"))
"""

# Emulates a system without close_range() (ENOSYS), and with NO_PROC_FD one
# without /proc/self/fd (opendir fails) as well.
SHIM = r"""
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <string.h>

int close_range(unsigned int first, unsigned int last, int flags)
{
    (void)first; (void)last; (void)flags;
    errno = ENOSYS;
    return -1;
}

#ifdef NO_PROC_FD
DIR *opendir(const char *name)
{
    static DIR *(*real)(const char *);

    if (name && !strcmp(name, "/proc/self/fd")) {
        errno = ENOENT;
        return NULL;
    }
    if (!real) {
        real = (DIR *(*)(const char *))dlsym(RTLD_NEXT, "opendir");
    }
    return real(name);
}
#endif
"""


def build_shim(tmp_dir, no_proc):
    src = tmp_dir / "fdshim.c"
    src.write_text(SHIM)
    so = tmp_dir / ("fdshim-noproc.so" if no_proc else "fdshim.so")
    cmd = ["cc", "-shared", "-fPIC", "-O1", "-o", str(so), str(src), "-ldl"]
    if no_proc:
        cmd.insert(1, "-DNO_PROC_FD")
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    os.chmod(so, 0o755)
    return so


def open_fds(pid):
    return {int(n) for n in os.listdir(f"/proc/{pid}/fd")}


@pytest.mark.parametrize("way", ["close_range", "proc-fd-fallback", "rlimit-fallback"])
def test_event_commands_get_no_descriptor_above_2(make_httpd, make_emulator, tmp_dir, way):
    out = tmp_dir / "events"
    out.mkdir()
    os.chmod(out, 0o1777)       # renewed and notify write here as www-data
    script = tmp_dir / "list-fds"
    script.write_text(LIST_FDS.format(out=str(out)))
    script.chmod(0o755)
    marker = tmp_dir / "inherited"
    marker.write_text("an open file httpd was started with\n")
    os.chmod(marker, 0o644)
    preload = None
    if way != "close_range":
        preload = str(build_shim(tmp_dir, no_proc=way == "rlimit-fallback"))
    emu = make_emulator(tailnet())
    conf = md_config(ca=emu.socket_path, global_extra=FAST + f"""
MDMessageCmd {script} message
MDNotifyCmd {script} notify
""")
    h = md_httpd(make_httpd, conf, socket_path=emu.socket_path, preload=preload,
                 inherit_fds={n: marker for n in HIGH_FDS})

    want = {"message-installed": 0, "message-renewed": None, "notify": None}
    got = wait_for(lambda: (lambda r: r if len(r) == len(want) else None)(
        {k: json.loads((out / f"{k}.json").read_text())
         for k in want if (out / f"{k}.json").exists()}),
        timeout=30, what=f"the event commands' descriptor lists in {out}")

    # The test means something: httpd and its helper do hold the inherited
    # descriptors (and more: sockets, logs, the stop pipe) ...
    helper = helper_pid(h)
    for pid in (h.pid(), helper):
        held = open_fds(pid)
        assert set(HIGH_FDS) <= held, (pid, sorted(held))
        assert os.readlink(f"/proc/{pid}/fd/1500") == str(marker)
    assert len(open_fds(h.pid())) > 3 + len(HIGH_FDS)
    # ... and the commands get none of them: only 0, 1 and 2 (and the
    # listing's own directory descriptor, closed by the time it was read)
    www = www_data_ids()[0]
    for name, rec in got.items():
        fds = {int(n): target for n, target in rec["fds"].items()}
        extra = {n: t for n, t in fds.items() if n > 2 and t is not None}
        assert not extra, f"{name} ({way}) inherited descriptors {extra}"
        assert {0, 1, 2} <= set(fds), (name, fds)
        assert fds[0] == "/dev/null"
        assert rec["uid"] == (want[name] if want[name] is not None else www), (name, rec)
    if way != "close_range":
        # the shim was in place: the fallback did the closing
        assert "fdshim" in Path(f"/proc/{helper}/maps").read_text()
