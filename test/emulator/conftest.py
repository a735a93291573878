"""Fixtures for the emulator's own tests: a fresh emulator per test."""

import contextlib
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.emulator import DEFAULT_TAILNET, Emulator  # noqa: E402


def sample_tailnet():
    """A fresh copy of the sample tailnet description (a dict to modify)."""
    return json.loads(DEFAULT_TAILNET.read_text())


@pytest.fixture
def make_emulator(tmp_path):
    """Factory: make_emulator(tailnet=None|dict, mode="strict", env=None, name=...)
    -> a started Emulator; every one is stopped at teardown, even when
    stopping another fails."""
    with contextlib.ExitStack() as cleanup:
        made = []

        def factory(tailnet=None, mode="strict", env=None, state=None, **kw):
            emu = Emulator()
            made.append(emu)
            cleanup.callback(emu.stop)
            state = state or tmp_path / ("state%d" % len(made))
            return emu.start(state, tailnet=tailnet, mode=mode, env=env, **kw)

        yield factory


@pytest.fixture
def emulator(make_emulator):
    """A running strict emulator with the sample tailnet, except that first
    issuance takes 0.05 s instead of 0.3 s (tests that time issuance make
    their own emulator)."""
    t = sample_tailnet()
    t["certs"]["issue_delay"] = 0.05
    return make_emulator(t)


@pytest.fixture(scope="module")
def _shared_emulator(tmp_path_factory):
    emu = Emulator()
    try:
        emu.start(tmp_path_factory.mktemp("shared-emulator"))
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def readonly_emulator(_shared_emulator):
    """One emulator shared by tests that change nothing in it (saves a start
    per parametrized case); counters and the request log start at zero."""
    _shared_emulator.reset_counters()
    yield _shared_emulator
    assert _shared_emulator.fault_state()["mode"] == "none", "read-only tests must not set faults"
    assert _shared_emulator.certs() == {}, "read-only tests must not issue certificates"
