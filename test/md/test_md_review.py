"""Smaller mod_md_tailscale defects from the fail-closed review (issue 11,
item 7): each test fails on the code before its fix."""

import pathlib
import re

from .mdhelp import DOMAIN, FAST, domain_status, md_config, md_httpd, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_last_error_cut_on_a_utf8_boundary_stays_in_the_status(make_httpd, emulator):
    # 1000 ASCII bytes and 20 two-byte characters: byte 1023 falls inside one
    text = "x" * 1000 + "\u00e9" * 20
    emulator.fault("ca500", endpoints=["cert"], text=text)
    h = md_httpd(make_httpd, md_config(global_extra=FAST))
    err = wait_for(lambda: domain_status(h).get("lastError"), timeout=30,
                   what="lastError in the status")
    got = err["text"]
    assert text.startswith(got)
    assert len(got.encode()) <= 1023 and len(got) >= 1000 + 10


def _message_texts(log_id):
    """The distinct format strings that carry log_id in the module's sources."""
    texts = set()
    for src in (ROOT / "mod_md_tailscale").glob("*.c"):
        code = src.read_text()
        for m in re.finditer(r'"%s(?::|",)' % log_id, code):
            # the message: from the ID to the end of the C statement
            end = code.find(";", m.start())
            texts.add(re.sub(r"\s+", " ", code[m.start():end]))
    return texts


def test_ts02048_and_ts02070_each_name_one_message():
    for log_id in ("TS02048", "TS02070"):
        texts = _message_texts(log_id)
        assert len(texts) == 1, (log_id, texts)


def _store_start(make_httpd, emulator, store):
    """Start with an unusable store: httpd starts all the same (issue 24) and
    logs what is wrong with the command that fixes it; returns that line."""
    conf = md_config(global_extra=f"MDTailscaleStoreDir {store}\n")
    h = md_httpd(make_httpd, conf)
    assert h.pid() and h._port_open(h.port)
    return h.wait_for_log(r"TS02100: [^\n]*").group(0)


def test_store_refuses_a_symlinked_directory(make_httpd, emulator, tmp_dir):
    import os
    real = tmp_dir / "real-store"
    real.mkdir()
    os.symlink(real, tmp_dir / "store")
    line = _store_start(make_httpd, emulator, tmp_dir / "store")
    assert "symbolic link" in line, line
    assert not (real / "domains").exists()


def test_store_refuses_directories_owned_by_another_uid(make_httpd, emulator, tmp_dir):
    import os
    from lib.httpd import www_data_ids
    store = tmp_dir / "store"
    (store / "domains").mkdir(parents=True)
    os.chown(store / "domains", *www_data_ids())
    line = _store_start(make_httpd, emulator, store)
    assert f"chown 0 {store}/domains" in line, line
    assert not (store / "domains" / DOMAIN).exists()


def test_store_refuses_group_writable_directories(make_httpd, emulator, tmp_dir):
    import os
    store = tmp_dir / "store"
    (store / "status").mkdir(parents=True)
    os.chmod(store / "status", 0o775)
    line = _store_start(make_httpd, emulator, store)
    assert f"chmod go-w {store}/status" in line, line
