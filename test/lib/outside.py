"""Outside verifiers: clients nobody here wrote that the tests check our
answers with (npm packages listed in build/npm/package.json, run by node).
build/setup installs them all; a test that finds one missing skips when run
by hand, but fails in CI (CI=true) and under build/check, where a skipped
outside check would pass for a green run."""

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NPM_DIR = ROOT / "build" / "npm"


def required():
    """True when every outside verifier must run (CI, build/check)."""
    return (os.environ.get("CI", "").lower() in ("1", "true", "yes")
            or os.environ.get("TSL_OUTSIDE_CHECKS") == "required")


def missing(what):
    """Stop the test: `what` is not installed (a failure where required())."""
    msg = f"{what} is not installed: run build/setup, which installs every outside verifier"
    if required():
        pytest.fail(msg + " (CI and build/check run every outside check)", pytrace=False)
    pytest.skip(msg)


def npm_package(name):
    """(node, node_modules directory) for the npm package `name` that
    build/setup installed from build/npm/package.json."""
    node = shutil.which("node")
    if not node:
        missing("node")
    modules = NPM_DIR / "node_modules"
    if not (modules / name / "package.json").is_file():
        missing(f"npm package {name} (in {modules})")
    return node, modules
