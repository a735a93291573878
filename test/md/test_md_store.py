"""A store that goes bad never stops httpd, and a stored certificate is always
served (issue 24): group-writable, read-only, full or deleted stores, a
"current" that is not a link, and a helper killed between storing a renewal
and asking for the restart.  Read-only and full stores are tmpfs mounts made
and removed here (skipped where mounts are not allowed)."""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from lib.httpd import alive

from .conftest import tailnet
from .mdhelp import (DOMAIN, FAST, cert_requests, domain_status, helper_pid, md_config,
                     md_httpd, tls_get, wait_for, wait_real_cert)

# 40 s certificates, renewed once 30 s are left: a new one every ~10 s.
SHORT = tailnet(certs={"lifetime": 40, "issue_delay": 0.2})
RENEW = FAST + """
MDRenewWindow 30s
MDTailscaleCheckInterval 5s
"""


def store_of(h):
    return Path(h.dir) / "md_tailscale"


def domain_dir(h):
    return store_of(h) / "domains" / DOMAIN


def generations(h):
    return sorted(p.name for p in domain_dir(h).iterdir() if p.name.startswith("g"))


def leftovers(h):
    return sorted(p.name for p in domain_dir(h).iterdir() if p.name.startswith(".tmp-g"))


def up(h):
    """httpd's parent runs and its plain port answers."""
    pid = h.pid()
    return bool(pid) and alive(pid) and h._port_open(h.port)


def store_problem(h):
    return domain_status(h).get("storeProblem") or ""


@pytest.fixture
def tmpfs(tmp_dir):
    """mount_tmpfs(path, size) -> path: a tmpfs mounted at path (0755),
    unmounted at teardown; skips where mounts are not allowed."""
    mounted = []

    def mount(path, size="4m"):
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755",
                            "tmpfs", str(path)], capture_output=True, text=True)
        if p.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def remount(path, mode):
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def fill(path):
    """Fill the file system holding path until ENOSPC."""
    with open(path / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    # the last partial page too
    try:
        with open(path / "filler2", "wb") as f:
            while True:
                f.write(b"\0" * 512)
                f.flush()
    except OSError:
        pass


# ---- item 2: group-writable store ------------------------------------------

def test_group_writable_store_never_stops_httpd(make_httpd, make_emulator):
    emu = make_emulator(SHORT)
    h = md_httpd(make_httpd, md_config(ca=emu.socket_path, global_extra=RENEW),
                 socket_path=emu.socket_path)
    a = wait_real_cert(h, emu)
    store = store_of(h)
    gens = generations(h)
    os.chmod(store, 0o775)
    # the helper checks the store as the parent will: it refuses to store the
    # renewal (due within ~10 s) and never asks for the restart that the
    # parent would not survive
    line = h.wait_for_log(r"TS02105: [^\n]*", timeout=40).group(0)
    assert f"chmod go-w {store}" in line, line
    h.wait_for_log(r"TS02091: [^\n]*storing the certificate", timeout=40)
    assert up(h)
    assert generations(h) == gens
    assert f"chmod go-w {store}" in store_problem(h)
    # a graceful restart (logrotate, apache2ctl graceful) keeps it up too
    h.graceful()
    assert up(h)
    assert "TS02100: " in h.error_log()
    s = tls_get(h.tls_port, DOMAIN, emu.ca_pem_path)
    assert s.fingerprint == a.fingerprint     # the last stored one, even expiring
    # fixed: the renewal is stored and activated by the module itself
    os.chmod(store, 0o755)
    wait_for(lambda: (lambda s: s.verified and s.fingerprint != a.fingerprint)(
        tls_get(h.tls_port, DOMAIN, emu.ca_pem_path)), timeout=60,
        what="the renewal stored and served once the store is fixed")
    wait_for(lambda: not store_problem(h), timeout=30, what="storeProblem cleared")


def test_insecure_store_at_startup_is_reported_not_fatal(make_httpd, emulator, tmp_dir):
    store = tmp_dir / "store"
    (store / "status").mkdir(parents=True)
    os.chmod(store / "status", 0o775)
    h = md_httpd(make_httpd, md_config(global_extra=f"MDTailscaleStoreDir {store}\n"))
    assert up(h)
    line = h.wait_for_log(r"TS02100: [^\n]*").group(0)
    assert f"chmod go-w {store}/status" in line
    # nothing could be stored: the fallback answers 503 (never a stop)
    s = tls_get(h.tls_port, DOMAIN, path="/")
    assert s.self_signed and s.status == 503
    assert f"chmod go-w {store}/status" in store_problem(h)


# ---- item 3: read-only store -------------------------------------------------

def test_read_only_store_survives_a_graceful_restart(tmpfs, make_httpd, emulator,
                                                     tmp_dir):
    store = tmpfs(tmp_dir / "rostore")
    h = md_httpd(make_httpd, md_config(global_extra=f"MDTailscaleStoreDir {store}\n"))
    a = wait_real_cert(h, emulator)
    remount(store, "ro")
    h.graceful()
    assert up(h)
    s = tls_get(h.tls_port, DOMAIN, emulator.ca_pem_path)
    assert s.verified and s.fingerprint == a.fingerprint
    # the status file cannot be written: the status (from memory) says so
    problem = wait_for(lambda: store_problem(h), timeout=30, what="storeProblem")
    assert "Read-only file system" in problem and "remount" in problem, problem
    h.graceful()
    assert up(h)
    remount(store, "rw")


# ---- item 4: disk full ------------------------------------------------------------

def test_full_disk_without_a_certificate_starts_with_a_fallback_in_memory(
        tmpfs, make_httpd, emulator, tmp_dir):
    store = tmpfs(tmp_dir / "fullstore", size="1m")
    emulator.fault("http500", endpoints=["cert"])
    (store / "domains").mkdir(mode=0o700)
    (store / "fallback").mkdir(mode=0o700)
    (store / "status").mkdir(mode=0o755)
    fill(store)
    h = md_httpd(make_httpd, md_config(global_extra=FAST
                                       + f"MDTailscaleStoreDir {store}\n"))
    assert up(h)
    assert "TS02102: " in h.error_log()
    s = tls_get(h.tls_port, DOMAIN, path="/")
    assert s.self_signed and s.status == 503
    h.graceful()
    assert up(h)
    # tailscaled answers: the store cannot take it; shown although the
    # status file cannot be written, and no half-written generation stays
    emulator.clear_fault()
    h.wait_for_log(r"TS02091: [^\n]*No space left", timeout=30)
    err = wait_for(lambda: (domain_status(h).get("lastError") or {}).get("kind") == "store"
                   and domain_status(h)["lastError"], timeout=30, what="lastError store")
    assert "No space left" in err["text"] and "df -h" in err["text"], err
    assert "No space left" in store_problem(h)
    ddir = store / "domains" / DOMAIN
    assert not [p for p in ddir.iterdir() if p.name.startswith(".tmp-")]
    # space again: the certificate is stored and activated
    (store / "filler").unlink()
    (store / "filler2").unlink()
    wait_real_cert(h, emulator, timeout=60)


# ---- item 5: deleted store ---------------------------------------------------------

def test_deleted_store_is_recreated(make_httpd, make_emulator):
    emu = make_emulator(SHORT)
    h = md_httpd(make_httpd, md_config(ca=emu.socket_path, global_extra=RENEW),
                 socket_path=emu.socket_path)
    a = wait_real_cert(h, emu)
    # Gone in one step (the helper may write into it meanwhile: an rmtree
    # of the live tree races with it), then removed for good.
    gone = store_of(h).with_name(store_of(h).name + ".deleted")
    os.rename(store_of(h), gone)
    shutil.rmtree(gone)
    b = wait_for(lambda: (lambda s: s if s.verified and s.fingerprint != a.fingerprint
                          else None)(tls_get(h.tls_port, DOMAIN, emu.ca_pem_path)),
                 timeout=60, what="a renewal stored into the recreated store and served")
    assert (domain_dir(h) / "current").is_symlink()
    assert up(h)
    assert b.verified


# ---- item 1: a stored certificate is always activated --------------------------------

BLOCKING_EVENT = """#!/bin/sh
echo "$1" >> {out}
if [ "$1" = renewed ]; then sleep 60; fi
exit 0
"""


def test_renewal_stored_by_a_killed_helper_is_activated(make_httpd, emulator, tmp_dir):
    """kill -9 of the helper while the renewed MDMessageCmd runs (after
    TS02031 stored the certificate, before the restart was asked for): the
    next helper activates the stored certificate."""
    events = tmp_dir / "events"
    events.mkdir()
    os.chmod(events, 0o1777)
    out = events / "events.txt"
    msg = tmp_dir / "md-message"
    msg.write_text(BLOCKING_EVENT.format(out=out))
    msg.chmod(0o755)
    # the parent's startup attempt fails: the helper stores the certificate
    emulator.fault("http500", endpoints=["cert"], count=1)
    h = md_httpd(make_httpd, md_config(global_extra=FAST + f"MDMessageCmd {msg}\n"))
    stored = h.wait_for_log(r"TS02031: [^\n]*SHA-256 ([0-9a-f]+)", timeout=30).group(1)
    wait_for(lambda: out.exists() and "renewed" in out.read_text(), timeout=30,
             what="the renewed event command running")
    pid = helper_pid(h)
    sleeper = [p for p in Path("/proc").iterdir() if p.name.isdigit()
               and str(msg).encode() in (p / "cmdline").read_bytes()
               if (p / "cmdline").exists()]
    os.kill(pid, signal.SIGKILL)
    h.wait_for_log(r"TS02071: ")
    s = wait_for(lambda: (lambda s: s if s.verified else None)(
        tls_get(h.tls_port, DOMAIN, emulator.ca_pem_path)), timeout=60,
        what="the stored certificate served after the helper was killed")
    assert s.fingerprint == stored
    # the event command did not outlive the helper that supervised it
    for p in sleeper:
        wait_for(lambda: not alive(int(p.name)), timeout=10,
                 what=f"event command {p.name} gone with its helper")


def test_current_that_is_a_directory_is_replaced(make_httpd, make_emulator):
    """A restore with cp -r made "current" a directory: the next renewal
    moves it aside, is activated, and prune cleans up."""
    emu = make_emulator(SHORT)
    h = md_httpd(make_httpd, md_config(ca=emu.socket_path, global_extra=RENEW),
                 socket_path=emu.socket_path)
    a = wait_real_cert(h, emu)
    d = domain_dir(h)
    cur = d / "current"
    target = d / os.readlink(cur)
    cur.unlink()
    shutil.copytree(target, cur)
    b = wait_for(lambda: (lambda s: s if s.verified and s.fingerprint != a.fingerprint
                          else None)(tls_get(h.tls_port, DOMAIN, emu.ca_pem_path)),
                 timeout=60, what="a renewal activated despite the directory")
    assert "TS02104: " in h.error_log()
    assert cur.is_symlink()
    # generations do not pile up: later renewals prune the old ones and the
    # moved-aside directory
    wait_for(lambda: len([p for p in d.iterdir() if p.name.startswith("g")]) <= 2
             and not [p for p in d.iterdir() if p.name.startswith(".tmp-current-")],
             timeout=60, what=f"prune to clean up {sorted(p.name for p in d.iterdir())}")
    assert b.verified


def test_expiring_follows_the_served_certificate(make_httpd, make_emulator):
    """A newer certificate waits in the store (MDTailscaleAutoRestart off):
    the one served still expires, and TS02060 says so."""
    emu = make_emulator(SHORT)
    h = md_httpd(make_httpd, md_config(ca=emu.socket_path, global_extra=RENEW
                                       + "MDTailscaleAutoRestart off\nMDWarnWindow 25s\n"),
                 socket_path=emu.socket_path)
    a = wait_real_cert(h, emu)
    h.wait_for_log(r"TS02033: ", timeout=30)         # stored, not activated
    line = h.wait_for_log(r"TS02060: [^\n]*", timeout=30).group(0)
    assert "the certificate in use expires" in line
    assert tls_get(h.tls_port, DOMAIN, emu.ca_pem_path).fingerprint == a.fingerprint
    assert h.error_log().count("TS02033: ") == 1      # once per certificate


# ---- also: two servers sharing one store -------------------------------------------

def test_two_servers_sharing_a_store_renew_without_tripping_over_each_other(
        make_httpd, make_emulator, tmp_dir):
    """Both helpers store renewals into one store: each writes its own link
    in the making (no fixed .current.tmp name) and prune leaves the other's
    fresh leftovers alone, so no save fails and both always serve a chain
    that verifies."""
    emu = make_emulator(SHORT)
    store = tmp_dir / "shared-store"
    conf = md_config(ca=emu.socket_path, global_extra=RENEW
                     + f"MDTailscaleStoreDir {store}\n")
    a = md_httpd(make_httpd, conf, socket_path=emu.socket_path)
    b = md_httpd(make_httpd, conf, socket_path=emu.socket_path)
    wait_real_cert(a, emu)
    wait_real_cert(b, emu)
    deadline = time.time() + 35       # three or four renewals
    while time.time() < deadline:
        for h in (a, b):
            s = tls_get(h.tls_port, DOMAIN, emu.ca_pem_path)
            assert s.verified, s
        time.sleep(0.2)
    for h in (a, b):
        assert "TS02091: " not in h.error_log(), h.error_log()
        assert up(h)
    ddir = store / "domains" / DOMAIN
    assert (ddir / "current").is_symlink()
    assert len([p for p in ddir.iterdir() if p.name.startswith("g")]) <= 4
