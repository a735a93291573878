"""`make install` / `make uninstall` into a DESTDIR: the modules are
installed as apxs would install them, without libtool's or instdso.sh's
warnings, and uninstalling removes the mods-enabled links a2enmod made for
them (dangling links kept the modules "enabled", and a later package
installation brought md_tailscale back to life)."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OURS = ["authnz_tailscale", "md_tailscale"]

pytestmark = pytest.mark.skipif(not (REPO / "Makefile").exists()
                                or not (REPO / "mod_md_tailscale/.libs/mod_md_tailscale.so").exists(),
                                reason="not built (run build/setup)")


def make(target, dest):
    p = subprocess.run(["make", "-s", target, f"DESTDIR={dest}"], cwd=REPO, text=True,
                       capture_output=True, timeout=600)
    return p.returncode, p.stdout + p.stderr


def apxs(var):
    return subprocess.run(["apxs", "-q", var], text=True, capture_output=True,
                          check=True).stdout.strip()


@pytest.fixture
def dest():
    d = Path(tempfile.mkdtemp(prefix="tsl-destdir-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_install_has_no_libtool_warnings_and_uninstall_disables_what_a2enmod_enabled(dest):
    rc, out = make("install", dest)
    assert rc == 0, out
    assert "dlname not found" not in out and "arning" not in out, out
    libexec = Path(f"{dest}{apxs('LIBEXECDIR')}")
    for m in OURS:
        so = libexec / f"mod_{m}.so"
        assert so.is_file() and (so.stat().st_mode & 0o777) == 0o644, so

    # what `a2enmod authnz_tailscale md_tailscale` leaves (ssl comes with md)
    etc = Path(f"{dest}{apxs('SYSCONFDIR')}")
    enabled = etc / "mods-enabled"
    enabled.mkdir()
    state = dest / "var/lib/apache2/module/enabled_by_admin"
    state.mkdir(parents=True)
    for m in OURS + ["ssl"]:
        for ext in ("load", "conf"):
            os.symlink(f"../mods-available/{m}.{ext}", enabled / f"{m}.{ext}")
        (state / m).touch()

    rc, out = make("uninstall", dest)
    assert rc == 0, out
    left = sorted(p.name for p in enabled.iterdir())
    assert left == ["ssl.conf", "ssl.load"], left        # Debian's module stays
    assert sorted(p.name for p in state.iterdir()) == ["ssl"]
    assert not any(libexec.iterdir())
    assert not any((etc / "mods-available").iterdir())
    assert "reload apache2" in out
