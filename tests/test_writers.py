from __future__ import annotations

import gzip
import io
import json
import os
from datetime import UTC, datetime

import pyarrow as pa
import pytest

import logferry
from conftest import corpus
from logferry.errors import ConfigError, ConversionError
from logferry.schema import make_batch
from logferry.writers import get_writer, naming
from logferry.writers.cdn import CdnJsonWriter, CdnTsvWriter
from logferry.writers.cloudfront import CloudFrontWriter, cf_encode
from logferry.writers.csv_usage import CsvUsageWriter
from logferry.writers.w3c import ShopLogDirectory, ShopWriter, W3CWriter

CLOCK = lambda: datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)  # noqa: E731


def write(path, writer_cls, **kw) -> tuple[bytes, logferry.RecordStream]:
    out = io.BytesIO()
    w = writer_cls(out, clock=CLOCK, **kw)
    s = logferry.read(str(path))
    for b in s:
        w.set_source(s.format)
        w.write(b)
    w.close()
    return out.getvalue(), s


def data_lines(b: bytes) -> list[bytes]:
    return [ln.rstrip(b"\r") for ln in b.split(b"\n") if ln.strip() and not ln.startswith(b"#")]


def raw_bytes(path) -> bytes:
    b = open(path, "rb").read()
    return gzip.decompress(b) if str(path).endswith(".gz") else b


@pytest.mark.parametrize(
    "rel",
    [
        "matomo-log-analytics/iis.log",
        "elastic-beats-filebeat-iis/test.log",
        "lnav/logfile_w3c_big.0",
    ],
)
def test_w3c_round_trip_byte_for_byte(rel):
    p = corpus(rel)
    got, s = write(p, W3CWriter)
    assert s.stats.records > 0
    assert data_lines(got) == data_lines(raw_bytes(p))
    assert got.startswith(b"#Software: logferry")
    assert b"#Version: 1.0\n#Date: 2024-03-01 12:00:00\n#Fields: " in got


def test_w3c_new_header_block_where_fields_change():
    p = corpus("lnav/logfile_w3c_big.0")
    got, _ = write(p, W3CWriter)
    src_fields = [ln for ln in raw_bytes(p).splitlines() if ln.startswith(b"#Fields")]
    out_fields = [ln for ln in got.splitlines() if ln.startswith(b"#Fields")]
    # one block per change of field list (consecutive duplicates collapse)
    dedup = [f for i, f in enumerate(src_fields) if i == 0 or f != src_fields[i - 1]]
    assert out_fields == dedup


def test_shop_round_trip_and_header():
    p = corpus("spec-examples/shop19990907.log")
    got, _ = write(p, ShopWriter)
    assert data_lines(got) == data_lines(raw_bytes(p))
    assert got.splitlines()[3] == (
        b"#Fields: date time c-ip cs-customer-id cs-method cs-uri-stem cs-uri-query cs(User-Agent) cs(Referer)"
    )


def test_cloudfront_round_trips():
    p = corpus("matomo-log-analytics/amazon_cloudfront_web.log")
    got, _ = write(p, CloudFrontWriter)
    assert data_lines(got) == data_lines(raw_bytes(p))
    assert got.startswith(b"#Version: 1.0\n#Fields: date time x-edge-location")
    # the AWS documentation example has a stray trailing tab on one row: kept, byte for byte
    p = next(corpus("aws-cloudfront-docs").glob("*33fields*"))
    got, s = write(p, CloudFrontWriter)
    assert s.stats.records == 6
    assert data_lines(got) == data_lines(raw_bytes(p))
    assert sum(ln.endswith(b"\t") for ln in data_lines(got)) == 1


@pytest.mark.parametrize("rel", ["spec-examples/20230413-181700.example-service.03495.log.gz"])
def test_cdn_tsv_round_trip(rel):
    p = corpus(rel)
    got, _ = write(p, CdnTsvWriter)
    assert data_lines(got) == data_lines(raw_bytes(p))


def test_iis_to_cloudfront_and_back_keeps_canonical_values():
    p = corpus("elastic-beats-filebeat-iis/test.log")
    src = logferry.read(str(p)).to_table()
    got, _ = write(p, CloudFrontWriter)
    back = logferry.read(io.BytesIO(got), "cloudfront").to_table()
    assert back.num_rows == src.num_rows
    for c in ("timestamp", "client_ip", "method", "path", "status", "user_agent", "referer", "bytes_sent"):
        assert back.column(c).to_pylist() == src.column(c).to_pylist(), c
    assert back.column("duration_ms").to_pylist() == src.column("duration_ms").to_pylist()


def test_cloudfront_to_iis_and_back():
    p = corpus("matomo-log-analytics/amazon_cloudfront_web.log")
    src = logferry.read(str(p)).to_table()
    out = io.BytesIO()
    w = W3CWriter(out, clock=CLOCK)
    w.set_source("cloudfront")
    for b in src.to_batches():
        w.write(b)
    w.close()  # (the field list is known, and the lines written, at close)
    back = logferry.read(io.BytesIO(out.getvalue()), "w3c").to_table()
    for c in ("timestamp", "client_ip", "method", "path", "query", "status", "bytes_sent", "user_agent"):
        assert back.column(c).to_pylist() == src.column(c).to_pylist(), c


def test_cdn_tsv_from_cloudfront_and_back():
    p = corpus("matomo-log-analytics/amazon_cloudfront_web.log")
    src = logferry.read(str(p)).to_table()
    out = io.BytesIO()
    w = CdnTsvWriter(out)
    w.set_source("cloudfront")
    for b in src.to_batches():
        w.write(b)
    back = logferry.read(io.BytesIO(out.getvalue()), "cdn-tsv").to_table()
    for c in ("timestamp", "client_ip", "status", "bytes_sent", "user_agent", "host", "path", "query"):
        assert back.column(c).to_pylist() == src.column(c).to_pylist(), c


def test_cdn_json_field_subset_in_documented_order():
    b = make_batch(
        {"timestamp": pa.array([datetime(2023, 4, 13, 18, 17, 2, 883000, tzinfo=UTC)]),
         "status": pa.array([200]), "path": pa.array(['/a "b"']), "host": pa.array(["h.example"]),
         "client_port": pa.array([None], pa.int32())},
        1, "x", pa.array([1]),
    )
    out = io.BytesIO()
    w = CdnJsonWriter(out, fields=["uri", "httpResponseCode", "startTime", "clientPort", "startTimeEpochMilli"])
    w.write(b)
    line = out.getvalue().decode()
    assert line == (
        '{"startTime":"13-04-23 18:17:02.883","startTimeEpochMilli":1681409822883,'
        '"clientPort":"-","httpResponseCode":200,"uri":"http://h.example/a \\"b\\""}\n'
    )
    assert json.loads(line)["uri"] == 'http://h.example/a "b"'


def test_csv_usage_writer_quotes_everything():
    b = make_batch(
        {"timestamp": pa.array([datetime(2024, 1, 15, 9, 0, 1, tzinfo=UTC)]), "site": pa.array(["web01"]),
         "client_ip": pa.array(["192.0.2.10"]), "path": pa.array(["/index.html"]),
         "user_agent": pa.array(['Agent "x"']), "duration_ms": pa.array([12.4])},
        1, "x", pa.array([1]),
    )
    out = io.BytesIO()
    w = CsvUsageWriter(out)
    w.write(b)
    lines = out.getvalue().decode().splitlines()
    assert lines[0].startswith("server,s-date,s-time,c-host,c-ip,s-method")
    assert lines[1] == (
        '"web01","2024/01/15","09:00:01","-","192.0.2.10","-","-","-","-","/index.html","-","-",'
        '"-","-","-","Agent ""x""","12","-","-"'
    )
    out = io.BytesIO()
    w = CsvUsageWriter(out, kind="e")
    w.write(b)
    assert out.getvalue().decode().splitlines() == [
        "server,s-date,s-time,c-host,s-url,c-response",
        '"web01","2024/01/15","09:00:01","-","192.0.2.10","/index.html","12"',
    ]


def test_shop_writer_encodes_from_other_formats():
    b = make_batch(
        {"timestamp": pa.array([datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)]), "client_ip": pa.array(["10.0.0.1"]),
         "method": pa.array(["SEARCH"]), "path": pa.array(["/Search"]), "query": pa.array(["Abc+%26+100%25"]),
         "user_agent": pa.array(["A+B 100%"])},
        1, "x", pa.array([1]),
    )
    out = io.BytesIO()
    ShopWriter(out, clock=CLOCK).write(b)
    assert out.getvalue().splitlines()[-1] == (
        b"2024-01-02 03:04:05 10.0.0.1 - SEARCH /Search Abc+%26+100%25 A%2BB+100%25 -"
    )


def _rows(days):
    ts = pa.array([datetime(2024, 2, d, 10, tzinfo=UTC) if isinstance(d, int) else d for d in days])
    n = len(days)
    return make_batch({"timestamp": ts, "method": pa.array(["GET"] * n), "path": pa.array(["/p"] * n)},
                      n, "x", pa.array(range(1, n + 1)))


@pytest.mark.parametrize(
    "period,names",
    [
        ("daily", ["shop20240227.log", "shop20240228.log", "shop20240229.log", "shop20240301.log"]),
        ("weekly", ["shop20240226.log"]),
        ("monthly", ["shop20240201.log", "shop20240301.log"]),
    ],
)
def test_shop_rotation_by_record_time(tmp_path, period, names):
    d = ShopLogDirectory(str(tmp_path), period, software="XYZshop 4.1")
    d.write(_rows([27, 28, 29]))
    d.write(_rows([datetime(2024, 3, 1, 0, 0, 1, tzinfo=UTC)]))
    d.close()
    assert sorted(os.listdir(tmp_path)) == names
    for n in names:
        text = (tmp_path / n).read_text().splitlines()
        assert text[0] == "#Software: XYZshop 4.1" and text[1] == "#Version: 1.0"
        assert text[3].startswith("#Fields: date time c-ip cs-customer-id")
        assert sum(1 for ln in text if ln.startswith("#Fields")) == 1
    total = sum(len(data_lines((tmp_path / n).read_bytes())) for n in names)
    assert total == 4


def test_shop_rotation_with_fixed_clock(tmp_path):
    now = [datetime(2024, 3, 31, 23, 59, 59, tzinfo=UTC)]
    d = ShopLogDirectory(str(tmp_path), "daily", clock=lambda: now[0])
    d.write(_rows([1, 2]))
    now[0] = datetime(2024, 4, 1, 0, 0, 0, tzinfo=UTC)
    d.write(_rows([3]))
    d.close()
    assert sorted(os.listdir(tmp_path)) == ["shop20240331.log", "shop20240401.log"]
    a = (tmp_path / "shop20240331.log").read_text().splitlines()
    assert a[2] == "#Date: 2024-03-31 23:59:59" and len(a) == 6
    b = (tmp_path / "shop20240401.log").read_text().splitlines()
    assert b[2] == "#Date: 2024-04-01 00:00:00" and b[4].startswith("2024-02-03 10:00:00")
    # reopening the same day appends without a second header
    d = ShopLogDirectory(str(tmp_path), "daily", clock=lambda: now[0])
    d.write(_rows([4]))
    d.close()
    assert (tmp_path / "shop20240401.log").read_text().count("#Fields") == 1


def test_naming():
    dt = datetime(2019, 11, 14, 20, 5, 7, tzinfo=UTC)
    assert naming.cloudfront_name("EMLARXS9EXAMPLE", dt, "RT4KCN4SGK9", prefix="example-prefix") == (
        "example-prefix/EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz"
    )
    assert naming.cdn_name(datetime(2023, 4, 13, 18, 17), "example-service", 3495) == (
        "20230413-181700.example-service.03495.log.gz"
    )
    assert naming.csv_usage_name(datetime(2024, 1, 15), 1) == "db20240115_001.csv"
    assert naming.csv_usage_name(datetime(2024, 1, 15), 999, "e") == "e20240115_999.csv"
    with pytest.raises(ConfigError):
        naming.csv_usage_name(datetime(2024, 1, 15), 1000)
    assert naming.next_csv_usage_serial(["db20240115_001.csv", "x/db20240115_007.csv", "db20240116_009.csv"],
                                        datetime(2024, 1, 15)) == 8
    assert naming.shop_name(datetime(1999, 9, 8), "weekly") == "shop19990906.log"
    assert naming.shop_name(datetime(1999, 9, 8), "monthly") == "shop19990901.log"
    assert naming.iis_name(dt) == "u_ex191114.log"
    assert len(naming.unique_id()) == 13


def test_cf_encoding_and_field_errors():
    assert cf_encode('Mozilla/5.0 (X; "q") ~#|') == "Mozilla/5.0%20(X;%20%22q%22)%20%7E%23%7C"
    assert cf_encode("é") == "%C3%A9"
    with pytest.raises(ConversionError, match="cannot hold field"):
        get_writer("cloudfront", io.BytesIO(), fields=["date", "sc-customer"])


@pytest.mark.parametrize("rel", ["spec-examples/db20240115_001.csv", "spec-examples/e20240115_001.csv"])
def test_csv_usage_round_trip_byte_for_byte(rel):
    p = corpus(rel)
    got, s = write(p, CsvUsageWriter)
    assert s.format == "csv-usage" and s.stats.bad == 0
    # title line and every data line exactly as in the sample
    assert got.splitlines() == raw_bytes(p).splitlines()


def canonical_rows(path, **kw):
    t = logferry.read(str(path), **kw).to_table()
    return t.drop_columns(["source_file", "line_number"]).to_pylist()


def test_csv_usage_to_other_formats_and_back_keeps_canonical_values(tmp_path):
    src = corpus("spec-examples/db20240115_001.csv")
    before = canonical_rows(src)
    for writer, name, fmt in ((W3CWriter, "x.log", "w3c"), (CsvUsageWriter, "y.csv", "csv-usage")):
        got, _ = write(src, writer)
        p = tmp_path / name
        p.write_bytes(got)
        after = canonical_rows(p, format=fmt)
        keys = [k for k in before[0] if before[0][k] is not None]
        if writer is W3CWriter:  # W3C has no field for the visitor cookie or r-byte
            keys = [k for k in keys if k not in ("user_id", "bytes_received")]
        assert [{k: r[k] for k in keys} for r in after] == [{k: r[k] for k in keys} for r in before]
    # and CSV usage written from another format reads back with the same values
    iis = corpus("matomo-log-analytics/iis.log")
    got, _ = write(iis, CsvUsageWriter)
    p = tmp_path / "z.csv"
    p.write_bytes(got)
    (row,) = canonical_rows(p, format="csv-usage")
    (orig,) = canonical_rows(iis)
    for k in ("timestamp", "client_ip", "method", "path", "status", "bytes_sent", "user_agent", "username"):
        assert row[k] == orig[k], k
