"""build/check-packages' own logic, without installing anything: the
pre-flight check for a2dismod's disabled_by_admin markers and reading only
the error-log lines of this run (test/packaging/check_packages.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_packages as cp  # noqa: E402


def test_disabled_by_admin_marker_found_and_explained(tmp_path):
    assert cp.admin_disabled_markers(str(tmp_path)) == []
    (tmp_path / "authnz_tailscale").touch()
    (tmp_path / "ssl").touch()
    markers = cp.admin_disabled_markers(str(tmp_path))
    assert markers == ["authnz_tailscale"]
    text = cp.admin_disabled_explanation(markers, str(tmp_path))
    marker = str(tmp_path / "authnz_tailscale")
    assert "a2dismod authnz_tailscale" in text
    assert "rm %s" % marker in text and "a2enmod" in text
    (tmp_path / "md_tailscale").touch()
    assert cp.admin_disabled_markers(str(tmp_path)) == ["authnz_tailscale", "md_tailscale"]


def test_preflight_refuses_with_the_explanation(tmp_path, monkeypatch):
    (tmp_path / "md_tailscale").touch()
    monkeypatch.setattr(cp, "DISABLED_BY_ADMIN", str(tmp_path))
    monkeypatch.setattr(cp, "apache_envvars", lambda: {"pid_file": str(tmp_path / "none")})
    monkeypatch.setattr(cp, "port_in_use", lambda port: False)
    monkeypatch.setattr(cp, "PACKAGES", ["tsl-no-such-package-for-this-test"])
    monkeypatch.setattr(cp, "SOCKET", str(tmp_path / "no.sock"))
    if not all(cp.shutil.which(t) for t in ("dpkg", "a2enmod", "apache2ctl")):
        pytest.skip("apache2/dpkg tools not installed")
    try:
        cp.preflight(need_build=False)
    except cp.Skip as e:
        msg = str(e)
    else:
        raise AssertionError("preflight accepted a disabled_by_admin marker")
    assert str(tmp_path / "md_tailscale") in msg and "rm " in msg


def test_error_log_reads_only_this_runs_lines(tmp_path, monkeypatch):
    log = tmp_path / "error.log"
    log.write_text("old run: TS01021 decision\nold run: TS02031 obtained\n")
    monkeypatch.setattr(cp, "ERROR_LOG_START", 0)
    cp.remember_error_log_start(str(log))
    assert cp.error_log(str(log)) == ""
    with open(log, "a") as f:
        f.write("this run: TS02045\n")
    assert cp.error_log(str(log)) == "this run: TS02045\n"
    assert "TS01021" not in cp.error_log(str(log))
    log.write_text("rotated\n")          # truncated below the start: read it all
    assert cp.error_log(str(log)) == "rotated\n"
