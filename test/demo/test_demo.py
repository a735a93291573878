"""build/demo is the README's first command: it must keep showing what the
product does (who gets in, the identity with groups, a verified signed token,
a Tailscale Service's grants via its VIP, the ts.net certificate) and clean up
after itself.  It runs in a network namespace of its own, so its tailnet
clients never meet the ones other tests route."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_output():
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a private network namespace: {probe.stderr.decode()}")
    r = subprocess.run(["unshare", "-n", "sh", "-c",
                        f"ip link set lo up && exec {sys.executable} build/demo.py"],
                       cwd=REPO, capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return re.sub(r"\x1b\[[0-9;]*m", "", r.stdout)


def row(out, first):
    return next(line.split() for line in out.splitlines() if line.startswith(first + " "))


def test_demo_shows_who_gets_in_including_a_group_rule(demo_output):
    header = row(demo_output, "client")
    assert header[2:] == ["/team", "/admins", "/eng", "/ci", "/whoami"]
    laptop, phone = row(demo_output, "laptop"), row(demo_output, "phone")
    # the status columns end the row ("200 ok" is two words)
    assert " ".join(laptop).endswith("200 ok 200 ok 200 ok 403 200 ok")
    assert " ".join(phone).endswith("200 ok 403 403 403 200 ok")
    assert " ".join(row(demo_output, "stranger")).endswith("403 403 403 403 401")


def test_demo_shows_the_groups_this_node_may_see(demo_output):
    line = next(l for l in demo_output.splitlines() if l.strip().startswith("laptop ")
                and "REMOTE_USER=" in l)
    assert 'groups=\'["eng@example.com","group:eng"]\'' in line    # not group:payroll
    assert "group:payroll" not in demo_output


def test_demo_shows_service_grants_follow_the_vip(demo_output):
    lines = [l.split() for l in demo_output.splitlines() if " via " in l and "/admins" in l]
    # laptop via node address 100.100.0.1 /admins 200 TAILSCALE_SERVICE='' caps=...
    got = {(l[0], l[4]): (l[6], l[7]) for l in lines}
    assert got == {
        ("laptop", "100.100.0.1"): ("200", "TAILSCALE_SERVICE=''"),
        ("laptop", "100.100.100.50"): ("403", "TAILSCALE_SERVICE='svc:web'"),
        ("phone", "100.100.0.1"): ("403", "TAILSCALE_SERVICE=''"),
        ("phone", "100.100.100.50"): ("200", "TAILSCALE_SERVICE='svc:web'"),
    }, demo_output[-3000:]


def test_demo_serves_the_ts_net_certificate_and_deletes_its_files(demo_output):
    assert "verified TLS handshake: subject=((('commonName', 'web1.tail1234.ts.net')" \
        in demo_output
    gone = re.search(r"deleted (\S+) with the config", demo_output)
    assert gone and not Path(gone.group(1)).exists()


def test_demo_shows_one_verified_signed_token(demo_output):
    assert re.search(r"laptop's token \(\d+ bytes, kid [\w-]{43}\) verified by PyJWT", demo_output)
    assert "email      'alice@example.com'" in demo_output
    assert "refuses it (InvalidAudienceError)" in demo_output
