"""Graceful restarts must not make httpd's parent grow because of our modules.

Every graceful restart reloads the modules and rebuilds their configuration in
the parent; anything kept from one generation to the next (process-pool
allocations, library state set up again, helper bookkeeping) would grow the
parent for as long as the server runs.  A plain httpd grows a little on its
own (mod_ssl, heap fragmentation), so the parent with mod_md_tailscale and
mod_authnz_tailscale is compared with a plain httpd with an SSL virtual host
restarted the same number of times in the same test.

The measure is the resident anonymous memory of the parent (heap and
anonymous mappings, from /proc/PID/smaps), not its whole RSS, which also
moves with shared-library pages.  Both parents first go through WARMUP
restarts: the first dozens of restarts grow the heap of any httpd with an SSL
virtual host to its working size.  A leak of a few kilobytes per restart
shows as well over 100 KiB in RESTARTS restarts (a 5 KB process-pool
allocation per generation made the parent grow 292 kB against the plain
httpd's 28 kB); without one the difference is a few tens of KiB.  Under the
sanitizers (TSL_HTTPD_PRELOAD) freed memory is held in quarantine, so the
test is skipped there."""

import pytest

from lib.httpd import HTTPD_PRELOAD

from .mdhelp import DOMAIN, md_config, wait_real_cert

WARMUP = 20
RESTARTS = 30
# allowed extra growth of the parent with our modules, per restart
SLACK_KB_PER_RESTART = 2

PLAIN_SSL_VHOST = f"""
<VirtualHost 127.0.0.1:@TLS_PORT@>
  ServerName {DOMAIN}
  SSLEngine on
  SSLCertificateFile @SERVER_CERT@
  SSLCertificateKeyFile @SERVER_KEY@
</VirtualHost>
"""

AUTHNZ_LOCATION = """
<Location "/tailnet">
  Require tailscale-user *
</Location>
"""


def anon_rss_kb(pid):
    """Resident kB of the process's heap and anonymous mappings."""
    total, counting = 0, False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(maxsplit=1)[0]
            if "-" in first and not first.endswith(":"):
                fields = line.split()
                counting = len(fields) < 6 or fields[5] == "[heap]"
            elif counting and first == "Rss:":
                total += int(line.split()[1])
    return total


def restart_growth(instances, warmup, restarts):
    """Graceful-restart every instance warmup + restarts times, in turns;
    return each parent's growth in kB over the last restarts."""
    for _ in range(warmup):
        for h in instances:
            h.graceful()
    pids = [h.pid() for h in instances]
    before = [anon_rss_kb(pid) for pid in pids]
    for _ in range(restarts):
        for h in instances:
            h.graceful()
    assert [h.pid() for h in instances] == pids, "a graceful restart replaced the parent"
    return [anon_rss_kb(pid) - b for pid, b in zip(pids, before)]


@pytest.mark.skipif(bool(HTTPD_PRELOAD), reason="sanitizers keep freed memory in quarantine")
def test_graceful_restarts_grow_the_parent_no_more_than_a_plain_httpd(make_httpd,
                                                                     emulator):
    plain = make_httpd(PLAIN_SSL_VHOST, modules=["ssl"], our=[])
    ours = make_httpd(md_config(global_extra=AUTHNZ_LOCATION), modules=["ssl"],
                      our=["md_tailscale", "authnz_tailscale"])
    wait_real_cert(ours, emulator)

    plain_kb, ours_kb = restart_growth([plain, ours], WARMUP, RESTARTS)

    bound = plain_kb + SLACK_KB_PER_RESTART * RESTARTS
    assert ours_kb <= bound, (
        f"after {RESTARTS} graceful restarts the parent with mod_md_tailscale and "
        f"mod_authnz_tailscale grew by {ours_kb} kB, a plain httpd by {plain_kb} kB "
        f"(allowed: {bound} kB): something is kept from one generation to the next")
