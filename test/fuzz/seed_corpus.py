#!/usr/bin/python3
"""Regenerate the emulator-captured seeds in test/fuzz/corpus/.

Starts the tailscaled emulator (test/emulator/tailscaled_emu.py) with the
sample tailnet, records its real answers (whois for every sample client over
IPv4/IPv6 with and without a port, the 404 text, status in several backend
states, certificate pairs fetched as root, including a wildcard one) and
writes them as corpus files named emu-*.  Hand-made edge cases (hand-*)
are kept as they are.  Run as root: /usr/bin/python3 test/fuzz/seed_corpus.py
"""

import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from lib.emulator import Emulator  # noqa: E402
from lib.netns import CLIENTS  # noqa: E402

CORPUS = HERE / "corpus"


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / name).write_bytes(data)


def main():
    for old in CORPUS.glob("*/emu-*"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="tsl-seed-") as tmp:
        os.chmod(tmp, 0o755)
        emu = Emulator().start(Path(tmp) / "state")
        try:
            capture(emu)
        finally:
            emu.stop()


def capture(emu):
    for name, (v4, v6) in CLIENTS.items():
        for label, addr in (("v4", v4), ("v6port", f"[{v6}]:443"), ("v4port", f"{v4}:51234")):
            r = emu.localapi(f"/localapi/v0/whois?addr={addr}")
            write("fuzz_whois", f"emu-{name}-{label}.json", r.body)
            write("fuzz_addr", f"emu-{name}-{label}", addr)
            write("fuzz_addr", f"emu-{name}-v6", v6)
    # capabilities of every shape the JSON allows, encoded by the emulator
    emu.patch_node("laptop", cap_map={
        "example.com/cap/web": [{"role": "admin", "paths": ["/a", "/b"], "n": 1.50,
                                 "ok": True, "none": None, "nested": {"x": [1, {"y": "z"}]}},
                                "plain-string", 42, ["x"], None],
        "example.com/cap/ünïcode": [{"name": "J\u00fcrgen <&> \u2028"}],
        "tailscale.com/cap/empty": [],
        "a/cap/null": None,
    })
    r = emu.localapi("/localapi/v0/whois?addr=100.101.102.103")
    write("fuzz_whois", "emu-laptop-complex-caps.json", r.body)
    r = emu.localapi("/localapi/v0/whois?addr=100.64.0.99")
    write("fuzz_whois", "emu-404-text", r.body)

    r = emu.localapi("/localapi/v0/status?peers=false")
    write("fuzz_status", "emu-running.json", r.body)
    r = emu.localapi("/localapi/v0/status")
    write("fuzz_status", "emu-running-peers.json", r.body)
    for state in ("NeedsLogin", "Stopped", "Starting"):
        emu.set_backend(state)
        r = emu.localapi("/localapi/v0/status?peers=false")
        write("fuzz_status", f"emu-{state.lower()}.json", r.body)
    emu.set_backend("Running")

    r = emu.localapi("/localapi/v0/cert/web1.tail1234.ts.net?type=pair", uid=0)
    assert r.status == 200, r
    write("fuzz_cert_pair", "emu-web1-pair.pem", r.body)
    emu.patch_tailnet({"wildcard_certs": True})
    r = emu.localapi("/localapi/v0/cert/*.web1.tail1234.ts.net?type=pair", uid=0)
    if r.status == 200:
        write("fuzz_cert_pair", "emu-wildcard-pair.pem", r.body)
    r = emu.localapi("/localapi/v0/status?peers=false")
    write("fuzz_status", "emu-wildcard.json", r.body)

    print("captured seeds from the emulator into", CORPUS)


if __name__ == "__main__":
    main()
