"""The suite passes from a checkout that other users cannot read, as a root
user's clone in /root (mode 0700) is: the tests marked other_user (they run a
helper script, tsl-check, a CGI script or httpd itself as www-data or nobody)
run again from a copy of this tree below a fresh 0700 directory."""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from lib import httpd as httpd_lib

REPO = Path(__file__).resolve().parents[2]
TSL_CHECK = Path(os.environ.get("TSL_CHECK", REPO / "tools" / "tsl-check"))
# the build products the copy needs (sources are copied as they are)
BUILT = {"mod_authnz_tailscale/.libs/mod_authnz_tailscale.so": "authnz_tailscale",
         "mod_md_tailscale/.libs/mod_md_tailscale.so": "md_tailscale"}
SKIP_DIRS = {".git", "out", "autom4te.cache", "__pycache__", ".deps", "corpus"}

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as www-data"),
]


def copy_tree(dest):
    """This checkout's files (not .git, out/ or object files), then the
    modules and tsl-check under test (TSL_MODULE_DIR / TSL_CHECK if set)
    at their places in the tree."""
    def ignore(d, names):
        return [n for n in names if n in SKIP_DIRS or n.endswith((".o", ".lo", ".pyc"))]
    shutil.copytree(REPO, dest, symlinks=True, ignore=ignore)
    for rel, name in BUILT.items():
        try:
            src = httpd_lib.module_path(name)
        except FileNotFoundError:
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
    if TSL_CHECK.exists():
        shutil.copy2(TSL_CHECK, dest / "tools" / "tsl-check")


def unreadable_for(user, path):
    pw = pwd.getpwnam(user)
    p = subprocess.run(["/usr/bin/test", "-r", str(path)], user=pw.pw_uid, group=pw.pw_gid,
                       extra_groups=[], cwd="/")
    return p.returncode != 0


def test_other_user_tests_pass_from_a_checkout_below_a_0700_directory():
    httpd_lib.module_path("authnz_tailscale")     # the main build is there
    private = Path(tempfile.mkdtemp(prefix="tsl-private-"))   # 0700, like /root
    try:
        assert (private.stat().st_mode & 0o777) == 0o700
        tree = private / "checkout"
        copy_tree(tree)
        for probe in ("test/lib/emulator.py", "tools/tsl-check",
                      "mod_authnz_tailscale/.libs/mod_authnz_tailscale.so"):
            if (tree / probe).exists():
                assert unreadable_for("www-data", tree / probe), probe
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PYTEST_") and k not in ("TSL_MODULE_DIR", "TSL_CHECK")}
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-ra",
               "-m", "other_user", "test"]
        if shutil.which("unshare"):
            # its own network namespace: the tailnet namespace of this session
            # and the copy's would claim the same host-side addresses
            cmd = ["unshare", "-n", "--", "sh", "-c", 'ip link set lo up && exec "$@"',
                   "sh"] + cmd
        p = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True,
                           timeout=1200)
        out = p.stdout + p.stderr
        assert p.returncode == 0, out[-8000:]
        assert " passed" in out and " failed" not in out, out[-8000:]
    finally:
        shutil.rmtree(private, ignore_errors=True)


def test_staged_copy_is_readable_by_www_data_and_follows_its_source(tmp_dir):
    from lib import staging
    private = Path(tempfile.mkdtemp(prefix="tsl-private-", dir=tmp_dir))
    script = private / "hello.sh"
    script.write_text("#!/bin/sh\necho one\n")
    script.chmod(0o700)
    pw = pwd.getpwnam("www-data")
    kw = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[], cwd="/",
              capture_output=True, text=True)
    assert unreadable_for("www-data", script)
    copy = staging.stage(script)
    assert copy.is_relative_to(staging.area()) and (copy.stat().st_mode & 0o777) == 0o755
    assert subprocess.run([str(copy)], **kw).stdout == "one\n"
    script.write_text("#!/bin/sh\necho two, longer\n")
    assert staging.stage(script) == copy
    assert subprocess.run([str(copy)], **kw).stdout == "two, longer\n"
