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

from lib import pki

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


def watch_served(h, emu, want_serials, timeout):
    """Handshake every 0.1 s until want_serials distinct certificates have
    been served (or timeout); every chain must verify. Returns the served
    certificates (Served) in the order they were first served and the time
    each serial was first seen."""
    seen, first = [], {}
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = tls_get(h.tls_port, DOMAIN, emu.ca_pem_path)
        assert s.verified, f"an invalid certificate was served: {s}"
        if s.serial not in first:
            first[s.serial] = time.time()
            seen.append(s)
            if len(seen) >= want_serials:
                break
        time.sleep(0.1)
    return seen, first


def activated_by_the_helper(log, fingerprint):
    """True when the error log shows, in this order: the helper stored the
    certificate (TS02031 with its SHA-256), the helper asked httpd for a
    graceful restart (TS02032), a new generation has it in use (TS02034)."""
    lines = log.splitlines()
    steps = [lambda l: "TS02031: " in l and f"SHA-256 {fingerprint}" in l,
             lambda l: "TS02032: " in l and "asking httpd" in l,
             lambda l: "TS02034: " in l and f"certificate {fingerprint} " in l]
    i = 0
    for step in steps:
        while i < len(lines) and not step(lines[i]):
            i += 1
        if i == len(lines):
            return False
        i += 1
    return True


@pytest.mark.parametrize("mpm", ["event", "prefork"])
def test_renewal_is_activated_without_help(make_httpd, make_emulator, mpm):
    emu = make_emulator(SHORT)
    h = md_httpd(make_httpd, md_config(ca=emu.socket_path, global_extra=RENEW), mpm=mpm,
                 socket_path=emu.socket_path)
    wait_real_cert(h, emu)
    # Two renewals take ~20 s; the deadline only bounds a hang (under the
    # sanitizers a graceful restart takes seconds).
    seen, first = watch_served(h, emu, want_serials=3, timeout=120)
    assert len(seen) == 3, seen
    serials = [c.serial for c in seen]
    gaps = [first[serials[i + 1]] - first[serials[i]] for i in range(len(serials) - 1)]
    print(f"{mpm}: served serials {serials}, switched after {[round(g, 1) for g in gaps]}s")
    # activation latency (information only): renewal request sent -> new
    # certificate served
    asked = [r["time"] for r in cert_requests(emu) if "min_validity" in r["target"]]
    lat = [first[serial] - max(t for t in asked if t < first[serial]) for serial in serials[1:]]
    print(f"{mpm}: renewal request -> new certificate served: "
          f"{[round(x, 2) for x in lat]}s")
    # Each renewal happens once 30 s of the 40 are left, never a loop: a
    # certificate is replaced only by one issued inside its renew window
    # (the dates are whole seconds: one second of slack).
    for old, new in zip(seen, seen[1:]):
        nb, na = pki.validity(new.cert)[0], pki.validity(old.cert)[1]
        assert (na - nb).total_seconds() <= 31, \
            f"renewed {na - nb} before the old certificate expired (window 30 s): {old} -> {new}"
    # Activated by the module itself (the test never restarts httpd): for
    # each renewal the helper stored it, asked httpd for a graceful restart,
    # and the new generation reports it in use - in that order.
    for c in seen[1:]:
        wait_for(lambda: activated_by_the_helper(h.error_log(), c.fingerprint), timeout=60,
                 what=f"TS02031 -> TS02032 -> TS02034 for serial {c.serial}")
    # ... and it asked exactly once per new certificate (no restart loop):
    # one TS02032 between the TS02031 of one renewal and that of the next.
    lines = h.error_log().splitlines()
    stored = [next(i for i, l in enumerate(lines)
                   if "TS02031: " in l and f"SHA-256 {c.fingerprint}" in l) for c in seen[1:]]
    between = [l for l in lines[stored[0]:stored[1]] if "TS02032: " in l]
    assert len(between) == 1, between
    # (the new helper writes its status a moment after the restart)
    wait_for(lambda: (lambda d: d["renewals"] >= 2 and d["state"] == "valid")(domain_status(h)),
             timeout=60, what="status: valid, two renewals")
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


def test_retry_after_counts_from_the_answer(make_httpd, make_emulator):
    """Retry-After counts from when tailscaled answered, not from when the
    request was sent: a 429 that takes 2 s to come back (the CA's round
    trips) with Retry-After: 3 is followed by the next request no sooner
    than 5 s after the first one arrived.  (The module used to count from
    the start of its check, so it asked again 1 s after the answer.)"""
    delay, retry_after = 2.0, 3
    emu = make_emulator(tailnet(certs={"issue_delay": delay}))
    emu.fault("ca429", endpoints=["cert"], retry_after=retry_after, count=1)
    h = md_httpd(make_httpd, md_config(ca=emu.socket_path, global_extra=FAST),
                 socket_path=emu.socket_path)
    wait_real_cert(h, emu, timeout=60)
    reqs = sorted(cert_requests(emu), key=lambda r: r["time"])
    print(f"cert requests at +{[round(r['time'] - reqs[0]['time'], 2) for r in reqs]}s, "
          f"statuses {[r['status'] for r in reqs]}")
    assert [r["status"] for r in reqs][:2] == [429, 200]
    # the 429 left the emulator no sooner than `delay` after the request
    # arrived; the next request may come Retry-After after that at the earliest
    assert reqs[1]["time"] - reqs[0]["time"] >= delay + retry_after


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
    MDNotifyCmd the domain when a certificate was obtained; as in mod_md,
    only installed runs as root, everything else as the server's User."""
    from lib.httpd import www_data_ids
    www = str(www_data_ids()[0])
    events_dir = tmp_dir / "events"
    events_dir.mkdir()
    os.chmod(events_dir, 0o1777)    # the commands write here as www-data
    out = events_dir / "events.txt"
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
    assert [www, store, "extra-arg", "renewed", DOMAIN] in events()
    assert Path(str(out) + ".notify").read_text().split() == [www, store, DOMAIN]
    # renewal (due after 10 s) fails, then the warn window (after 15 s) is reached
    emu.fault("http500", endpoints=["cert"])
    wait_for(lambda: [www, store, "extra-arg", "errored", DOMAIN] in events(), timeout=20,
             what="errored")
    wait_for(lambda: [www, store, "extra-arg", "expiring", DOMAIN] in events(), timeout=20,
             what="expiring")
    assert "TS02060" in h.error_log()
    errored = [e for e in events() if e[3] == "errored"]
    assert len(errored) == 1       # at most hourly for the same failure
    # renewing came before the renewal request (once: hourly), as the user
    renewing = [e for e in events() if e[3] == "renewing"]
    assert renewing == [[www, store, "extra-arg", "renewing", DOMAIN]]
    emu.clear_fault()
    h.wait_for_log_count("TS02034", 2, timeout=20)     # the renewed one installed
    assert tls_get(h.tls_port, DOMAIN, emu.ca_pem_path).fingerprint != a.fingerprint
    # mod_md's rates: renewed and installed at most daily, renewing hourly
    time.sleep(1)
    kinds = [e[3] for e in events()]
    assert (kinds.count("renewed"), kinds.count("installed"), kinds.count("renewing"),
            kinds.count("errored"), kinds.count("expiring")) == (1, 1, 1, 1, 1), kinds


VETO_SCRIPT = """#!/bin/sh
echo "$1 $2" >> {out}
if [ "$1" = renewing ] && [ -e {veto} ]; then exit 3; fi
exit 0
"""


def test_renewing_veto_postpones_the_renewal(make_httpd, make_emulator, tmp_dir):
    """MDMessageCmd renewing <domain> exiting non-zero postpones the renewal
    (no request with min_validity), as in mod_md; once it exits 0 the
    renewal goes ahead."""
    events_dir = tmp_dir / "events"
    events_dir.mkdir()
    os.chmod(events_dir, 0o1777)
    out, veto = events_dir / "events.txt", events_dir / "veto"
    veto.write_text("")
    msg = tmp_dir / "md-message"
    msg.write_text(VETO_SCRIPT.format(out=out, veto=veto))
    msg.chmod(0o755)
    emu = make_emulator(tailnet(certs={"lifetime": 30, "issue_delay": 0.2}))
    conf = md_config(ca=emu.socket_path, global_extra=FAST + f"""
MDRenewWindow 20s
MDMessageCmd {msg}
""")
    h = md_httpd(make_httpd, conf, socket_path=emu.socket_path)
    a = wait_real_cert(h, emu)

    def events():
        try:
            return [l.split() for l in out.read_text().splitlines()]
        except FileNotFoundError:
            return []
    wait_for(lambda: [e for e in events() if e[0] == "renewing"][1:], timeout=30,
             what="renewing asked (and vetoed) twice")
    assert "TS02085" in h.error_log()
    assert not [r for r in cert_requests(emu) if "min_validity" in r["target"]]
    assert "replacing the one valid until" not in h.error_log()
    veto.unlink()
    h.wait_for_log("replacing the one valid until", timeout=30)
    assert [r for r in cert_requests(emu) if "min_validity" in r["target"]]
    wait_for(lambda: tls_get(h.tls_port, DOMAIN, emu.ca_pem_path).fingerprint
             != a.fingerprint, timeout=30, what="the renewed certificate served")
    # the first renewed (at startup) counts for the day, as in mod_md
    assert [e[0] for e in events()].count("renewed") == 1
