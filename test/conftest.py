"""Shared pytest fixtures: the tailscaled emulator, httpd instances with our
modules, and real tailnet addresses in a network namespace."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lib.emulator import Emulator  # noqa: E402
from lib.httpd import Httpd  # noqa: E402
from lib import netns as netns_lib  # noqa: E402
from lib import staging  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "other_user: runs something as another uid (www-data, nobody); "
        "test/checkout/test_private_checkout.py runs these from a checkout below a 0700 directory")


@pytest.fixture(scope="session", autouse=True)
def staging_area():
    """The 0755 directory under /tmp with the copies of what tests run as
    another user (lib/staging.py); removed when the session ends."""
    yield staging.area()
    staging.remove()


@pytest.fixture
def tmp_dir():
    """A fresh 0755 directory that www-data children can read."""
    d = Path(tempfile.mkdtemp(prefix="tsl-test-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def emulator(tmp_dir):
    """A running strict tailscaled emulator with the sample tailnet."""
    state = tmp_dir / "emulator"
    state.mkdir()
    os.chmod(state, 0o755)
    emu = Emulator()
    try:
        emu.start(state)
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def make_httpd(tmp_dir, request):
    """Factory: make_httpd(config, mpm=..., modules=[...], our=[...], start=True).
    Every instance is stopped (and checked for crashes) at teardown."""
    made = []

    def factory(config="", start=True, socket_path=None, **kw):
        if socket_path is None and "emulator" in request.fixturenames:
            socket_path = request.getfixturevalue("emulator").socket_path
        h = Httpd(tmp_dir / f"httpd{len(made)}", config=config, socket_path=socket_path, **kw)
        made.append(h)
        if start:
            h.start()
        return h

    yield factory
    # Every instance is stopped even when stopping another one fails.
    errors = []
    for h in made:
        try:
            h.stop()
        except AssertionError as e:
            errors.append(str(e))
        except Exception as e:     # e.g. apache2 -k stop timed out
            errors.append(f"stopping {h.dir}: {type(e).__name__}: {e}")
    if errors:
        pytest.fail("\n".join(errors))


@pytest.fixture(scope="session")
def tailnet_ns():
    """The sample tailnet's client addresses in a network namespace (skips
    where namespaces cannot be made)."""
    ns = netns_lib.TailnetNamespace()
    try:
        ns.create()      # removes what it made when it fails
    except netns_lib.NetnsUnavailable as e:
        pytest.skip(f"network namespaces unavailable: {e}")
    try:
        yield ns
    finally:
        ns.destroy()


@pytest.fixture(params=["event", "prefork"])
def mpm(request):
    """Run a test under both MPMs."""
    return request.param
