"""Cross-check: the emulator's status, whois and cert answers must parse in
a LocalAPI client nobody here wrote.  The npm package tslocal is a port of
Tailscale's Go client (client/local) whose zod schemas follow the Go types;
build/setup installs it (build/npm/package.json, test/lib/outside.py)."""

import json
import subprocess
from pathlib import Path

import pytest

from lib import outside

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "tslocal_check.mjs"


@pytest.fixture(scope="module")
def tslocal():
    return outside.npm_package("tslocal")


def test_tslocal_parses_status_whois_and_cert_pair(tslocal, emulator):
    node, modules = tslocal
    domain = "web1.tail1234.ts.net"
    p = subprocess.run([node, str(SCRIPT), str(modules), str(emulator.socket_path),
                        "100.101.102.103:443", domain],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    st = emulator.localapi("/localapi/v0/status").json()
    assert got["version"] == st["Version"] and got["backendState"] == "Running"
    assert got["selfDNSName"] == "web1.tail1234.ts.net."
    assert got["certDomains"] == [domain]
    assert got["peers"] == len(st["Peer"])
    who = emulator.localapi("/localapi/v0/whois?addr=100.101.102.103%3A443").json()
    assert got["login"] == "alice@example.com"
    assert got["groups"] == who["UserProfile"]["Groups"] == ["eng@example.com", "group:eng"]
    assert got["nodeName"] == "laptop.tail1234.ts.net."
    assert got["nodeID"] == str(who["Node"]["ID"])       # int64 kept exact (BigInt)
    assert got["capMap"] == {"example.com/cap/web": [{"role": "admin"}]}
    pair = emulator.localapi(f"/localapi/v0/cert/{domain}?type=pair").body.decode()
    assert got["key"] + got["cert"] == pair
    assert "PRIVATE KEY-----\n" in got["key"] and got["cert"].startswith("-----BEGIN CERTIFICATE")


def test_tslocal_refuses_a_wrongly_typed_answer(tslocal, emulator):
    # The cross-check can fail: a Go bool sent as a string breaks the schema.
    node, modules = tslocal
    emulator.patch_node("laptop", extra={"Online": "yes"})
    p = subprocess.run([node, str(SCRIPT), str(modules), str(emulator.socket_path),
                        "100.101.102.103:443", "web1.tail1234.ts.net"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "Online" in p.stderr, p.stdout + p.stderr
