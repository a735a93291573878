"""httpd stops with its certificate helper, in every way it can stop: the
helper is told to end and reaped by httpd itself (TS02075 "stopped"), and no
helper process is left behind.

`-k stop` and graceful restarts are covered in test_md_helper.py; here are
`apache2 -X` (one process, as when debugging: it changes to its User before
it stops, so it may not signal the root-owned helper any more) and
`-k graceful-stop`."""

import os
import re
import signal
import subprocess
import time

import pytest

from lib import rawhttp
from lib.httpd import alive

from .mdhelp import (cert_requests, helper_pid, md_config, md_httpd, wait_for,
                     wait_real_cert)

# the "helper stopped" line is an info line
LOG_INFO = "LogLevel warn md_tailscale:info"


def serving(h):
    """True once httpd -X answered a request: its worker runs, so its signal
    handlers are in place (the listening port alone accepts connections
    earlier, and a signal before that kills httpd without its cleanup)."""
    try:
        return rawhttp.request("127.0.0.1", h.port, "/", timeout=5)[0] > 0
    except OSError:
        return False


def connections_of(pid):
    """TCP connections (not listeners) that process pid holds open."""
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return set()
    inodes = {link[8:-1] for link in links if link.startswith("socket:[")}
    open_ = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[9] in inodes and cols[3] != "0A":     # 0A: LISTEN
                    open_.add(cols[9])
    return open_


def idle(proc):
    """Wait until httpd -X holds no client connection.  The event MPM's
    ungraceful stop closes the sockets its workers still hold, and a
    connection that a worker is closing at that instant is freed under it
    (httpd segfaulted in close_worker_sockets: apr_os_sock_get on a freed
    socket, in the kernel log for a failing run on Debian 13).
    That race is httpd's; these tests are about what our module does at
    the stop, so they signal an httpd with no connection in flight."""
    wait_for(lambda: not connections_of(proc.pid), timeout=20,
             what="httpd -X to close its client connections")
    time.sleep(0.2)     # the worker returns from the closed connection


def stopped_by_httpd(h, helper):
    return re.search(rf"TS02075: certificate helper \(pid {helper}\) stopped",
                     h.error_log())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_single_process_httpd_exits_on_signal_and_reaps_its_helper(make_httpd, emulator,
                                                                  mpm, sig):
    h = md_httpd(make_httpd, md_config(global_extra=LOG_INFO), mpm=mpm, start=False)
    # its own session: nothing but the signal sent below reaches it
    proc = subprocess.Popen(h._cmd("-X"), env=h._env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    h._started = True   # teardown kills whatever is left with this configuration
    try:
        h.wait_ready()
        wait_real_cert(h, emulator)
        helper = helper_pid(h)
        assert alive(helper)
        wait_for(lambda: serving(h), timeout=20, what="httpd -X to serve a request")

        idle(proc)
        proc.send_signal(sig)   # to httpd only, as kill(1) or a supervisor does
        wait_for(lambda: proc.poll() is not None, timeout=20,
                 what=f"httpd -X to exit after {sig.name}")
        assert proc.returncode == 0, f"httpd -X ended with {proc.returncode}"
        wait_for(lambda: not alive(helper), timeout=20, what="the helper to end")
        assert stopped_by_httpd(h, helper), h.error_log()
        assert "TS02074" not in h.error_log()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def test_single_process_httpd_exits_while_the_helper_waits_for_tailscaled(make_httpd,
                                                                          emulator):
    """The helper is inside a certificate request that tailscaled does not
    answer (it would wait MDTailscaleRequestTimeout, 120 s): httpd -X still
    stops it and exits."""
    emulator.fault("hang", endpoints=["cert"])
    h = md_httpd(make_httpd, md_config(global_extra=LOG_INFO + "\nMDTailscaleStartupWait 0"),
                 start=False)
    proc = subprocess.Popen(h._cmd("-X"), env=h._env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    h._started = True
    try:
        h.wait_ready()
        helper = helper_pid(h, timeout=30)
        wait_for(lambda: cert_requests(emulator), timeout=30,
                 what="the helper's certificate request to reach tailscaled")
        wait_for(lambda: serving(h), timeout=20, what="httpd -X to serve a request")
        idle(proc)
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: proc.poll() is not None, timeout=20,
                 what="httpd -X to exit while the helper waits for tailscaled")
        assert proc.returncode == 0, f"httpd -X ended with {proc.returncode}"
        wait_for(lambda: not alive(helper), timeout=20, what="the helper to end")
        assert stopped_by_httpd(h, helper), h.error_log()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        emulator.clear_fault()


def test_graceful_stop_ends_and_reaps_the_helper(make_httpd, emulator, mpm):
    h = md_httpd(make_httpd, md_config(global_extra=LOG_INFO), mpm=mpm)
    wait_real_cert(h, emulator)
    helper = helper_pid(h)
    parent = h.pid()
    assert alive(helper)

    subprocess.run(h._cmd("-k", "graceful-stop"), check=True, env=h._env(), timeout=60)
    wait_for(lambda: not alive(parent), timeout=30, what="httpd to stop gracefully")
    wait_for(lambda: not alive(helper), timeout=20, what="the helper to end")
    h._started = False
    assert stopped_by_httpd(h, helper), h.error_log()
    assert "TS02071" not in h.error_log() and "TS02074" not in h.error_log()
