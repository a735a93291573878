"""Every authorization rule against every kind of tailnet client, over IPv4
and IPv6, under event and prefork: who gets the protected content."""

import re

import pytest

from .site import ADMITS, CLIENT_NAMES, SECRET


def expected_status(rule, client):
    if client in ADMITS[rule]:
        return 200
    return 401 if rule.startswith("auth") else 403


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("rule", sorted(ADMITS))
def test_rule_admits_exactly_the_expected_clients(matrix_site, rule, v6):
    wrong = []
    for client in CLIENT_NAMES:
        status, body, _ = matrix_site.get(client, f"/p/{rule}", v6=v6)
        want = expected_status(rule, client)
        if status != want or (SECRET in body) != (want == 200):
            wrong.append(f"{client}: got {status}, want {want}")
    assert not wrong, f"rule {rule}: " + "; ".join(wrong)


def test_identity_variables_for_a_user(matrix_site):
    status, _, headers = matrix_site.get("laptop", "/p/user-alice")
    assert status == 200
    assert "X-TS-Login: alice@example.com" in headers
    assert "X-TS-Name: Alice Example" in headers
    assert "X-TS-Pic: https://example.com/alice.png" in headers
    assert "X-TS-Node: laptop.tail1234.ts.net" in headers
    assert "X-TS-Short: laptop" in headers
    assert "X-TS-Tailnet: tail1234.ts.net" in headers
    assert "X-TS-Tagged: 0" in headers
    assert 'X-TS-Caps: {"example.com/cap/web":[{"role":"admin"}]}' in headers
    assert "X-TS-Addr: 100.101.102.103:" in headers


def test_tagged_node_has_tags_and_no_user_login(matrix_site):
    status, _, headers = matrix_site.get("ci-runner", "/p/tag")
    assert status == 200
    assert 'X-TS-Tags: ["tag:ci","tag:build"]' in headers \
        or 'X-TS-Tags: ["tag:build","tag:ci"]' in headers
    assert "X-TS-Tagged: 1" in headers
    assert "X-TS-Login" not in headers   # tagged-devices is not a user


def test_sharee_has_login_but_no_tailnet(matrix_site):
    status, _, headers = matrix_site.get("friend", "/p/user-any")
    assert status == 200
    assert "X-TS-Login: friend@gmail.com" in headers
    assert "X-TS-Shared: 1" in headers
    assert re.search(r"^X-TS-Tailnet: *\r?$", headers, re.M)    # empty: name withheld


def test_authtype_sets_remote_user_and_auth_type(matrix_site):
    status, _, headers = matrix_site.get("phone", "/p/auth", v6=True)
    assert status == 200
    assert "X-Remote-User: bob@example.com" in headers
    assert "X-Auth-Type: tailscale" in headers


def test_authtype_tagged_user_node_sets_remote_user_to_fqdn(matrix_site):
    status, _, headers = matrix_site.get("ci-runner", "/p/auth-tagged-node")
    assert status == 200
    assert "X-Remote-User: ci-runner.tail1234.ts.net" in headers


def test_ipv6_peer_is_asked_with_brackets(matrix_site):
    matrix_site.emulator.reset_counters()
    status, _, headers = matrix_site.get("juergen-pc", "/p/user-glob", v6=True)
    assert status == 200
    assert "X-TS-Addr: [fd7a:115c:a1e0::3]:" in headers
