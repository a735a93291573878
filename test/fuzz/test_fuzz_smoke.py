"""Smoke run of the libFuzzer targets (test/fuzz/fuzz_*.c) inside the test
suite: each target replays its whole seed corpus (which holds the regression
inputs of crashes found earlier) and then fuzzes briefly.  Any crash, leak,
sanitizer report or invariant violation fails the test.  Longer runs:
test/fuzz/run.sh SECONDS (make fuzz).

Skips when clang or its fuzzer runtime is missing (build/setup installs the
Debian packages clang and libclang-rt-dev)."""

import os
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TOP = HERE.parents[1]
OUT = TOP / "out" / "fuzz-smoke"
# Bounded by whichever comes first; neither is asserted on.
RUNS = 20000
SECONDS = 5


def targets():
    out = []
    for line in (HERE / "targets.txt").read_text().splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#"):
            out.append((parts[0], None if parts[1] == "-" else parts[1]))
    return out


TARGETS = targets()


@pytest.fixture(scope="module")
def fuzz_bin():
    p = subprocess.run([str(HERE / "build.sh"), "--out", str(OUT)], capture_output=True,
                       text=True, timeout=900)
    if p.returncode == 77:
        pytest.skip("clang/libFuzzer unavailable: " + p.stderr.strip())
    assert p.returncode == 0, f"fuzz build failed:\n{p.stdout}\n{p.stderr}"
    return OUT / "bin"


def run_fuzzer(binary, args, timeout):
    env = dict(os.environ)
    # fail on the first report, keep stack traces readable
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    p = subprocess.run([str(binary)] + args, capture_output=True, text=True,
                       timeout=timeout, env=env)
    return p.returncode, p.stdout + p.stderr


def test_every_source_target_is_listed():
    listed = {t for t, _ in TARGETS}
    sources = {p.stem for p in HERE.glob("fuzz_*.c")} - {"fuzz_common"}
    assert listed == sources


@pytest.mark.parametrize("target", [t for t, _ in TARGETS])
def test_seed_corpus_present(target):
    files = [p for p in (HERE / "corpus" / target).iterdir() if p.is_file()]
    assert len(files) >= 5, f"{target}: seed corpus too small"
    if target in ("fuzz_whois", "fuzz_status", "fuzz_cert_pair"):
        assert any(p.name.startswith("emu-") for p in files), \
            f"{target}: no seeds captured from the emulator (test/fuzz/seed_corpus.py)"


@pytest.mark.parametrize("target,dictionary", TARGETS, ids=[t for t, _ in TARGETS])
def test_replay_corpus_and_fuzz_briefly(fuzz_bin, target, dictionary, tmp_path):
    binary = fuzz_bin / target
    corpus = HERE / "corpus" / target
    # 1. every committed input, regressions included, one by one
    inputs = sorted(str(p) for p in corpus.iterdir() if p.is_file())
    rc, out = run_fuzzer(binary, ["-runs=1"] + inputs, timeout=300)
    assert rc == 0, f"{target} fails on a committed input:\n{out[-6000:]}"
    assert out.count("Executed ") >= len(inputs), out[-3000:]
    # 2. a short fuzzing run from the corpus
    work = tmp_path / "work"
    work.mkdir()
    args = [f"-runs={RUNS}", f"-max_total_time={SECONDS}", "-seed=1", "-timeout=10",
            "-rss_limit_mb=2048", "-max_len=65536", f"-artifact_prefix={tmp_path}/",
            str(work), str(corpus)]
    if dictionary:
        args.insert(0, f"-dict={HERE / 'dict' / dictionary}")
    rc, out = run_fuzzer(binary, args, timeout=SECONDS * 20 + 120)
    crashes = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert rc == 0 and not crashes, f"{target} crashed ({crashes}):\n{out[-6000:]}"
    assert "Done " in out, out[-3000:]
