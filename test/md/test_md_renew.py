"""Renewal with short-lived certificates: new certificates are activated by
the module's own graceful restart, clients never see an invalid chain, 429
Retry-After is honoured, a killed helper never costs the working certificate,
and events run as mod_md's do."""

import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import tailnet
from .mdhelp import (DOMAIN, FAST, cert_requests, domain_status, helper_pid, md_config,
                     md_httpd,
                     tls_get, wait_for, wait_real_cert)

# 40 s certificates, renewed once 30 s are left: a new one every ~10 s.
SHORT = tailnet(certs={"lifetime": 40, "issue_delay": 0.2})
RENEW = FAST + """
MDRenewWindow 30s
MDTailscaleCheckInterval 5s
"""


def watch_served(h, emu, seconds, want_serials):
    """Handshake every 0.1 s; every chain must verify. Returns the serials in
    the order they were first served and the time each was first seen."""
    seen, first = [], {}
    deadline = time.time() + seconds
    while time.time() < deadline:
        s = tls_get(h.tls_port, DOMAIN, emu.ca_pem_path)
        assert s.verified, f"an invalid certificate was served: {s}"
        if s.serial not in first:
            first[s.serial] = time.time()
            seen.append(s.serial)
            if len(seen) >= want_serials:
                break
        time.sleep(0.1)
    return seen, first


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_renewal_is_activated_without_help(make_httpd, make_emulator, mpm):
    emu = make_emulator(SHORT)
    h = md_httpd(make_httpd, md_config(ca=emu.socket_path, global_extra=RENEW), mpm=mpm,
                 socket_path=emu.socket_path)
    wait_real_cert(h, emu)
    seen, first = watch_served(h, emu, 40, want_serials=3)
    assert len(seen) == 3, seen
    gaps = [first[seen[i + 1]] - first[seen[i]] for i in range(len(seen) - 1)]
    print(f"{mpm}: served serials {seen}, switched after {[round(g, 1) for g in gaps]}s")
    # each renewal happens once 30 s of 40 are left: ~10 s apart, never a loop
    assert all(g > 6 for g in gaps), gaps
    # activation latency: renewal request sent -> new certificate served
    asked = [r["time"] for r in cert_requests(emu) if "min_validity" in r["target"]]
    lat = [first[serial] - max(t for t in asked if t < first[serial]) for serial in seen[1:]]
    print(f"{mpm}: renewal request -> new certificate served: "
          f"{[round(x, 2) for x in lat]}s")
    assert all(x < 5 for x in lat)
    # (the new helper writes its status a moment after the restart)
    wait_for(lambda: (lambda d: d["renewals"] >= 2 and d["state"] == "valid")(domain_status(h)),
             timeout=5, what="status: valid, two renewals")
    assert h.error_log().count("TS02032") >= 2
    # tailscaled was asked with min_validity inside the window
    assert any("min_validity=31s" in r["target"] for r in cert_requests(emu))


def test_429_retry_after_is_honoured(make_httpd, emulator):
    emulator.fault("http429", endpoints=["cert"], retry_after=3, count=2)
    t0 = time.time()
    h = md_httpd(make_httpd, md_config(global_extra=FAST))
    line = h.wait_for_log(r"TS02047: .*").group(0)
    assert "too many certificates" in line and "HTTP 429" in line
    st = wait_for(lambda: (lambda d: d if d["lastError"] else None)(domain_status(h)))
    assert st["lastError"]["kind"] == "rate-limited"
    assert st["retryAfterUntil"]
    wait_real_cert(h, emulator, timeout=20)
    reqs = cert_requests(emulator)
    times = [r["time"] for r in reqs]
    print(f"cert requests at +{[round(t - t0, 2) for t in times]}s, statuses "
          f"{[r['status'] for r in reqs]}")
    # two 429 answers, then the certificate: each request at least
    # Retry-After (3 s) after a 429 (the retry delay alone would be 0.3 s).
    # (One more 200 follows: the check of the restarted generation.)
    assert [r["status"] for r in reqs][:3] == [429, 429, 200]
    assert all(r["status"] == 200 for r in reqs[3:]) and len(reqs) <= 4
    assert times[1] - times[0] >= 3 and times[2] - times[1] >= 3


def store_files(h, name=DOMAIN):
    d = Path(h.dir) / "md_tailscale" / "domains" / name
    cur = d / "current"
    return d, cur


def test_kill9_of_the_helper_during_a_renewal(make_httpd, make_emulator):
    emu = make_emulator(SHORT)
    h = md_httpd(make_httpd, md_config(ca=emu.socket_path, global_extra=RENEW
                                       + "MDTailscaleRequestTimeout 20s\n"),
                 socket_path=emu.socket_path)
    a = wait_real_cert(h, emu)
    pid = helper_pid(h)
    # the renewal request (due ~10 s after issuance) hangs in tailscaled
    emu.fault("hang", endpoints=["cert"])
    wait_for(lambda: any(r.get("fault") == "hang" for r in cert_requests(emu)),
             timeout=20, what="the helper to be inside a renewal request")
    os.kill(pid, signal.SIGKILL)
    h.wait_for_log(r"TS02071: .*")
    # the working certificate stays: served, and intact in the store
    s = tls_get(h.tls_port, DOMAIN, emu.ca_pem_path)
    assert s.verified and s.fingerprint == a.fingerprint
    d, cur = store_files(h)
    gen = d / os.readlink(cur)
    assert stat.S_IMODE((gen / "privkey.pem").stat().st_mode) == 0o600
    # tailscaled recovers; a new helper is started and renews
    emu.clear_fault()
    t0 = time.time()
    b = wait_for(lambda: (lambda s: s if s.verified and s.fingerprint != a.fingerprint
                          else None)(tls_get(h.tls_port, DOMAIN, emu.ca_pem_path)),
                 timeout=40, what="the renewed certificate")
    print(f"helper restarted and renewal activated {time.time() - t0:.1f}s after the kill")
    assert domain_status(h)["helperPid"] != pid


def test_damaged_active_generation_falls_back_to_a_valid_one(make_httpd, emulator):
    """Someone (or a disk) broke the active generation: the server keeps
    serving a valid stored certificate instead of failing."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    h = md_httpd(make_httpd, md_config())
    a = wait_real_cert(h, emulator)
    d, cur = store_files(h)
    good = d / os.readlink(cur)
    bad = d / "gffffffffffffffff"
    bad.mkdir(mode=0o700)
    (bad / "pubcert.pem").write_bytes((good / "pubcert.pem").read_bytes())
    other = ec.generate_private_key(ec.SECP256R1())
    (bad / "privkey.pem").write_bytes(other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    partial = d / ".tmp-gfffffffffffffffe"
    partial.mkdir(mode=0o700)
    (partial / "privkey.pem").write_text("-----BEGIN EC PRIVATE KEY-----\ntrunc")
    tmp_link = d / "current.new"
    os.symlink(bad.name, tmp_link)
    os.replace(tmp_link, cur)
    h.graceful()
    s = tls_get(h.tls_port, DOMAIN, emulator.ca_pem_path)
    assert s.verified and s.fingerprint == a.fingerprint


def test_auto_restart_off(make_httpd, make_emulator):
    emu = make_emulator(SHORT)
    h = md_httpd(make_httpd, md_config(ca=emu.socket_path, global_extra=RENEW
                                       + "MDTailscaleAutoRestart off\n"),
                 socket_path=emu.socket_path)
    a = wait_real_cert(h, emu)
    h.wait_for_log(r"TS02033: .*", timeout=30)
    st = domain_status(h)
    assert st["state"] == "pending-restart"
    assert st["cert"]["fingerprint"] != a.fingerprint
    assert tls_get(h.tls_port, DOMAIN, emu.ca_pem_path).fingerprint == a.fingerprint
    assert "TS02032" not in h.error_log()
    h.graceful()
    s = tls_get(h.tls_port, DOMAIN, emu.ca_pem_path)
    assert s.verified and s.fingerprint != a.fingerprint


EVENT_SCRIPT = """#!/bin/sh
echo "$(id -u) $MD_STORE $*" >> {out}
"""


def test_events(make_httpd, make_emulator, tmp_dir):
    """MDMessageCmd gets errored/expiring/renewed/installed with the domain,
    MDNotifyCmd the domain when a certificate was obtained; run as root."""
    out = tmp_dir / "events.txt"
    msg = tmp_dir / "md-message"
    msg.write_text(EVENT_SCRIPT.format(out=out))
    msg.chmod(0o755)
    notify = tmp_dir / "md-notify"
    notify.write_text(EVENT_SCRIPT.format(out=str(out) + ".notify"))
    notify.chmod(0o755)
    emu = make_emulator(tailnet(certs={"lifetime": 30, "issue_delay": 0.2}))
    conf = md_config(ca=emu.socket_path, global_extra=FAST + f"""
MDRenewWindow 20s
MDWarnWindow 15s
MDMessageCmd {msg} extra-arg
MDNotifyCmd {notify}
""")
    h = md_httpd(make_httpd, conf, socket_path=emu.socket_path)
    a = wait_real_cert(h, emu)
    store = str(Path(h.dir) / "md_tailscale")

    def events():
        try:
            return [l.split() for l in out.read_text().splitlines()]
        except FileNotFoundError:
            return []
    wait_for(lambda: ["0", store, "extra-arg", "installed", DOMAIN] in events(),
             what="installed")
    assert ["0", store, "extra-arg", "renewed", DOMAIN] in events()
    assert Path(str(out) + ".notify").read_text().split() == ["0", store, DOMAIN]
    # renewal (due after 10 s) fails, then the warn window (after 15 s) is reached
    emu.fault("http500", endpoints=["cert"])
    wait_for(lambda: ["0", store, "extra-arg", "errored", DOMAIN] in events(), timeout=20,
             what="errored")
    wait_for(lambda: ["0", store, "extra-arg", "expiring", DOMAIN] in events(), timeout=20,
             what="expiring")
    assert "TS02060" in h.error_log()
    errored = [e for e in events() if e[3] == "errored"]
    assert len(errored) == 1       # at most hourly for the same failure
    emu.clear_fault()
    wait_for(lambda: [e for e in events() if e[3] == "installed"][1:], timeout=20,
             what="the renewed certificate installed")
    assert tls_get(h.tls_port, DOMAIN, emu.ca_pem_path).fingerprint != a.fingerprint
