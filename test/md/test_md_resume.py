"""What a restart must not forget (issue 24 item 7, issue 25 item 12): a
remembered 429 Retry-After holds across cold starts, and the consecutive
failures and the back-off go on across a graceful restart."""

from .mdhelp import (FAST, cert_requests, domain_status, md_config, md_httpd, wait_for)


def test_cold_starts_honour_a_remembered_retry_after(make_httpd, emulator):
    emulator.fault("http429", endpoints=["cert"], retry_after=600)
    h = md_httpd(make_httpd, md_config(global_extra=FAST))
    h.wait_for_log(r"TS02047: ")
    wait_for(lambda: domain_status(h).get("retryAfterUntil"), what="retryAfterUntil")
    assert len(cert_requests(emulator)) == 1
    for i in range(3):
        h.stop()
        h.start()
        wait_for(lambda: domain_status(h).get("helperPid"), what="the new helper")
        assert "TS02108: " in h.error_log()
    # four starts, one request: the startup wait and the helpers all waited
    assert len(cert_requests(emulator)) == 1, cert_requests(emulator)


def test_failures_and_back_off_survive_a_graceful_restart(make_httpd, emulator):
    emulator.fault("http500", endpoints=["cert"])
    h = md_httpd(make_httpd, md_config(global_extra="MDTailscaleRetryDelay 1s 1h\n"))
    before = wait_for(lambda: (lambda d: d if d["errors"] >= 3 else None)(domain_status(h)),
                      timeout=30, what="three consecutive failures")
    h.graceful()
    after = wait_for(lambda: (lambda d: d if d["helperPid"] != before["helperPid"]
                              and d["lastCheck"] and d["lastCheck"] != before["lastCheck"]
                              else None)(
        domain_status(h)), timeout=30, what="the new helper's first check")
    # counted on, not from zero, and the back-off doubled on from where it was
    assert after["errors"] >= before["errors"] + 1, (before["errors"], after["errors"])
    assert after["backoffSeconds"] >= 2 * before["backoffSeconds"] > 0, \
        (before["backoffSeconds"], after["backoffSeconds"])
    assert isinstance(after["certDomains"], (list, type(None)))


def test_the_job_record_is_private_and_what_a_restart_resumes(make_httpd, emulator):
    import os
    import stat
    from pathlib import Path
    from .mdhelp import DOMAIN
    emulator.fault("http500", endpoints=["cert"])
    h = md_httpd(make_httpd, md_config(global_extra="MDTailscaleRetryDelay 2s 1h\n"))
    before = wait_for(lambda: (lambda d: d if d["errors"] >= 2 else None)(domain_status(h)),
                      timeout=30, what="two consecutive failures")
    store = Path(h.dir) / "md_tailscale"
    job = store / "domains" / DOMAIN / "job.json"
    assert stat.S_IMODE(job.stat().st_mode) == 0o600
    # the public status file is for display only: without it the count goes on
    os.unlink(store / "status" / f"{DOMAIN}.json")
    h.graceful()
    after = wait_for(lambda: (lambda d: d if d["helperPid"] != before["helperPid"]
                              and d["lastCheck"] and d["lastCheck"] != before["lastCheck"]
                              else None)(domain_status(h)), timeout=30,
                     what="the new helper's first check")
    assert after["errors"] >= before["errors"] + 1, (before["errors"], after["errors"])
