"""Fixtures for mod_md_tailscale tests: emulators with a modified tailnet."""

import contextlib
import copy
import json
import os

import pytest

from lib.emulator import DEFAULT_TAILNET, Emulator


def merge(base, patch):
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def tailnet(**patch):
    """The sample tailnet with patch deep-merged in."""
    with open(DEFAULT_TAILNET) as f:
        base = json.load(f)
    return merge(base, patch)


@pytest.fixture
def make_emulator(tmp_dir):
    """Factory: make_emulator(tailnet_dict) -> a started Emulator (every one
    is stopped at teardown, even when stopping another fails)."""
    with contextlib.ExitStack() as cleanup:
        made = []

        def factory(tn=None):
            state = tmp_dir / f"emu{len(made)}"
            state.mkdir()
            os.chmod(state, 0o755)
            emu = Emulator()
            made.append(emu)
            cleanup.callback(emu.stop)
            emu.start(state, tailnet=tn)
            return emu

        yield factory
