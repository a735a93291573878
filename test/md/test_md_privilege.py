"""Privileges: children run as www-data, tailscaled refuses certificates to
uid 33, and the certificate still arrives because the helper keeps the
parent's rights. Children cannot read the key or fetch one themselves."""

import os
import pwd
import stat
import subprocess
from pathlib import Path

import pytest

from .conftest import tailnet
from .mdhelp import (DOMAIN, FAST, cert_requests, domain_status, helper_pid, md_config,
                     md_httpd,
                     wait_for, wait_real_cert)

pytestmark = pytest.mark.other_user     # www-data children, httpd started as www-data


def proc_uid(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid for {pid}")


def children_of(pid):
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                for line in (d / "status").read_text().splitlines():
                    if line.startswith("PPid:") and int(line.split()[1]) == pid:
                        out.append(int(d.name))
            except OSError:
                pass
    return out


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_certificate_arrives_although_www_data_is_refused(make_httpd, emulator, mpm):
    www = pwd.getpwnam("www-data").pw_uid
    # tailscaled refuses the children's uid (no TS_PERMIT_CERT_UID, no operator)
    r = emulator.localapi(f"/localapi/v0/cert/{DOMAIN}?type=pair", uid=www)
    assert (r.status, r.text) == (403, "cert access denied\n")
    emulator.reset_requests()
    h = md_httpd(make_httpd, md_config(), mpm=mpm)
    wait_real_cert(h, emulator)
    reqs = cert_requests(emulator)
    assert reqs and all(r["uid"] == 0 for r in reqs), reqs
    assert all(r["uid"] == 0 for r in emulator.requests())
    # the helper is root, the request-serving children are www-data
    parent = h.pid()
    helper = helper_pid(h)
    assert proc_uid(helper) == 0
    kids = [k for k in children_of(parent) if k != helper]
    assert kids and all(proc_uid(k) == www for k in kids)
    # the key is root's alone and www-data cannot read it
    store = Path(h.dir) / "md_tailscale"
    d = store / "domains" / DOMAIN
    key = d / os.readlink(d / "current") / "privkey.pem"
    st = key.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    p = subprocess.run(["cat", str(key)], user=www, group=www, capture_output=True)
    assert p.returncode != 0 and b"Permission denied" in p.stderr
    # ... while the status the children serve is readable
    p = subprocess.run(["cat", str(store / "status" / f"{DOMAIN}.json")], user=www,
                       group=www, capture_output=True)
    assert p.returncode == 0


def start_as(h, user):
    """Start httpd with its parent running as user (not root): everything it
    writes must belong to that user."""
    pw = pwd.getpwnam(user)
    for root, dirs, files in os.walk(h.dir):
        for n in dirs + files:
            os.chown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)
    os.chown(h.dir, pw.pw_uid, pw.pw_gid)
    p = subprocess.run(h._cmd("-k", "start"), user=pw.pw_uid, group=pw.pw_gid,
                       capture_output=True, text=True, env=h._env(), timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr + h.error_log()
    h._started = True
    h.wait_ready()


def test_non_root_parent_is_denied_with_a_hint(make_httpd, emulator):
    """httpd started as www-data: the helper keeps that user, tailscaled
    refuses it, and the log and status carry tailscaled's text, the log ID
    and what to do."""
    h = md_httpd(make_httpd, md_config(global_extra=FAST), start=False)
    start_as(h, "www-data")
    line = h.wait_for_log(r"TS02044: .*").group(0)
    assert "cert access denied" in line and "HTTP 403" in line
    assert emulator.socket_path in line
    assert "tailscale set --operator=USER" in line and "TS_PERMIT_CERT_UID" in line
    st = wait_for(lambda: (lambda d: d if d["lastError"] else None)(domain_status(h)))
    assert st["lastError"]["text"] == "cert access denied"
    assert st["lastError"]["kind"] == "denied"
    assert st["state"] == "fallback"
    www = pwd.getpwnam("www-data").pw_uid
    assert {r["uid"] for r in cert_requests(emulator)} == {www}


def test_non_root_parent_with_permit_cert_uid(make_httpd, make_emulator):
    """The same, with tailscaled's TS_PERMIT_CERT_UID naming that user."""
    emu = make_emulator(tailnet(permissions={"permit_cert_uid": "www-data"}))
    h = md_httpd(make_httpd, md_config(ca=emu.socket_path), socket_path=emu.socket_path,
                 start=False)
    start_as(h, "www-data")
    wait_real_cert(h, emu)
