"""Every ```apache block in README.md and docs/*.md is configuration a user
will paste: each one must pass `apache2 -t` with our modules loaded, and none
may carry a trailing `#` comment (Apache has none: the words would become
arguments, and `Require tailscale-user alice # not *` admitted everyone).

How a block is checked:
- LoadModule lines are dropped (the harness loads Debian's modules and ours);
  the modules a block needs are read off its directives (MODULES_FOR).
- tailscaled socket paths become the emulator's socket; certificate and key
  paths the test PKI's files (its EC P-256 key also stands in for
  AuthTailscaleAssertionKey files); Listen lines and ports of <VirtualHost> are kept
  (apache2 -t binds nothing).
- A fragment of directory-context directives (Require, AuthType, ...) that
  httpd refuses at server level is checked again inside <Location />.
- A block that shows a mistake on purpose is preceded by the line
  `<!-- doc-example: fails -->`; it must then fail `apache2 -t`.
"""

import re
from pathlib import Path

import pytest

from lib import pki

REPO = Path(__file__).resolve().parents[2]
FAILS_MARK = "<!-- doc-example: fails -->"

# directive (lower case) -> Debian modules it needs
MODULES_FOR = {
    "sslengine": ["ssl", "socache_shmcb"],
    "sslcertificatefile": ["ssl", "socache_shmcb"],
    "proxypass": ["proxy", "proxy_http"],
    "proxypassreverse": ["proxy", "proxy_http"],
    "proxyremote": ["proxy", "proxy_http"],
    "remoteipheader": ["remoteip"],
    "remoteipproxyprotocol": ["remoteip"],
    "remoteiptrustedproxy": ["remoteip"],
    "remoteipinternalproxy": ["remoteip"],
    "protocols": ["http2"],
    "h2direct": ["http2"],
    "rewriteengine": ["rewrite"],
    "rewriterule": ["rewrite"],
    "rewritecond": ["rewrite"],
    "extendedstatus": ["status"],
    "scriptalias": ["cgid"],
    "sethandler": ["status"],
    "authtailscalecache": ["socache_shmcb"],
    "oidcoauthverifyjwksuri": ["auth_openidc"],
}
# directives that need Debian's mod_md next to ours (ACME MDomains)
MD_ACME = re.compile(r"^\s*MDCertificateAgreement|^\s*MDContactEmail|^\s*MDCertificateProtocol\s+ACME",
                     re.I | re.M)
SOCKETS = re.compile(r"(file://localhost)?(/var)?/run/tailscale/tailscaled\.sock|/path/to/tailscaled\.sock")


def blocks():
    out = []
    for f in [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md")):
        lines = f.read_text().split("\n")
        i = 0
        while i < len(lines):
            m = re.match(r"^(\s*)```apache\s*$", lines[i])
            if not m:
                i += 1
                continue
            indent, start, body = len(m.group(1)), i + 1, []
            fails = i > 0 and lines[i - 1].strip() == FAILS_MARK
            i += 1
            while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
                body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
                i += 1
            out.append((f"{f.relative_to(REPO)}:{start}", "\n".join(body), fails))
            i += 1
    return out


BLOCKS = blocks()


def test_the_docs_have_apache_examples():
    assert len(BLOCKS) >= 10, [b[0] for b in BLOCKS]


@pytest.mark.parametrize("where,text,fails", BLOCKS, ids=[b[0] for b in BLOCKS])
def test_no_example_has_a_trailing_comment(where, text, fails):
    bad = [l for l in text.split("\n") if "#" in l and not l.strip().startswith("#")
           and not re.search(r"[\"'][^\"']*#", l) and not re.search(r"%\{[^}]*#", l)]
    assert not bad, f"{where}: Apache has no trailing comments; put these on a line of their own: {bad}"


def prepare(text, emulator, pki):
    """The block as httpd.conf text plus the Debian modules and ours it needs."""
    kept, mods, ours = [], set(), {"authnz_tailscale"}
    for line in text.split("\n"):
        word = line.strip().split(None, 1)[0].lower() if line.strip() else ""
        if word == "loadmodule":
            continue
        mods.update(MODULES_FOR.get(word.lstrip("<"), []))
        if word.lstrip("<").startswith("md") or (re.search(r"\.ts\.net", line)
                                                 and "sslengine" in text.lower()):
            ours.add("md_tailscale")
        kept.append(line)
    conf = "\n".join(kept)
    conf = SOCKETS.sub(emulator.socket_path, conf)
    conf = re.sub(r"(SSLCertificateFile\s+)\S+", rf"\g<1>{pki.server_cert}", conf)
    conf = re.sub(r"(SSLCertificateKeyFile\s+)\S+", rf"\g<1>{pki.server_key}", conf)
    conf = re.sub(r"(AuthTailscaleAssertionKey\s+)\S+", rf"\g<1>{pki.server_key}", conf)
    if "md_tailscale" in ours or "ssl" in mods:
        mods.update(["ssl", "socache_shmcb"])
    if MD_ACME.search(conf):
        mods.add("md")
    return conf, sorted(mods), sorted(ours)


@pytest.mark.parametrize("where,text,fails", BLOCKS, ids=[b[0] for b in BLOCKS])
def test_example_parses(where, text, fails, emulator, make_httpd):
    conf, mods, ours = prepare(text, emulator, pki.test_pki())
    h = make_httpd(conf, start=False, modules=mods, our=ours)
    rc, out = h.configtest()
    if rc != 0 and "not allowed here" in out and not fails:
        h = make_httpd(f"<Location />\n{conf}\n</Location>", start=False, modules=mods, our=ours)
        rc, out = h.configtest()
    if fails:
        assert rc != 0, f"{where} is marked to fail but passes apache2 -t:\n{conf}"
    else:
        assert rc == 0, f"{where} does not pass apache2 -t:\n{out}\n--- as checked:\n{conf}"


def test_debian_examples_enable_modules_with_a2enmod_not_loadmodule():
    # a LoadModule of a Debian module path in a site file collides with
    # `a2enmod` (AH01574: module already loaded) and survives `a2dismod`
    bad = [where for where, text, _ in blocks()
           if re.search(r"^\s*LoadModule\s+\S+\s+/usr/lib/apache2/modules/", text, re.M)]
    assert not bad, f"use a2enmod in Debian examples: {bad}"
