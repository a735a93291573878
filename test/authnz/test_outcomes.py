"""Errors are never "not this user" (issue 23): a lookup has three outcomes,
and only tailscaled's own no-match answer (or an address that can never be
a peer) is "not a tailnet peer".  Every whois result code, read from
localapi/tsl_result.h so that a new one fails here until it is placed, is
driven through every rule composition a negation can hide in, in both
AuthTailscaleUnavailable modes: never the protected body.  Every path in
azt_lookup.c that ends without an identity is listed here too."""

import re
from pathlib import Path

import pytest

from .site import SECRET
from .test_negation import shape_locations

TOP = Path(__file__).resolve().parents[2]

NO_CACHE = """
AuthTailscaleCacheTimeout 0
AuthTailscaleNegativeCacheTimeout 0
AuthTailscaleTimeout 700ms
<AuthzProviderAlias tailscale-user ts-alice alice@example.com>
</AuthzProviderAlias>
"""

# bob (phone) is admitted by every one of these while tailscaled answers:
# each excludes alice through a negation.
SHAPES = {
    "not": ("<RequireAll>\n    Require ip 100.64.0.0/10\n"
            "    Require not tailscale-user alice@example.com\n  </RequireAll>"),
    "quoted-not": ("<RequireAll>\n    Require ip 100.64.0.0/10\n"
                   "    Require \"not\" tailscale-user alice@example.com\n  </RequireAll>"),
    "none": ("<RequireAll>\n    Require ip 100.64.0.0/10\n    <RequireNone>\n"
             "      Require tailscale-user alice@example.com\n"
             "    </RequireNone>\n  </RequireAll>"),
    "any-ip": ("<RequireAny>\n    Require ip 192.0.2.0/24\n    <RequireAll>\n"
               "      Require ip 100.64.0.0/10\n"
               "      Require not tailscale-user alice@example.com\n"
               "    </RequireAll>\n  </RequireAny>"),
    "alias": ("<RequireAll>\n    Require ip 100.64.0.0/10\n"
              "    Require not ts-alice\n  </RequireAll>"),
}
MODES = ("error", "deny")

# Every tsl_code that is not an identity or tailscaled's no-match, and how
# the emulator makes whois end with it.  None: whois over a socket cannot
# produce it (a bad argument, a certificate check); fuzz_require drives it
# through the same mapper (azt_outcome_of).
FAULTS = {
    "TSL_ERR_INVALID": None,
    "TSL_ERR_SOCKET_MISSING": {"mode": "down"},
    "TSL_ERR_CONNECT": {"mode": "refuse"},
    "TSL_ERR_TIMEOUT": {"mode": "hang"},
    "TSL_ERR_TRANSPORT": {"mode": "reset"},
    "TSL_ERR_TOO_LARGE": {"mode": "oversized"},
    "TSL_ERR_DENIED": {"mode": "garbage", "status": 403, "body": "whois access denied\n"},
    "TSL_ERR_RATE_LIMITED": {"mode": "http429"},
    "TSL_ERR_HTTP": {"mode": "http500"},
    "TSL_ERR_PARSE": {"mode": "garbage"},
    "TSL_ERR_CERT": None,
}
# Not error codes but answers from something that is not tailscaled.
EXTRA_FAULTS = {
    "foreign 404": {"mode": "garbage", "status": 404, "body": "404 page not found\n"},
    "404 with other text": {"mode": "garbage", "status": 404, "body": "no match\n"},
}


def source_codes():
    text = (TOP / "localapi" / "tsl_result.h").read_text()
    body = re.search(r"typedef enum tsl_code \{(.*?)\} tsl_code;", text, re.S).group(1)
    return re.findall(r"^\s*(TSL_[A-Z_]+)", body, re.M)


def test_every_result_code_is_placed():
    codes = set(source_codes()) - {"TSL_OK", "TSL_ERR_NOT_FOUND"}
    assert codes == set(FAULTS), f"place these codes in FAULTS: {codes ^ set(FAULTS)}"


# Every way azt_lookup.c ends a lookup without an identity: the reason text
# (or its call) and the test that drives it.
LOOKUP_PATHS = {
    "down_text": "test_no_shape_grants_when_whois_fails[*] (breaker open)",
    "res.text": "test_no_shape_grants_when_whois_fails[*]",
    "lacks a field rules match on": "test_an_answer_missing_a_matched_field_is_unusable",
    "is not an IP address": "unreachable from a socket (apr formats every peer address)",
    "the forwarded address is not a tailnet address": "test_proxy (public client behind the edge)",
    "azt_peer_kind_reason(kind)": "test_identity_spoofs (self, public)",
    "cannot be formatted": "unreachable from a socket",
    "a public Funnel client": "test_behind_serve::test_funnel_request_is_not_a_peer",
    "tailscale serve forwarded no usable X-Forwarded-For":
        "test_identity_spoofs::test_serve_without_a_usable_forwarded_address_is_unavailable",
    "the trusted proxy forwarded no": "test_identity_spoofs (no client, PROXY UNKNOWN)",
    "not initialised for this": "unreachable after child_init",
    "no socket peer address": "unreachable for a TCP connection",
    "tailscaled names this node itself": "test_identity_spoofs::test_the_self_node_named_*",
}


def test_every_lookup_path_without_an_identity_is_listed():
    src = (TOP / "mod_authnz_tailscale" / "azt_lookup.c").read_text()
    calls = re.findall(r"\b(unavailable|not_a_peer_address)\(([^;]*?)\);", src, re.S)
    assert calls, "no outcome constructors found in azt_lookup.c"
    unlisted = [args for name, args in calls
                if not args.startswith("azt_answer")
                and not any(k in args for k in LOOKUP_PATHS)]
    assert not unlisted, "list these lookup paths in LOOKUP_PATHS: %s" % unlisted


def config():
    return shape_locations(NO_CACHE, "o-", MODES, SHAPES)


def check_never_granted(site, label):
    wrong = []
    for mode in MODES:
        for shape in SHAPES:
            status, body, _ = site.get("phone", f"/p/o-{mode}-{shape}")
            if status == 200 or SECRET in body:
                wrong.append(f"{label} {mode}-{shape}: {status}")
    return wrong


@pytest.mark.parametrize("case", sorted(k for k, v in {**FAULTS, **EXTRA_FAULTS}.items() if v))
def test_no_shape_grants_when_whois_fails(make_site, case):
    site = make_site(config())
    up = [f"up {m}-{s}" for m in MODES for s in SHAPES
          if site.get("phone", f"/p/o-{m}-{s}")[0] != 200]
    assert not up, up
    fault = dict({**FAULTS, **EXTRA_FAULTS}[case])
    site.emulator.fault(fault.pop("mode"), endpoints=["whois"], **fault)
    wrong = check_never_granted(site, case)
    assert not wrong, "\n".join(wrong)


def test_an_answer_missing_a_matched_field_is_unusable(make_site, emulator):
    # A login with a control character cannot be matched: `Require not
    # tailscale-user alice` must not grant it.
    site = make_site(config())
    evil = "alice@example.com\x01"
    emulator.patch_tailnet({"users": {evil: {"id": 4242}}})
    emulator.patch_node("phone", user=evil)
    try:
        wrong = check_never_granted(site, "control character")
        assert not wrong, "\n".join(wrong)
    finally:
        emulator.patch_node("phone", user="bob@example.com")


def test_an_over_long_socket_path_is_refused_at_configtest(make_httpd):
    path = "/tmp/" + "s" * 136
    h = make_httpd(f"AuthTailscaleURL {path}\n", start=False)
    rc, out = h.configtest()
    assert rc != 0 and "at most 107" in out, out
