"""Fixtures for mod_authnz_tailscale tests: an httpd listening on the server's
tailnet addresses, with clients in the tailnet namespace."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from lib.emulator import Emulator
from lib.httpd import Httpd
from . import site


def cgi_modules(mpm):
    return ["cgid"] if mpm == "event" else ["cgi"]


def cgi_config(mpm):
    conf = 'ScriptAlias /cgi-bin/ "@CGIBIN@/"\n'
    if mpm == "event":
        conf += "ScriptSock @DIR@/run/cgid.sock\n"
    return conf


ENV_CGI = """#!/bin/sh
echo "Content-Type: text/plain"
echo
env | grep -E '^(TAILSCALE_|REMOTE_USER=|AUTH_TYPE=|HTTP_TAILSCALE|HTTP_X_)' | sort
"""


class Site:
    """An httpd with the rule-matrix configuration plus the namespace clients."""

    def __init__(self, httpd, ns, emulator):
        self.httpd = httpd
        self.ns = ns
        self.emulator = emulator

    def get(self, client, path, v6=False, args=()):
        url = self.ns.server_url(self.httpd.ts_port, path, v6=v6)
        return self.ns.curl(client, url, *args)

    def raw(self, client, path, port=None, **kw):
        return self.ns.raw(client, port or self.httpd.ts_port, path, **kw)


@pytest.fixture(scope="module", params=["event", "prefork"])
def matrix_site(request, tailnet_ns):
    """One site per MPM for the whole module (the access matrix is read-only).
    Teardown runs every step (httpd, emulator, directory) even when an
    earlier one fails; a failure is reported with any other chained to it."""
    with contextlib.ExitStack() as cleanup:
        base = Path(tempfile.mkdtemp(prefix="tsl-matrix-"))
        cleanup.callback(shutil.rmtree, base, ignore_errors=True)
        os.chmod(base, 0o755)
        emu = Emulator()
        cleanup.callback(emu.stop)
        (base / "emu").mkdir()
        emu.start(base / "emu")
        h = Httpd(base / "httpd", config=site.site_config(), mpm=request.param,
                  modules=["headers"], socket_path=emu.socket_path, tailnet=True)
        cleanup.callback(h.stop)
        site.prepare_docroot(h)
        h.start()
        yield Site(h, tailnet_ns, emu)


@pytest.fixture
def make_site(emulator, tailnet_ns, make_httpd):
    """Factory: make_site(extra_config, mpm=..., modules=[...]) -> Site."""
    def factory(extra="", mpm="event", modules=(), **kw):
        mods = ["headers"] + list(modules)
        h = make_httpd(site.site_config(extra), mpm=mpm, modules=mods, tailnet=True,
                       start=False, **kw)
        site.prepare_docroot(h)
        h.start()
        return Site(h, tailnet_ns, emulator)
    return factory
