"""Every sample log in ../shared/corpus (except the Thrift binaries) is detected as the
right format and read with nothing lost: records + bad rows == data lines."""

from __future__ import annotations

import fnmatch
import subprocess
import sys

import pytest

import logferry
from conftest import CORPUS

#: (glob relative to the corpus, expected format); first match wins
EXPECTED = [
    ("aws-cloudfront-docs/*", "cloudfront"),
    ("matomo-log-analytics/amazon_cloudfront_*", "cloudfront"),
    ("elastic-beats-filebeat-iis/test.log", "w3c"),
    ("lnav/logfile_w3c*", "w3c"),
    ("matomo-log-analytics/iis*.log", "w3c"),
    ("matomo-log-analytics/incapsula_w3c.log", "w3c"),
    ("matomo-log-analytics/netscaler.log", "w3c"),
    ("matomo-log-analytics/shoutcast.log", "w3c"),
    ("matomo-log-analytics/splitted_date_and_time.log", "w3c"),
    ("spec-examples/kibo-webservice-*.log", "w3c"),
    ("spec-examples/shop*.log", "shop"),
    ("spec-examples/*.03495.log.gz", "cdn-tsv"),
    ("spec-examples/*.03496.log.gz", "cdn-json"),
    ("spec-examples/*.csv", "csv-usage"),
    ("elastic-beats-filebeat-nginx/test.log", "combined"),
    ("elastic-examples/apache_logs", "combined"),
    ("lnav/logfile_*access_log*", "combined"),
    ("lnav/logfile_cloudflare*", "cloudflare-json"),
    ("matomo-log-analytics/common.log*", "common"),
    ("matomo-log-analytics/custom_regex_custom_date.log", "common"),
    ("matomo-log-analytics/common_vhost.log", "vhost-common"),
    ("matomo-log-analytics/common_complete.log", "vhost-combined"),
    ("matomo-log-analytics/common_encoding_big5.log", "vhost-combined"),
    ("matomo-log-analytics/static_ignores.log", "vhost-combined"),
    ("matomo-log-analytics/ncsa_extended.log", "combined"),
    ("matomo-log-analytics/logs_to_tests.log", "combined"),
    ("matomo-log-analytics/icecast2.log", "combined"),
    ("matomo-log-analytics/gandi.log", "gandi"),
    ("matomo-log-analytics/ovh.log", "ovh"),
    ("matomo-log-analytics/s3.log", "s3-access"),
    ("matomo-log-analytics/elb.log", "elb"),
    ("matomo-log-analytics/alb.log", "alb"),
    ("matomo-log-analytics/haproxy.log", "haproxy"),
    ("matomo-log-analytics/nginx_json.log", "nginx-json"),
    ("matomo-log-analytics/traefik_json.log", "traefik-json"),
    ("matomo-log-analytics/caddy_json.log", "caddy-json"),
    ("snowplow/*/CljTomcat*", "snowplow-tomcat"),
    ("snowplow/hive-etl-2013/CljTomcatFormatTest.line", "snowplow-tomcat"),
    ("snowplow/hive-etl-2013/UserIdsTest.line", "snowplow-tomcat"),
    ("snowplow/spark-enrich/NullNumericFieldsSpec.line", "snowplow-tomcat"),
    ("snowplow/spark-enrich/ForwardCompatibleSchemaverSpec.line", "snowplow-tomcat"),
    ("snowplow/*/*.line", "cloudfront"),
]


def corpus_files():
    if not CORPUS.exists():
        return []
    return sorted(
        str(p.relative_to(CORPUS))
        for p in CORPUS.rglob("*")
        if p.is_file() and p.name != "README.md" and not p.name.endswith((".thrift.bin", ".b64"))
        # peers-lines/cases.json is a list of single-line cases, not a log (test_peers_lines)
        and p.relative_to(CORPUS).parts[0] != "peers-lines"
    )


def expected(rel: str) -> str:
    for pattern, fmt in EXPECTED:
        if fnmatch.fnmatch(rel, pattern):
            return fmt
    raise AssertionError(f"no expectation for {rel}")


FILES = corpus_files()


def test_corpus_present():
    if not CORPUS.exists():
        pytest.skip("../shared/corpus not available")
    assert len(FILES) > 120


@pytest.mark.parametrize("rel", FILES)
def test_detected_and_read(rel):
    path = CORPUS / rel
    d = logferry.detect(path)
    assert d.format == expected(rel), d.candidates
    assert 0 < d.confidence <= 1
    bad = []
    s = logferry.read(path, on_bad=bad.append)
    n = 0
    for b in s:
        assert b.schema.names[: len(logferry.CANONICAL_SCHEMA)] == logferry.CANONICAL_SCHEMA.names
        assert b.schema.field("timestamp").type == logferry.CANONICAL_SCHEMA.field("timestamp").type
        ln = b.column("line_number").to_pylist()
        assert all(1 <= x <= s.stats.lines for x in ln)
        n += b.num_rows
    st = s.stats
    assert n == st.records
    assert st.records + st.bad == st.lines - st.directives - st.blank
    assert len(bad) == st.bad
    for row in bad:
        assert row.source_file == str(path) and row.reason and 1 <= row.line_number <= st.lines


def test_detect_cli_prints_tab_separated_lines():
    files = [str(CORPUS / r) for r in FILES[:5]]
    if not files:
        pytest.skip("../shared/corpus not available")
    out = subprocess.run(
        [sys.executable, "-m", "logferry.cli", "detect", *files], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(out) == 5
    for line, f in zip(out, files, strict=True):
        name, fmt, conf = line.split("\t")
        assert name == f and fmt == expected(str(CORPUS.joinpath(f).relative_to(CORPUS)))
        assert 0 < float(conf) <= 1


def _read_all(path, **options):
    import pyarrow as pa

    bad = []
    s = logferry.read(path, options=options or None, on_bad=bad.append)
    batches = list(s)
    names = list(logferry.CANONICAL_SCHEMA.names)
    table = pa.Table.from_batches([b.select(names) for b in batches], schema=logferry.CANONICAL_SCHEMA)
    fields = [b.column("fields") if "fields" in b.schema.names else None for b in batches]
    return table, fields, [(b.line_number, b.reason) for b in bad], s.stats


@pytest.mark.parametrize("rel", FILES)
def test_reader_option_originals_changes_only_the_originals_kept(rel):
    """``originals=false`` (what ingest and Parquet output ask for) drops the ``fields``
    column; a list keeps just those originals.  Records, bad rows and counters are the
    same as a full read."""
    path = CORPUS / rel
    full, full_fields, full_bad, full_stats = _read_all(path)
    lean, lean_fields, lean_bad, lean_stats = _read_all(path, originals=False)
    assert lean.equals(full) and lean_bad == full_bad and lean_stats == full_stats
    if expected(rel) in ("cloudfront", "w3c", "shop"):
        assert lean_fields == [None] * len(lean_fields)
    some, some_fields, _, _ = _read_all(path, originals="cs-uri-query,C-IP")
    assert some.equals(full)
    if expected(rel) in ("cloudfront", "w3c", "shop"):
        for f, ff in zip(some_fields, full_fields, strict=True):
            kept = [ff.type.field(i).name for i in range(ff.type.num_fields)
                    if ff.type.field(i).name.lower() in ("cs-uri-query", "c-ip")]
            if not kept:
                assert f is None
                continue
            assert [f.type.field(i).name for i in range(f.type.num_fields)] == kept
            for name in kept:
                assert f.field(name).equals(ff.field(name))


#: what ``report FILE`` asks for: every canonical column but those no report reads
_SOME = ["timestamp", "client_ip", "site", "host", "method", "path", "query", "status", "bytes_sent",
         "duration_ms", "ttfb_ms", "user_agent", "referer", "cache_status", "edge_location", "customer_id"]


@pytest.mark.parametrize("rel", FILES)
def test_reader_option_columns_builds_those_columns_exactly(rel):
    """``columns`` (with ``originals=false``, as ``report FILE`` reads): those columns,
    records, bad rows and counters are the same as a full read; another column holds the
    full read's values, or nulls where they were not built (the per-line path of a reader
    builds every field)."""
    path = CORPUS / rel
    full, _, full_bad, full_stats = _read_all(path)
    some, _, some_bad, some_stats = _read_all(path, originals=False, columns=_SOME)
    assert some_bad == full_bad and some_stats == full_stats and some.num_rows == full.num_rows
    for name in full.column_names:
        col = some.column(name)
        if name in (*_SOME, "source_file", "line_number"):
            assert col.equals(full.column(name)), name
        else:
            got, want = col.to_pylist(), full.column(name).to_pylist()
            assert all(g is None or g == w for g, w in zip(got, want, strict=True)), name


@pytest.mark.parametrize("rel, repeat", [
    ("matomo-log-analytics/amazon_cloudfront_web.log", 300),
    ("lnav/logfile_w3c_big.0", 2),
    ("spec-examples/shop19990907.log", 30),
])
def test_reader_option_originals_on_runs_long_enough_for_the_csv_fast_path(rel, repeat, tmp_path, monkeypatch):
    from logferry.formats import _split

    src = CORPUS / rel
    if not src.exists():
        pytest.skip(f"corpus file {rel} not available")
    lines = src.read_bytes().splitlines(keepends=True)
    head = [ln for ln in lines if ln.startswith(b"#")]
    data = [ln if ln.endswith(b"\n") else ln + b"\n" for ln in lines if not ln.startswith(b"#") and ln.strip()]
    big = tmp_path / "big.log"
    big.write_bytes(b"".join(head) + b"".join(data) * repeat)
    used = []
    real = _split._split_csv
    monkeypatch.setattr(_split, "_split_csv", lambda *a, **k: used.append(real(*a, **k) is not None) or real(*a, **k))
    full, _, full_bad, _ = _read_all(big)
    lean, lean_fields, lean_bad, _ = _read_all(big, originals=False)
    assert used and all(used), "the runs were meant for Arrow's CSV parser"
    assert full.num_rows >= 300 and full.num_rows == len(data) * repeat - len(full_bad)
    assert lean.equals(full) and lean_bad == full_bad and lean_fields == [None] * len(lean_fields)
    # and with ``columns``, the fields of the other columns are not built at all
    some, _, some_bad, _ = _read_all(big, originals=False, columns=_SOME)
    assert some_bad == full_bad
    left_out = []
    for name in full.column_names:
        col = some.column(name)
        if name in (*_SOME, "source_file", "line_number"):
            assert col.equals(full.column(name)), name
        elif full.column(name).null_count < len(col):  # a column this log has
            assert col.null_count == len(col), name
            left_out.append(name)
    assert left_out or "shop" in rel  # (the shop log has no column that reports do not read)
