"""CSV usage logs (db... and extended e... files): csv-usage reader."""

from __future__ import annotations

import datetime as dt

import pytest

import logferry
from conftest import corpus
from logferry.formats.csv_usage import DB_FIELDS, EXT_FIELDS, EXT_TITLE, layouts_for

UTC = dt.UTC
DB = "spec-examples/db20240115_001.csv"
EXT = "spec-examples/e20240115_001.csv"


def read_all(path, **kw):
    s = logferry.read(path, **kw)
    rows = [r for b in s for r in b.to_pylist()]
    return s, sorted(rows, key=lambda r: r["line_number"])


def db_lines() -> list[str]:
    return corpus(DB).read_text().splitlines()


# --- detection -------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", [DB, EXT])
def test_detect_samples(rel):
    det = logferry.detect(corpus(rel))
    assert det.format == "csv-usage"
    assert det.confidence >= 0.9
    assert all(det.confidence - c >= 0.1 for n, c in det.candidates if n != "csv-usage"), det.candidates


def test_detect_without_title_or_name_hint(tmp_path):
    p = tmp_path / "usage.txt"
    p.write_text("\n".join(db_lines()[1:]) + "\n")
    det = logferry.detect(p)
    assert det.format == "csv-usage" and det.confidence >= 0.8


# --- the db file --------------------------------------------------------------------------------


def test_db_sample_values_utc_default():
    s, rows = read_all(corpus(DB))
    assert s.format == "csv-usage"
    st = s.stats
    assert (st.lines, st.directives, st.blank, st.records, st.bad, st.conversion_errors) == (5, 1, 0, 4, 0, 0)
    r1, r2, r3, r4 = rows
    assert [r["line_number"] for r in rows] == [2, 3, 4, 5]
    assert r1["timestamp"] == dt.datetime(2024, 1, 15, 9, 0, 1, tzinfo=UTC)
    assert (r1["site"], r1["client_ip"], r1["server_ip"], r1["host"]) == (
        "web01", "192.0.2.10", "198.51.100.5", "www.example.com",
    )
    assert (r1["method"], r1["protocol"], r1["path"], r1["query"]) == ("GET", "HTTP/1.1", "/index.html", None)
    assert (r1["status"], r1["bytes_sent"], r1["bytes_received"], r1["duration_ms"]) == (200, 5120, None, 12.0)
    assert r1["user_agent"].startswith("Mozilla/5.0 (Windows NT 10.0; Win64; x64)")
    assert (r1["referer"], r1["user_id"], r1["username"]) == (None, None, None)
    assert r1["fields"]["c-host"] == '"client1.example.com"'  # raw token, quotes kept
    assert list(r1["fields"]) == list(DB_FIELDS)

    assert r2["fields"]["c-host"] == '"-"'
    assert (r2["status"], r2["bytes_sent"], r2["user_id"]) == (304, 0, "A1B2C3")
    assert r2["referer"] == "http://www.example.com/index.html"

    assert r3["timestamp"] == dt.datetime(2024, 1, 15, 9, 0, 5, tzinfo=UTC)
    assert (r3["method"], r3["path"], r3["status"]) == ("POST", "/cgi-bin/order.cgi", 500)
    assert (r3["bytes_sent"], r3["bytes_received"], r3["duration_ms"]) == (312, 0, 1534.0)
    assert (r3["username"], r3["user_id"]) == ("alice", "D4E5F6")
    assert r3["fields"]["r-status"] == '"502"'

    assert (r4["protocol"], r4["status"], r4["user_agent"]) == ("HTTP/1.0", 404, "Wget/1.21")
    assert r4["timestamp"] == dt.datetime(2024, 1, 15, 9, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz", "hour", "minute"),
    [("Asia/Tokyo", 0, 0), ("Europe/Berlin", 8, 0), ("America/New_York", 14, 0), ("+05:30", 3, 30), ("UTC", 9, 0)],
)
def test_tz_option(tz, hour, minute):
    _, rows = read_all(corpus(DB), options={"tz": tz})
    assert rows[0]["timestamp"] == dt.datetime(2024, 1, 15, hour, minute, 1, tzinfo=UTC)


def test_unknown_tz_is_a_config_error():
    with pytest.raises(logferry.ConfigError, match="Mars/Olympus"):
        list(logferry.read(corpus(DB), options={"tz": "Mars/Olympus"}))


# --- the extended file ----------------------------------------------------------------------------


def test_extended_title_names_one_field_fewer():
    assert len(EXT_TITLE) + 1 == len(EXT_FIELDS)
    assert layouts_for(EXT_TITLE) == [EXT_FIELDS, EXT_TITLE]
    assert layouts_for(DB_FIELDS) == [DB_FIELDS]


def test_extended_sample_values():
    s, rows = read_all(corpus(EXT), options={"tz": "Asia/Tokyo"})
    assert (s.stats.lines, s.stats.directives, s.stats.records, s.stats.bad) == (3, 1, 2, 0)
    a, b = rows
    assert a["timestamp"] == dt.datetime(2024, 1, 15, 0, 0, 1, tzinfo=UTC)
    assert (a["site"], a["client_ip"], a["path"], a["duration_ms"]) == ("web01", "192.0.2.10", "/index.html", 180.0)
    assert a["fields"] == {
        "server": '"web01"', "s-date": '"2024/01/15"', "s-time": '"09:00:01"',
        "c-host": '"client1.example.com"', "c-ip": '"192.0.2.10"', "s-url": '"/index.html"',
        "c-response": '"180"',
    }
    assert (b["client_ip"], b["path"], b["duration_ms"]) == ("192.0.2.12", "/cart.html", 2210.0)
    assert b["fields"]["c-host"] == '"proxy.example.net"'
    assert (a["status"], a["method"], a["host"]) == (None, None, None)


def test_extended_lines_as_titled_and_full_urls(tmp_path):
    p = tmp_path / "e20240116_002.csv"
    p.write_text(
        "server,s-date,s-time,c-host,s-url,c-response\n"
        '"web02","2024/01/16","23:59:59","h1","192.0.2.1","http://shop.example.com/a.html?x=1","75"\n'
        '"web02","2024/01/16","23:59:59","h2","/b.html","80"\n'  # the title's own 6 values
        '"web02","2024/01/16","23:59:59","h3","/c.html"\n'  # 5 values: bad
    )
    s, rows = read_all(p)
    assert (s.stats.records, s.stats.bad) == (2, 1)
    a, b = rows
    assert (a["client_ip"], a["host"], a["path"], a["query"]) == ("192.0.2.1", "shop.example.com", "/a.html", "x=1")
    assert (b["client_ip"], b["path"], b["duration_ms"]) == (None, "/b.html", 80.0)
    assert "c-ip" not in b["fields"]
    assert s.bad_rows[0].line_number == 4
    assert s.bad_rows[0].reason == "5 values, expected 7 or 6"


# --- bad rows and quoting ----------------------------------------------------------------------------


def test_mangled_copy_exact_bad_rows(tmp_path):
    title, l1, l2, l3, l4 = db_lines()
    lines = [
        title,
        l1,
        l2.replace('"-",', "", 1),  # one value fewer (18)
        "",
        l3[: len(l3) // 2],  # truncated: unterminated quoted value
        l4.replace('"Wget/1.21"', '"Wget/1.21 ""beta"""'),  # escaped quotes: a record (slow path)
        l1.replace('"web01"', '"we"b01"'),  # stray quote
        l1 + ',"extra"',  # 20 values
        l3.replace('"500"', '"5xx"'),  # bad status: converts to null, still a record
        l1.replace('"2024/01/15"', '"2024/13/45"'),  # impossible date: null time, still a record
    ]
    p = tmp_path / "db20240115_009.csv"
    p.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    s, rows = read_all(p)
    st = s.stats
    assert (st.lines, st.directives, st.blank, st.records, st.bad) == (10, 1, 1, 4, 4)
    assert st.records + st.bad == st.lines - st.directives - st.blank
    assert [r["line_number"] for r in rows] == [2, 6, 9, 10]
    assert [b.line_number for b in s.bad_rows] == [3, 5, 7, 8]
    reasons = {b.line_number: b.reason for b in s.bad_rows}
    assert reasons[3] == "18 values, expected 19"
    assert reasons[8] == "20 values, expected 19"
    assert reasons[5] == reasons[7] == "broken quoting (a stray or unbalanced quote)"
    assert rows[1]["user_agent"] == 'Wget/1.21 "beta"'
    assert rows[1]["fields"]["c-agent"] == '"Wget/1.21 ""beta"""'
    assert rows[2]["status"] is None and rows[2]["duration_ms"] == 1534.0
    assert rows[3]["timestamp"] is None and rows[3]["client_ip"] == "192.0.2.10"
    assert st.conversion_errors == 2
    assert s.bad_rows[0].raw == lines[2]


def test_fields_reproduce_the_line(tmp_path):
    """The raw tokens joined by commas give back every data line byte for byte."""
    title, *data = db_lines()
    weird = data[3].replace('"Wget/1.21"', '"Wget ""x"", y"')
    p = tmp_path / "db.csv"
    p.write_text("\n".join([title, *data, weird]) + "\n")
    s, rows = read_all(p)
    assert (s.stats.records, s.stats.bad) == (5, 0)
    assert [",".join(r["fields"].values()) for r in rows] == [*data, weird]
    assert rows[-1]["user_agent"] == 'Wget "x", y'


def test_unquoted_values_are_accepted(tmp_path):
    title, l1, _, _, l4 = db_lines()
    p = tmp_path / "db.csv"
    # l1's user agent holds a comma: unquoted, it splits into one value too many
    p.write_text(title + "\n" + l4.replace('"', "") + "\n" + l1.replace('"', "") + "\n")
    s, rows = read_all(p, format="csv-usage")
    assert (s.stats.records, s.stats.bad, s.stats.directives) == (1, 1, 1)
    assert (rows[0]["user_agent"], rows[0]["status"], rows[0]["line_number"]) == ("Wget/1.21", 404, 2)
    assert s.bad_rows[0].reason == "20 values, expected 19"


def test_without_title_layouts_go_by_count(tmp_path):
    _, l1, *_ = db_lines()
    ext = '"web01","2024/01/15","09:00:01","h","192.0.2.10","/index.html","180"'
    p = tmp_path / "x.csv"
    p.write_text(l1 + "\n" + ext + "\n")
    s, rows = read_all(p, format="csv-usage")
    assert (s.stats.records, s.stats.bad, s.stats.directives) == (2, 0, 0)
    assert [r["duration_ms"] for r in rows] == [12.0, 180.0]
    assert [len(r["fields"]) for r in rows] == [19, 7]


def test_a_second_title_line_mid_file(tmp_path):
    title, l1, *_ = db_lines()
    p = tmp_path / "concat.csv"
    p.write_text(
        title + "\n" + l1 + "\n"
        "server,s-date,s-time,c-host,s-url,c-response\n"
        '"web01","2024/01/15","09:00:01","h","192.0.2.10","/x.html","9"\n'
    )
    s, rows = read_all(p, format="csv-usage")
    assert (s.stats.directives, s.stats.records, s.stats.bad) == (2, 2, 0)
    assert rows[1]["path"] == "/x.html" and rows[1]["duration_ms"] == 9.0
