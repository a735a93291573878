"""Every mod_authnz_tailscale directive and Require provider given wrong
arguments, or used where it is not allowed, fails `apache2 -t` with a
message naming it, and never crashes the configuration parser.  The
directive list is read from the module's command table
(mod_authnz_tailscale/azt_config.c), so a new directive is swept too.
test/authnz/test_config.py checks the wording for specific mistakes; this is
the systematic sweep (mod_md_tailscale: test/md/test_md_config.py)."""

import re
import signal
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "mod_authnz_tailscale" / "azt_config.c"
# (kind, name, the context flags as written, e.g. "RSRC_CONF | ACCESS_CONF")
DIRECTIVES = [(k, n, re.sub(r"\s+", " ", s).strip()) for k, n, s in
              re.findall(r'AP_INIT_(\w+)\("(\w+)",\s*\w+,\s*[^,]+,\s*([A-Z_| \n]+),',
                         SRC.read_text())]

# wrong argument lists per directive kind
BAD_ARGS = {
    "TAKE1": ["", '""', "one two", "'unterminated two"],
    "FLAG": ["", "maybe", '""'],   # httpd ignores extra words after On/Off
    "ITERATE": ["", '""'],
    "TAKE12": ["", "a b c"],
    "RAW_ARGS": [],
}

PROVIDERS = ["tailscale-user", "tailscale-node", "tailscale-tailnet", "tailscale-tag",
             "tailscale-cap", "tailscale-peer-node", "tailscale-peer-tag"]
BAD_REQUIRE = ["", '""', "'' x", 'x ""', '"x" "" y', "%{HTTP_HOST}", "x %{REMOTE_ADDR}"]


def cases():
    out = []
    for kind, name, scope in DIRECTIVES:
        server_only = scope == "RSRC_CONF"
        for args in BAD_ARGS.get(kind, []):
            line = f"{name} {args}".rstrip()
            where = "server" if server_only else "location"
            out.append(pytest.param(line, where, name, id=f"{where}:{line}"))
        if scope not in ("RSRC_CONF", "OR_AUTHCFG", "ACCESS_CONF"):
            continue            # allowed in server and directory context alike
        # the wrong context, with arguments that would otherwise be fine
        good = {"FLAG": "on"}.get(kind, "x")
        out.append(pytest.param(f"{name} {good}", "location" if server_only else "server", name,
                                id=f"wrong-context:{name}"))
    for p in PROVIDERS:
        for args in BAD_REQUIRE:
            line = f"Require {p} {args}".rstrip()
            out.append(pytest.param(line, "location", p, id=f"location:{line}"))
    out.append(pytest.param('Require tailscale-cap example.com/cap/web "" role=admin', "location",
                            "tailscale-cap", id="empty-arg-before-cap-condition"))
    return out


def test_the_command_table_was_read():
    names = {n for _, n, _ in DIRECTIVES}
    assert len(names) >= 10 and "AuthTailscaleURL" in names, DIRECTIVES


@pytest.mark.parametrize("line,where,needle", cases())
def test_wrong_arguments_fail_configtest_naming_the_directive(make_httpd, tmp_dir, line,
                                                              where, needle):
    conf = line if where == "server" else f"<Location /x>\n  {line}\n</Location>"
    h = make_httpd(conf, start=False, socket_path=str(tmp_dir / "none.sock"))
    rc, out = h.configtest()
    assert rc != 0, f"{line!r} in {where} context was accepted:\n{out}"
    assert rc not in (-signal.SIGSEGV, -signal.SIGABRT, 128 + signal.SIGSEGV,
                      128 + signal.SIGABRT), out
    assert "Segmentation" not in out and "AddressSanitizer" not in out, out
    assert needle in out, f"{line!r}: the message does not name {needle}:\n{out}"
    assert "Syntax error" in out, out
