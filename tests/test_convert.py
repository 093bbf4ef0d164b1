from __future__ import annotations

import gzip
import json
import os
import re

from click.testing import CliRunner

from conftest import corpus
from logferry.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args))


def test_errors_before_any_output(tmp_path):
    iis = str(corpus("matomo-log-analytics/iis.log"))
    out = tmp_path / "o.tsv"
    r = run("convert", iis, "--to", "cdn-tsv", "--fields", "uri,nosuch", "-o", str(out))
    assert r.exit_code == 2 and "'nosuch'" in r.output and "valid fields" in r.output
    r = run("convert", iis, "--to", "jsonl", "--where", "status=5xx or status=4xx", "-o", str(out))
    assert r.exit_code == 2 and "expected 'and'" in r.output
    r = run("convert", iis, "--to", "nope", "-o", str(out))
    assert r.exit_code == 2 and "unknown output format" in r.output
    assert not out.exists()


def test_where_fields_and_gzip(tmp_path):
    src = str(corpus("elastic-beats-filebeat-iis/test.log"))
    out = tmp_path / "o.jsonl.gz"
    r = run("convert", src, "--to", "jsonl", "--where", "status>=400", "--fields", "status,path", "-o", str(out))
    assert r.exit_code == 0, r.output
    recs = [json.loads(x) for x in gzip.open(out).read().splitlines()]
    assert recs and all(set(x) == {"status", "path"} and x["status"] >= 400 for x in recs)
    assert "records" in r.output


def test_shop_output_dir_and_jsonl_shop(tmp_path):
    src = str(corpus("spec-examples/shop19990907.log"))
    r = run("convert", src, "--to", "shop", "--output-dir", str(tmp_path / "d"))
    assert r.exit_code == 0, r.output
    assert os.listdir(tmp_path / "d") == ["shop19990907.log"]
    body = (tmp_path / "d" / "shop19990907.log").read_bytes().splitlines()
    assert body[4:] == open(src, "rb").read().splitlines()[4:]
    r = run("convert", src, "--to", "jsonl", "-o", str(tmp_path / "s.jsonl"))
    last = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[-1])
    assert last["shop"]["total_price"] == 893.48 and len(last["shop"]["items"]) == 3


def test_cloudfront_to_cdn_dir(tmp_path):
    src = str(corpus("matomo-log-analytics/amazon_cloudfront_web.log"))
    r = run("convert", src, "--to", "cdn-tsv", "--output-dir", str(tmp_path), "--fields", "startTime,httpResponseCode")
    assert r.exit_code == 0, r.output
    (name,) = os.listdir(tmp_path)
    assert re.fullmatch(r"\d{8}-\d{6}\.logferry\.\d{5}\.log\.gz", name), name
    lines = gzip.open(tmp_path / name).read().decode().splitlines()
    assert len(lines) == 1 and lines[0].split("\t")[1].isdigit()


def test_formats_lists_writers():
    r = run("formats", "--json")
    d = json.loads(r.output)
    for w in ("w3c", "shop", "cloudfront", "cdn-tsv", "cdn-json", "csv-usage", "jsonl", "parquet"):
        assert w in d["writers"]


def test_convert_to_parquet_canonical_and_optional_fields(tmp_path):
    import pyarrow.parquet as pq
    from click.testing import CliRunner

    import logferry
    from logferry.cli import app

    src = corpus("elastic-beats-filebeat-iis/test.log")
    expected = logferry.read(src).to_table()
    out = tmp_path / "x.parquet"
    r = CliRunner().invoke(app, ["convert", str(src), "--to", "parquet", "-o", str(out)])
    assert r.exit_code == 0, r.output
    t = pq.read_table(out)
    assert t.schema.names == logferry.CANONICAL_SCHEMA.names
    assert t.equals(expected.cast(t.schema))
    out2 = tmp_path / "y.parquet"
    r = CliRunner().invoke(app, ["convert", str(src), "--to", "parquet", "--keep-fields", "-o", str(out2)])
    assert r.exit_code == 0, r.output
    t2 = pq.read_table(out2)
    assert t2.schema.names[-1] == "fields"
    first = dict(t2.column("fields")[0].as_py())
    assert first["cs-uri-query"] == "q=100" and first["c-ip"] == "81.2.69.143"
    last = dict(t2.column("fields")[4].as_py())
    assert "s-sitename" not in last and last["sc-status"] == "404"


def _write_parquet(batches):
    """Row-group metadata and bytes of ``batches`` written by the Parquet writer."""
    import io

    import pyarrow.parquet as pq

    from logferry.writers import parquet

    buf = io.BytesIO()
    w = parquet.ParquetWriter(buf)
    for b in batches:
        w.write(b)
    w.close()
    return pq.read_metadata(io.BytesIO(buf.getvalue())), buf.getvalue()


def test_parquet_writer_gathers_batches_into_row_groups(monkeypatch, tmp_path):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    import logferry
    from logferry.writers import parquet

    src = corpus("lnav/logfile_w3c_big.0")
    table = logferry.read(src).to_table().select(logferry.CANONICAL_SCHEMA.names)
    batches = table.combine_chunks().to_batches(max_chunksize=60)
    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 100)
    meta, data = _write_parquet(batches)
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sum(sizes) == table.num_rows and all(s == 120 for s in sizes[:-1]) and sizes[-1] <= 120
    back = pq.read_table(io.BytesIO(data))
    assert back.equals(pa.Table.from_batches(batches).cast(back.schema))
    cols = {meta.schema.column(i).name: i for i in range(meta.num_columns)}
    rg = meta.row_group(0)
    assert rg.column(cols["status"]).statistics.has_min_max
    assert not rg.column(cols["user_agent"]).is_stats_set  # long free text: no min/max
    assert "RLE_DICTIONARY" in rg.column(cols["method"]).encodings
    assert "RLE_DICTIONARY" in rg.column(cols["user_agent"]).encodings
    assert "RLE_DICTIONARY" not in rg.column(cols["path"]).encodings
    assert "DELTA_BINARY_PACKED" in rg.column(cols["line_number"]).encodings
    assert "DELTA_BINARY_PACKED" in rg.column(cols["bytes_sent"]).encodings
    assert "BYTE_STREAM_SPLIT" in rg.column(cols["duration_ms"]).encodings
    assert rg.column(cols["timestamp"]).statistics.has_min_max
    assert not rg.column(cols["client_ip"]).is_stats_set  # many values: min/max prune nothing
    # DuckDB reads the delta and split-byte encodings back to the same values
    import duckdb
    import pyarrow.compute as pc

    path = tmp_path / "w3c.parquet"
    path.write_bytes(data)
    got = duckdb.sql(
        "SELECT count(*), sum(line_number), sum(bytes_sent), round(sum(duration_ms), 3), epoch_us(max(timestamp)) "
        f"FROM read_parquet('{path}')"
    ).fetchall()[0]
    want = (table.num_rows, pc.sum(table["line_number"]).as_py(), pc.sum(table["bytes_sent"]).as_py(),
            round(pc.sum(table["duration_ms"]).as_py(), 3), pc.max(table["timestamp"]).cast("int64").as_py())
    assert got == want and want[2] and want[3]
    # long rows: the byte limit cuts row groups before the row limit does
    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 10**6)
    monkeypatch.setattr(parquet, "ROW_GROUP_BYTES", 1)
    meta, _ = _write_parquet(batches)
    assert meta.num_row_groups == len(batches) and meta.num_rows == table.num_rows


def test_output_dir_never_writes_one_input_over_another(tmp_path):
    """Inputs whose outputs get the same name (IIS: one file per day; jsonl: per second of
    the first record) are numbered, not written over: every record of every input lands."""
    src = corpus("matomo-log-analytics/iis.log")
    inputs = []
    for k in range(3):
        p = tmp_path / f"copy{k}.log"
        p.write_bytes(src.read_bytes())
        inputs.append(str(p))
    expected = sum(1 for ln in src.read_bytes().splitlines() if ln.strip() and not ln.startswith(b"#"))
    r = run("convert", *inputs, "--to", "w3c", "--output-dir", str(tmp_path / "w"))
    assert r.exit_code == 0, r.output
    names = sorted(os.listdir(tmp_path / "w"))
    assert len(names) == 3 and names[0].endswith("-2.log") and names[1].endswith("-3.log")
    for n in names:
        data = [ln for ln in (tmp_path / "w" / n).read_bytes().splitlines() if not ln.startswith(b"#")]
        assert len(data) == expected
    r = run("convert", *inputs[:2], "--to", "jsonl", "--compress", "gzip", "--output-dir", str(tmp_path / "j"))
    assert r.exit_code == 0, r.output
    names = sorted(os.listdir(tmp_path / "j"))
    assert len(names) == 2 and names[0].endswith("-2.jsonl.gz")
    assert [len(gzip.open(tmp_path / "j" / n).read().splitlines()) for n in names] == [expected, expected]


def test_a_lines_original_fields_are_the_ones_it_has_wherever_batches_begin(tmp_path):
    """A JSON log's lines have different keys: each record's ``fields`` holds its own line's
    (a key another line of the same batch has is not added as null), in JSON lines and in
    Parquet's map; a key written as JSON null is the text ``null``."""
    import pyarrow.parquet as pq

    log = tmp_path / "j.log"
    log.write_text(
        '{"timestamp":"2024-03-01T10:00:00Z","remote_addr":"1.2.3.4","method":"GET","uri":"/a","status":200,"extra":"x"}\n'
        '{"timestamp":"2024-03-01T10:00:01Z","remote_addr":"1.2.3.5","method":"GET","uri":"/b","status":200,"other":null}\n')
    assert run("convert", str(log), "-f", "nginx-json", "--to", "jsonl", "-o", str(tmp_path / "o.jsonl")).exit_code == 0
    got = [json.loads(x)["fields"] for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert "other" not in got[0] and got[0]["extra"] == '"x"'
    assert "extra" not in got[1] and got[1]["other"] == "null"
    r = run("convert", str(log), "-f", "nginx-json", "--to", "parquet", "--keep-fields", "-o", str(tmp_path / "o.parquet"))
    assert r.exit_code == 0
    maps = [dict(m) for m in pq.read_table(tmp_path / "o.parquet").column("fields").to_pylist()]
    assert ("other" not in maps[0], "extra" not in maps[1], maps[1]["other"]) == (True, True, "null")
