"""What mod_md_tailscale says matches what the docs promise: the first start
slower than MDTailscaleStartupWait logs TS02021 with that reason and no
failure line (getting-started §7)."""

from .conftest import tailnet
from .mdhelp import DOMAIN, FAST, md_config, md_httpd, wait_real_cert


def test_first_start_slower_than_the_startup_wait_is_ts02021_only(make_httpd, make_emulator):
    emu = make_emulator(tailnet(certs={"lifetime": 7776000, "issue_delay": 4}))
    h = md_httpd(make_httpd, md_config(ca=emu.socket_path,
                                       global_extra=FAST + "MDTailscaleStartupWait 1s\n"),
                 socket_path=emu.socket_path)
    line = h.wait_for_log(r"TS02021: [^\n]*").group(0)
    assert f"MDomain {DOMAIN}: no valid certificate yet (tailscaled did not answer within " \
           "MDTailscaleStartupWait (1s); the helper keeps asking)" in line, line
    wait_real_cert(h, emu, timeout=30)
    log = h.error_log()
    # the wait ran out as documented: not a timeout error naming another directive
    assert "TS02042" not in log and "MDTailscaleRequestTimeout" not in log, log
