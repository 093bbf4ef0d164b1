"""What logferry prints: log values as text (no rich markup, control characters made
visible), and tables that are not wrapped when the output is not a terminal."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys

import pytest
from click.testing import CliRunner

from logferry import term
from logferry.cli import app

#: user agents a visitor can send (nginx writes bytes < 0x20 and > 0x7e as \xHH)
HOSTILE = [
    r"[/bold]",
    r"[link=https://evil.example/]click me[/link]",
    r"[blink red]blinking",
    r"evil\x1B]0;pwned\x07 and \x1B[2J cleared",
    r"bell\x07\x7f del",
]


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    lines = []
    for i, ua in enumerate(HOSTILE):
        for k in range(3):
            lines.append(f'1.2.3.{i} - - [01/Mar/2024:10:0{i}:0{k} +0000] "GET /p{i}?q=[red]x HTTP/1.1" '
                         f'200 {100 + i} "-" "{ua}"')
    log = d / "access.log"
    log.write_text("\n".join(lines) + "\n")
    db = str(d / "u.duckdb")
    r = CliRunner().invoke(app, ["ingest", "--db", db, str(log)])
    assert r.exit_code == 0, r.output
    return db


def test_safe_makes_control_characters_visible_and_leaves_text_alone():
    assert term.safe("plain [bold]text[/bold] é 漢字") == "plain [bold]text[/bold] é 漢字"
    assert term.safe("a\x1b]0;t\x07b\x1b[2J") == "a\\x1b]0;t\\x07b\\x1b[2J"
    assert term.safe("tab\there\nnl\rcr") == "tab\\there\\nnl\\rcr"
    assert term.safe("\x7f\x9b\x85") == "\\x7f\\x9b\\x85"
    assert term.safe("rtl\u202eoverride\u2066\u2028") == "rtl\\u202eoverride\\u2066\\u2028"
    assert term.safe("lone \udcff surrogate") == "lone \\udcff surrogate"
    assert term.safe(None) == "" and term.safe(12) == "12"


def test_json_safe_is_the_same_json_value_without_raw_controls():
    v = {"ua": "x\x7f\x9b\u202ey\x1b", "n": 1}
    s = term.json_safe(json.dumps(v, ensure_ascii=False))
    assert json.loads(s) == v
    assert not any(c in s for c in "\x7f\x9b\u202e\x1b")


def test_rich_table_on_a_terminal_prints_markup_as_text():
    out = io.StringIO()
    term.table(["ua", "n"], [[u, 1] for u in ["[/bold]", "[link=https://evil.example/]x[/link]",
                                              "\x1b]0;pwned\x07", "[blink red]b"]],
               title="[red]t", terminal=True, out=out)
    s = out.getvalue()
    assert "[/bold]" in s and "[link=https://evil.example/]x[/link]" in s and "[blink red]b" in s
    assert "\\x1b]0;pwned\\x07" in s and "[red]t" in s
    assert "\x1b" not in s  # (a StringIO console writes no styles either)


def test_piped_table_is_one_line_per_row_at_full_width():
    out = io.StringIO()
    long = "x" * 300
    term.table(["a", "long", "n"], [["1", long, 5], ["22", "short", 10]], right=[2], out=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 4  # header, rule, two rows: never wrapped
    assert lines[2].startswith("1   " + long) and lines[2].endswith(" 5")
    assert lines[3].endswith("10") and len(lines[3]) == len(lines[2])


@pytest.mark.parametrize("args", [
    ["report", "--only", "top"],
    ["report"],
    ["sql", "SELECT user_agent, path, query FROM requests"],
    ["sql", "--csv", "SELECT user_agent FROM requests"],
])
def test_report_and_sql_print_hostile_values_as_text(hostile_db, args):
    r = CliRunner().invoke(app, [*args[:1], "--db", hostile_db, *args[1:]])
    assert r.exit_code == 0, r.output
    assert r.exception is None
    if "--csv" in args:  # piped CSV keeps values exactly (it is data)
        assert "evil\x1b]0;pwned\x07" in r.output
        return
    assert "\x1b" not in r.output and "\x07" not in r.output and "\x7f" not in r.output
    if args[0] == "sql" or "top" in args:
        for text in ("[/bold]", "[link=https://evil.example/]click me[/link]", "[blink red]blinking",
                     "evil\\x1b]0;pwned\\x07 and \\x1b[2J cleared", "bell\\x07\\x7f del"):
            assert text in r.output
    if args[0] == "sql":
        assert "q=[red]x" in r.output


def test_sql_json_escapes_controls(hostile_db):
    r = CliRunner().invoke(app, ["sql", "--db", hostile_db, "--json", "SELECT user_agent FROM requests"])
    assert r.exit_code == 0
    assert "\x1b" not in r.output and "\x7f" not in r.output
    assert {json.loads(x)["user_agent"] for x in r.output.splitlines()} >= {"evil\x1b]0;pwned\x07 and \x1b[2J cleared"}


def _run_on_pty(args: list[str], timeout: float = 60.0, status: int = 0) -> bytes:
    """Run the logferry command with stdout and stderr on a pseudo-terminal; its output."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "200", "LINES": "40"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "logferry.cli", *args], stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                break
            try:
                b = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not b:
                break
            chunks.append(b)
    finally:
        os.close(master)
        proc.wait(timeout)
    assert proc.returncode == status, b"".join(chunks)
    return b"".join(chunks)


def test_report_on_a_real_terminal_sends_no_escape_sequence_from_the_log(hostile_db):
    out = _run_on_pty(["report", "--db", hostile_db, "--only", "top"])
    assert b"user agents" in out
    assert b"[link=https://evil.example/]click me[/link]" in out
    assert b"[/bold]" in out and b"[blink red]blinking" in out
    assert b"\\x1b]0;pwned\\x07" in out
    assert b"\x1b]" not in out  # no OSC at all: no window title, no hyperlink
    assert b"\x1b[2J" not in out and b"\x1b[5m" not in out and b"\x07" not in out


def test_ingest_prints_file_names_with_escapes_as_text(tmp_path):
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "a\x1b[2Jb\x1b]0;x\x07.log"
    log.write_text('1.2.3.4 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"\n')
    r = CliRunner().invoke(app, ["ingest", "--db", str(tmp_path / "u.duckdb"), str(tmp_path / "logs")])
    assert r.exit_code == 0, r.output
    assert "a\\x1b[2Jb\\x1b]0;x\\x07.log" in r.output
    assert "\x1b" not in r.output
    r = CliRunner().invoke(app, ["detect", str(log)])
    assert r.exit_code == 0 and "\x1b" not in r.output and "\\x1b[2J" in r.output
    r = CliRunner().invoke(app, ["convert", str(tmp_path / "gone\x1b[2J.log")])
    assert r.exit_code == 2 and "\x1b" not in r.output and "gone\\x1b[2J.log" in r.output


def test_demo_summary_is_one_line_per_row_when_piped(tmp_path):
    r = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d")])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    head = [x for x in lines if x.startswith("requests ")]
    assert head and all(c in head[0] for c in ("visitors", "bytes_sent", "files", "lines", "bad_rows"))
    i = lines.index(head[0])
    assert len(lines[i + 2].split()) >= 9  # every column of the totals row on its one line


def test_convert_to_a_terminal_escapes_what_a_terminal_would_obey(tmp_path):
    log = tmp_path / "c1.log"
    ua = "a\x9b31m b \x7f c \u202e d \x1b[2J"
    log.write_bytes(b'1.2.3.4 - - [01/Mar/2024:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" '
                    b'"a\\xC2\\x9B31m b \\x7F c \\xE2\\x80\\xAE d \\x1B[2J"\n')
    out = _run_on_pty(["convert", str(log), "--fields", "user_agent"])
    assert not any(c in out for c in (b"\xc2\x9b", b"\x7f", b"\xe2\x80\xae", b"\x1b[2J"))
    line = out.decode().splitlines()[0]
    assert json.loads(line) == {"user_agent": ua}  # the same JSON value
    out = _run_on_pty(["convert", str(log), "--to", "w3c"])
    assert b"a\\x9b31m+b+\\x7f+c+\\u202e+d+\\x1b[2J" in out
    r = CliRunner().invoke(app, ["convert", str(log), "--fields", "user_agent"])
    assert json.loads(r.output.splitlines()[0]) == {"user_agent": ua}  # piped: the data as it is
    out = _run_on_pty(["convert", str(log), "--compress", "gzip"], status=2)
    assert b"logferry: error: --compress gzip is binary: give -o FILE" in out


#: one of each class that must never reach a terminal raw (issue 22 item 12): format
#: characters (zero-width space and joiners, word joiner, BOM, soft hyphen, a tag, bidi),
#: controls, separators, private use, unassigned and noncharacters
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\U000e0041", "\u202e", "\u061c",
             "\x1b", "\x85", "\u2028", "\u2029", "\ue000", "\U0010fffd", "\u0378", "\ufffe"]


@pytest.mark.parametrize("ch", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
def test_every_invisible_character_is_escaped(ch):
    s = term.safe(f"a{ch}b")
    assert ch not in s and s.startswith("a\\") and s.endswith("b")
    for indent in (None, 1):  # (an indented document's newlines are its layout, kept)
        j = term.json_safe(json.dumps({"v": f"a{ch}b"}, ensure_ascii=False, indent=indent))
        assert ch not in j and json.loads(j) == {"v": f"a{ch}b"}
    raw = io.BytesIO()
    w = term.TerminalWriter(raw)
    w.write(f"a{ch}b\n".encode("utf-8", "surrogatepass"))
    w.flush()
    assert raw.getvalue() == f"{term.safe(f'a{ch}b')}\n".encode()


def test_visible_text_and_spaces_stay_as_they_are():
    text = "漢字 é\u00a0no-break\u3000ideographic 😀 \u05e9\u05dc\u05d5\u05dd"
    assert term.safe(text) == text
    assert term.json_safe(json.dumps(text, ensure_ascii=False)) == json.dumps(text, ensure_ascii=False)


def test_zero_width_space_in_a_log_is_escaped_in_tables(tmp_path):
    log = tmp_path / "zw.log"
    log.write_text('1.2.3.4 - - [01/Mar/2024:10:00:00 +0000] "GET /a\u200bb HTTP/1.1" 200 5 "-" "ua\u200b\u2060x"\n')
    db = str(tmp_path / "u.duckdb")
    assert CliRunner().invoke(app, ["ingest", "--db", db, str(log)]).exit_code == 0
    r = CliRunner().invoke(app, ["sql", "--db", db, "SELECT user_agent, path FROM requests"])
    assert r.exit_code == 0, r.output
    assert "ua\\u200b\\u2060x" in r.output and "\u200b" not in r.output and "\u2060" not in r.output


@pytest.mark.parametrize("fmt", ["--json", "--csv", None])
def test_sql_prints_a_blob_as_duckdbs_text_of_it(hostile_db, fmt):
    """A BLOB (``files.header``: a W3C file's directive lines, bytes as the log had them) is
    printed as DuckDB's own text of it, which ``CAST(... AS BLOB)`` reads back: ``sql
    --json "SELECT * FROM files"`` was a traceback (bytes are not JSON)."""
    import duckdb

    from logferry.usage.reports import blob_text

    q = "SELECT from_hex('230A5C27227F1BC3A9') AS b, header FROM files ORDER BY file_id LIMIT 1"
    r = CliRunner().invoke(app, ["sql", "--db", hostile_db, *([fmt] if fmt else []), q])
    assert r.exit_code == 0 and r.exception is None, r.output
    text = "#\\x0A\\x5C\\x27\\x22\\x7F\\x1B\\xC3\\xA9"
    assert blob_text(b"#\n\\'\"\x7f\x1b\xc3\xa9") == text
    assert "\x1b" not in r.output
    if fmt != "--json":
        assert text in r.output
    else:
        row = json.loads(r.output.splitlines()[0])
        assert row["b"] == text
        con = duckdb.connect(hostile_db, read_only=True)
        stored = con.execute("SELECT header FROM files ORDER BY file_id LIMIT 1").fetchall()[0][0]
        assert duckdb.execute("SELECT CAST(? AS BLOB)", [row["header"]]).fetchall()[0][0] == stored


@pytest.mark.parametrize("fmt", ["--json", "--csv", None])
@pytest.mark.parametrize("value", ["'infinity'::TIMESTAMPTZ", "'-infinity'::DATE", "'294247-01-10'::DATE"])
def test_sql_a_date_beyond_pythons_years_is_an_error_line(hostile_db, fmt, value):
    """DuckDB's dates and times reach past Python's years 1-9999 (infinity, year 294247):
    ``sql`` of one was a traceback (OverflowError); now one error line, exit status 2,
    that says to cast it to text."""
    r = CliRunner().invoke(app, ["sql", "--db", hostile_db, *([fmt] if fmt else []), f"SELECT {value} AS t"])
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert r.output.startswith("logferry: error: ") and "CAST" in r.output, r.output
