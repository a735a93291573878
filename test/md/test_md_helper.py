"""The helper process's life: one per server generation, no listeners, gone
with httpd (stop, restart, or the parent killed outright)."""

import os
import signal
import subprocess

import pytest

from lib.httpd import alive

from .mdhelp import (domain_status, helper_pid, md_config, md_httpd, wait_for,
                     wait_real_cert)


def test_helper_holds_no_listener(make_httpd, emulator):
    h = md_httpd(make_httpd, md_config())
    wait_real_cert(h, emulator)
    helper = helper_pid(h)
    out = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
    ours = [l for l in out.splitlines() if f":{h.port} " in l or f":{h.tls_port} " in l]
    assert ours, out
    assert all(f"pid={helper}," not in l for l in ours), ours


@pytest.mark.parametrize("how", ["stop", "graceful", "kill-parent"])
def test_helper_goes_with_its_generation(make_httpd, emulator, how):
    h = md_httpd(make_httpd, md_config())
    wait_real_cert(h, emulator)
    helper = helper_pid(h)
    assert alive(helper)
    if how == "stop":
        parent = h.pid()
        subprocess.run(h._cmd("-k", "stop"), check=True, env=h._env(), timeout=60)
        wait_for(lambda: not alive(parent), timeout=20, what="httpd to stop")
        wait_for(lambda: not alive(helper), timeout=30, what="the helper to end")
        h._started = False
    elif how == "graceful":
        h.graceful()
        wait_for(lambda: not alive(helper), timeout=30, what="the old helper to end")
        new = wait_for(lambda: (lambda p: p if p and p != helper else None)(
            domain_status(h)["helperPid"]), timeout=30, what="a new helper")
        assert alive(new)
        # one helper per generation: no duplicate process is left behind
        assert "TS02071" not in h.error_log()
    else:
        parent = h.pid()
        os.kill(parent, signal.SIGKILL)
        wait_for(lambda: not alive(helper), timeout=30,
                 what="the helper to notice its parent died")
