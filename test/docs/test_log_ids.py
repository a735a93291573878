"""One log ID, one message, one documentation row.

The tables in docs/troubleshooting-identity.md (TS01nnn), docs/troubleshooting-
certificates.md (TS02nnn) and docs/tsl-check.md (TS03nnn) are the list of IDs,
as httpd's APLOGNO list is for its messages. This test reads the C sources, so
an ID anyone adds is checked too:

- every ID stands in exactly one message of the sources (adjacent string
  literals joined, comments ignored): a second message needs the next free ID;
- every ID has exactly one row in its program's table, and every row's ID is
  still in the sources;
- where a row names one level and the source logs at an APLOG_ level, they
  agree;
- an ID named anywhere in README.md or docs/ exists in the sources.
"""

import re
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ["localapi", "mod_authnz_tailscale", "mod_md_tailscale", "tools"]
ID = re.compile(r"\bTS0[123]\d{3}\b")
TABLE_FOR = {
    "TS01": "docs/troubleshooting-identity.md",
    "TS02": "docs/troubleshooting-certificates.md",
    "TS03": "docs/tsl-check.md",
}
LEVELS = {"EMERG": "emerg", "ALERT": "alert", "CRIT": "crit", "ERR": "error",
          "WARNING": "warn", "NOTICE": "notice", "INFO": "info", "DEBUG": "debug"}


TOKEN = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|[^"\'/]+|/',
                   re.S)


def literals(text):
    """(offset, joined literal) for every run of adjacent string literals."""
    out, run, start, end = [], [], 0, 0
    for m in TOKEN.finditer(text):
        tok = m.group(0)
        if tok.startswith('"'):
            if not run:
                start = m.start()
            run.append(tok[1:-1])
            end = m.end()
        elif tok.startswith(("//", "/*")) or tok.isspace():
            continue
        else:
            if run:
                out.append((start, "".join(run)))
                run = []
    if run:
        out.append((start, "".join(run)))
    return out


def level_of(text, offset):
    """The APLOG_ level of the statement a literal belongs to, if any."""
    stmt_start = max(text.rfind(";", 0, offset), text.rfind("{", 0, offset),
                     text.rfind("}", 0, offset)) + 1
    m = re.findall(r"APLOG_([A-Z]+)", text[stmt_start:offset])
    return LEVELS.get(m[-1]) if m else None


def source_messages():
    """ID -> list of (file:line, message text, level)."""
    found = defaultdict(list)
    for d in SOURCE_DIRS:
        for f in sorted((REPO / d).glob("*.[ch]")):
            text = f.read_text()
            for off, lit in literals(text):
                for i in ID.findall(lit):
                    where = f"{f.relative_to(REPO)}:{text.count(chr(10), 0, off) + 1}"
                    found[i].append((where, lit, level_of(text, off)))
    return found


def table_rows():
    """ID -> list of (doc, level column or None)."""
    rows = defaultdict(list)
    for doc in sorted(set(TABLE_FOR.values())):
        for line in (REPO / doc).read_text().split("\n"):
            m = re.match(r"^\|\s*`?(TS0\d{4})`?\s*\|([^|]*)\|", line)
            if m:
                rows[m.group(1)].append((doc, m.group(2).strip()))
    return rows


def test_every_id_stands_in_one_message():
    dup = {i: [w for w, _, _ in uses] for i, uses in source_messages().items()
           if len(uses) > 1}
    assert not dup, ("IDs used by more than one message (give each further message "
                     f"the next free ID of your range): {dup}")


def test_every_id_has_one_row_in_its_table():
    msgs, rows = source_messages(), table_rows()
    missing = sorted(i for i in msgs if i not in rows)
    twice = {i: r for i, r in rows.items() if len(r) > 1}
    wrong_doc = {i: r[0][0] for i, r in rows.items() if r[0][0] != TABLE_FOR[i[:4]]}
    assert not missing, f"IDs in the sources without a row in their table: {missing}"
    assert not twice, f"IDs with more than one row: {twice}"
    assert not wrong_doc, f"IDs documented in another program's table: {wrong_doc}"


def test_every_row_is_an_id_of_the_sources():
    msgs, rows = source_messages(), table_rows()
    stale = sorted(i for i in rows if i not in msgs)
    assert not stale, f"rows for IDs no source logs: {stale}"


def test_documented_level_is_the_logged_level():
    msgs, rows = source_messages(), table_rows()
    wrong = []
    for i, r in rows.items():
        doc_level = r[0][1]
        if doc_level not in LEVELS.values():
            continue        # "config error", "emerg / error", a table without levels
        for where, _, level in msgs.get(i, []):
            if level and level != doc_level:
                wrong.append(f"{i}: {where} logs at {level}, {r[0][0]} says {doc_level}")
    assert not wrong, "\n".join(wrong)


def test_ids_named_in_docs_exist():
    msgs = source_messages()
    unknown = []
    for f in [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md")) + [REPO / "tools/tsl-check.1"]:
        for n, line in enumerate(f.read_text().split("\n"), 1):
            for i in ID.findall(line):
                if i not in msgs:
                    unknown.append(f"{f.relative_to(REPO)}:{n}: {i}")
    assert not unknown, "docs name IDs no source logs:\n" + "\n".join(unknown)


def test_the_reader_finds_messages_split_over_literals():
    # the checks above are only as good as this reader
    text = ('/* "TS09999: in a comment" */\n'
            'ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "TS01999: a "\n'
            '             "split message %s", x);\n'
            'return "TS02999: returned";\n')
    lits = literals(text)
    assert [l for _, l in lits] == ["TS01999: a split message %s", "TS02999: returned"]
    assert level_of(text, lits[0][0]) == "warn"
    assert level_of(text, lits[1][0]) is None
