"""A tailscale rule that could not be evaluated never makes its negation
true: with tailscaled down, hanging, answering garbage or 500, no shape of
rule composition serves the protected body, in either
AuthTailscaleUnavailable mode.  laptop is alice: every location admits her
while tailscaled answers, except the negated ones, which exclude her."""

import pytest

from .site import SECRET

NO_CACHE = """
AuthTailscaleCacheTimeout 0
AuthTailscaleNegativeCacheTimeout 0
AuthTailscaleTimeout 700ms
"""

SHAPES = {
    "plain": "Require tailscale-user alice@example.com",
    "not": ("<RequireAll>\n    Require ip 100.64.0.0/10\n"
            "    Require not tailscale-user alice@example.com\n  </RequireAll>"),
    "all": ("<RequireAll>\n    Require ip 100.64.0.0/10\n"
            "    Require tailscale-user alice@example.com\n  </RequireAll>"),
    "any": ("<RequireAny>\n    Require tailscale-user alice@example.com\n"
            "    Require ip 192.0.2.0/24\n  </RequireAny>"),
    "none": ("<RequireAll>\n    Require ip 100.64.0.0/10\n    <RequireNone>\n"
             "      Require tailscale-tag tag:ci\n"
             "      Require tailscale-user alice@example.com\n"
             "    </RequireNone>\n  </RequireAll>"),
}

# What alice gets while tailscaled answers.
UP = {"plain": 200, "not": 403, "all": 200, "any": 200, "none": 403}

# What she gets when it cannot: "error" answers 503 everywhere; "deny" lets a
# rule that cannot be evaluated deny, except where it is negated (its
# negation would then be true): there the location answers 503 too.
DOWN = {
    "error": {shape: 503 for shape in SHAPES},
    "deny": {"plain": 403, "not": 503, "all": 403, "any": 403, "none": 503},
}

FAULTS = ["down", "hang", "garbage", "http500"]


def shape_locations(head, prefix, modes, shapes):
    """head, then a location /p/<prefix><mode>-<shape> per mode and shape."""
    parts = [head]
    for mode in modes:
        for shape, rule in shapes.items():
            parts.append(f"<Location /p/{prefix}{mode}-{shape}>\n"
                         f"  AuthTailscaleUnavailable {mode}\n  {rule}\n</Location>")
    return "\n".join(parts)


def config():
    return shape_locations(NO_CACHE, "", DOWN, SHAPES)


@pytest.mark.parametrize("fault", FAULTS)
def test_no_composition_serves_the_body_while_tailscaled_cannot_answer(make_site, fault):
    site = make_site(config())
    wrong = []
    for mode in DOWN:
        for shape in SHAPES:
            status, _, _ = site.get("laptop", f"/p/{mode}-{shape}")
            if status != UP[shape]:
                wrong.append(f"up {mode}-{shape}: {status}, want {UP[shape]}")
    site.emulator.fault(fault)
    for mode, want in DOWN.items():
        for shape in SHAPES:
            status, body, _ = site.get("laptop", f"/p/{mode}-{shape}")
            if SECRET in body or status != want[shape]:
                wrong.append(f"{fault} {mode}-{shape}: {status}, want {want[shape]}"
                             + (" WITH THE BODY" if SECRET in body else ""))
    assert not wrong, "\n".join(wrong)
