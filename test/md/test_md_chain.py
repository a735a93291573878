"""A certificate whose chain a client cannot verify is never stored or served
(issue 24, item 6): a leaf without its intermediate, a leaf followed by a CA
that did not issue it, a leaf with its names only in the CN.  The emulator's
cabadchain fault issues such chains; the working certificate stays."""

import time

import pytest

from .conftest import tailnet
from .mdhelp import (DOMAIN, FAST, domain_status, md_config, md_httpd, tls_get, wait_for,
                     wait_real_cert)

SHORT = tailnet(certs={"lifetime": 40, "issue_delay": 0.2})
RENEW = FAST + """
MDRenewWindow 30s
MDTailscaleCheckInterval 5s
"""

REASONS = {
    "leaf-only": "the chain holds only the leaf",
    "unrelated-ca": "certificate 1 of the chain",
    "cn-only": "no DNS names in a subjectAltName",
}


@pytest.mark.parametrize("chain", sorted(REASONS))
def test_broken_chain_is_rejected_and_the_old_certificate_stays(make_httpd, make_emulator,
                                                                 chain):
    emu = make_emulator(SHORT)
    h = md_httpd(make_httpd, md_config(ca=emu.socket_path, global_extra=RENEW),
                 socket_path=emu.socket_path)
    a = wait_real_cert(h, emu)
    emu.fault("cabadchain", chain=chain, endpoints=["cert"])
    line = h.wait_for_log(r"TS02049: [^\n]*", timeout=40).group(0)
    assert REASONS[chain] in line and "stays in use" in line, line
    time.sleep(2)       # retries meanwhile: none of them stored or restarted
    s = tls_get(h.tls_port, DOMAIN, emu.ca_pem_path)
    assert s.verified and s.fingerprint == a.fingerprint, s
    st = domain_status(h)
    assert st["cert"]["fingerprint"] == a.fingerprint
    assert st["lastError"]["kind"] == "bad-certificate"
    assert REASONS[chain] in st["lastError"]["text"]
    assert "TS02031" not in h.error_log().split(line)[1]
    # a good chain again: renewed and served
    emu.clear_fault()
    emu.clear_certs()       # tailscaled would renew the cached one later
    wait_for(lambda: (lambda s: s.verified and s.fingerprint != a.fingerprint)(
        tls_get(h.tls_port, DOMAIN, emu.ca_pem_path)), timeout=60,
        what="a good certificate after the fault")
