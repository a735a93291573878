"""The status counters `obtained` (certificates obtained and stored, the
first one included) and `renewals` (those that replaced a real certificate)
count each certificate once: over a first start with an empty store, a
graceful restart, a restart and a renewal (issue 11, item 7: they were
reported to double after a first start, parent and helper both adding the
resumed state).

Each count is read where an operator reads it - the md-tailscale-status
handler, server-status?auto (renewals) and the status file - and only once
the helper of the current generation has resumed the history and made a
check of its own.  The renewal is held back by MDMessageCmd renewing
(mod_md's veto) until the restarts are done, so no timing decides when it
comes."""

import json
import os
import urllib.request
from pathlib import Path

import pytest

from lib.httpd import alive

from .conftest import tailnet
from .mdhelp import DOMAIN, FAST, domain_status, md_config, md_httpd, wait_for

# 80 s certificates with a 60 s renew window: a renewal is due 20 s after
# issuance (vetoed until the test lets it through), expiry is far enough
# away for three restarts under the sanitizers.
CERTS = tailnet(certs={"lifetime": 80, "issue_delay": 0.2})

VETO = """#!/bin/sh
echo "$1" >> {log}
if [ "$1" = renewing ] && [ -e {veto} ]; then exit 3; fi
exit 0
"""

SERVER_STATUS = """
<Location "/server-status">
  SetHandler server-status
</Location>
"""


def counts(h):
    """(obtained, renewals) from the handler, server-status and the status
    file, which must agree; plus the handler's document."""
    doc = domain_status(h)
    text = urllib.request.urlopen(h.url("/server-status?auto"), timeout=10).read().decode()
    line = next(l for l in text.splitlines() if l.startswith(f"MDTailscaleDomain: {DOMAIN} "))
    auto = int(line.split(" renewals=")[1].split()[0])
    path = Path(h.dir) / "md_tailscale" / "status" / f"{DOMAIN}.json"
    stored = json.loads(path.read_text())
    got = {"handler": (doc["obtained"], doc["renewals"]),
           "file": (stored["obtained"], stored["renewals"])}
    assert got["handler"] == got["file"], got
    assert auto == doc["renewals"], (line, doc)
    return got["handler"], doc


def settled(h, not_pid=None, fingerprint=None):
    """The status once this generation's helper (not not_pid) has resumed
    the history and finished a check of its own (its first save has no
    lastCheck), the served certificate (fingerprint, when given) is
    installed and in use."""
    def ok():
        d = domain_status(h)
        pid = d.get("helperPid")
        if not (isinstance(pid, int) and pid > 0 and pid != not_pid and alive(pid)):
            return None
        served = (d.get("served") or {}).get("fingerprint")
        if not served or d["installedFingerprint"] != served or not d.get("lastCheck"):
            return None
        if fingerprint and served != fingerprint:
            return None
        return d
    return wait_for(ok, timeout=60, what="the current helper's status after a check")


@pytest.mark.parametrize("first", ["parent-wait", "helper"])
def test_obtained_and_renewals_count_each_certificate_once(make_httpd, make_emulator,
                                                           tmp_dir, first):
    """first: who obtains the first certificate - the parent while it waits
    for tailscaled at startup (served without a restart), or the helper
    (MDTailscaleStartupWait 0; activated by its graceful restart)."""
    events = tmp_dir / "events"
    events.mkdir()
    os.chmod(events, 0o1777)        # the command runs as www-data
    log, veto = events / "events.txt", events / "veto"
    veto.write_text("")
    msg = tmp_dir / "md-message"
    msg.write_text(VETO.format(log=log, veto=veto))
    msg.chmod(0o755)
    emu = make_emulator(CERTS)
    extra = FAST + f"""
MDRenewWindow 60s
MDTailscaleCheckInterval 2s
MDMessageCmd {msg}
"""
    if first == "helper":
        extra += "MDTailscaleStartupWait 0\n"
    h = md_httpd(make_httpd, md_config(ca=emu.socket_path, global_extra=extra)
                 + SERVER_STATUS, modules=["status"], socket_path=emu.socket_path)

    # 1. first start, empty store
    d = settled(h)
    a = d["served"]["fingerprint"]
    # the path the parameter names was taken: only the helper's certificate
    # needs the helper's graceful restart
    assert ("TS02032" in h.error_log()) == (first == "helper"), h.error_log()
    assert counts(h)[0] == (1, 0)

    # 2. graceful restart, 3. restart: the history is resumed, not added again
    for step in (h.graceful, h.restart):
        pid = d["helperPid"]
        step()
        d = settled(h, not_pid=pid, fingerprint=a)
        assert counts(h)[0] == (1, 0), step.__name__

    # a renewal vetoed by MDMessageCmd renewing is no renewal
    wait_for(lambda: log.read_text().split().count("renewing") >= 2, timeout=60,
             what="renewing asked (and vetoed) twice")
    assert counts(h)[0] == (1, 0)

    # 4. the renewal: one more certificate obtained, and it replaced one
    pid = d["helperPid"]
    veto.unlink()
    h.wait_for_log(r"TS02031: .*replacing the one valid until", timeout=60)
    d = settled(h, not_pid=pid)
    b = d["served"]["fingerprint"]
    assert b != a
    assert counts(h)[0] == (2, 1)

    # ... and stays counted once over one more graceful restart
    pid = d["helperPid"]
    h.graceful()
    settled(h, not_pid=pid, fingerprint=b)
    assert counts(h)[0] == (2, 1)
    assert h.error_log().count("TS02031") == 2
