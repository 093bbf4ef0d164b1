"""The lake's settings in ``logferry.toml`` (``[lake]``) for ingest, report, sql, lake and
serve; bad lake input found before anything is written (an unreachable Dask scheduler)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from tests.servers.servers import free_port
from tests.test_lake import vhost_log

from logferry.cli import app

pytest.importorskip("pyiceberg")  # the extra `lake` (scripts/test installs it)


def cli(*args, ok=True):
    r = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert r.exit_code == 0, r.output
    return r


def test_an_unreachable_cluster_is_an_error_before_the_lake_is_created(tmp_path):
    log = vhost_log(tmp_path / "one.log")
    lake = tmp_path / "lake"
    r = cli("ingest", log, "--lake", lake, "--cluster", f"tcp://127.0.0.1:{free_port()}", ok=False)
    assert r.exit_code == 2 and r.output.startswith("logferry: error: ") and "Traceback" not in r.output
    assert "cannot reach the Dask scheduler" in r.output
    assert not lake.exists()  # no catalog, no tables, no folder


def _report(*args) -> dict:
    d = json.loads(cli("report", "--json", *args).stdout)
    d.pop("generated_at")
    return d


def test_the_config_lake_serves_ingest_report_sql_and_lake_commands(tmp_path):
    """``[lake] path`` (relative to the config file) and ``catalog``: every command given
    --config and no --lake uses them; --lake given wins."""
    (tmp_path / "etc").mkdir()
    cfg = tmp_path / "etc" / "logferry.toml"
    cfg.write_text('[lake]\npath = "../lake"\ncatalog = "../cat/lake.db"\n')
    log = vhost_log(tmp_path / "one.log")
    cli("ingest", log, "--config", cfg)
    assert (tmp_path / "cat" / "lake.db").exists() and (tmp_path / "lake").is_dir()
    lake_args = ("--lake", tmp_path / "lake", "--catalog", tmp_path / "cat" / "lake.db")
    assert _report("--config", cfg) == _report(*lake_args)
    assert _report("--config", cfg)["reports"]["summary"]["sections"]["totals"][0]["requests"] == 60
    q = "SELECT coalesce(site, host) AS s, count(*) AS n FROM requests GROUP BY 1 ORDER BY 1"
    assert cli("sql", "--config", cfg, "--json", q).stdout == cli("sql", *lake_args, "--json", q).stdout
    st = json.loads(cli("lake", "status", "--config", cfg, "--json").stdout)
    assert st["files"] == 1 and st["records"] == 60
    cli("ingest", log, "--config", cfg)  # (again: nothing added)
    assert json.loads(cli("lake", "status", "--config", cfg, "--json").stdout)["records"] == 60
    # --lake given: the config's lake is not used
    other = tmp_path / "other"
    cli("ingest", log, "--config", cfg, "--lake", other)
    assert (other / "catalog.db").exists()


@pytest.mark.parametrize("body, key", [
    ("workers = 0", "lake.workers"), ('workers = "2"', "lake.workers"), ('cluster = "dask:8786"', "lake.cluster"),
    ('path = ""', "lake.path"), ('workers = 2\ncluster = "tcp://127.0.0.1:8786"', "lake"),
    ('url = "x"', "lake.url"), ('path = "s3://b/../x"\ncatalog = "c.db"', "lake.path"),
])
def test_bad_lake_settings_are_one_line_naming_the_key(tmp_path, body, key):
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(f'[lake]\n{body}\n')
    log = vhost_log(tmp_path / "one.log")
    for args in (("ingest", log), ("report", "--json"), ("sql", "SELECT 1"), ("lake", "status")):
        r = cli(*args, "--config", cfg, ok=False)
        assert r.exit_code == 2 and r.output.startswith("logferry: error: ") and "Traceback" not in r.output, args
        assert f"{cfg}: {key}:" in r.output, r.output
    r = cli("serve", "--config", cfg, "--port", free_port(), ok=False)
    assert r.exit_code == 2 and f"{key}:" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logferry.toml", "one.log"]


def test_a_config_without_a_lake_path_or_an_unreachable_cluster_in_it(tmp_path):
    cfg = tmp_path / "logferry.toml"
    cfg.write_text('state_dir = "state"\n')
    r = cli("report", "--config", cfg, "--json", ok=False)
    assert r.exit_code == 2 and "no lake: set path in [lake] or give --lake" in r.output
    r = cli("lake", "status", ok=False)
    assert r.exit_code == 2 and "give the LAKE" in r.output
    cfg.write_text(f'[lake]\npath = "lake"\ncluster = "tcp://127.0.0.1:{free_port()}"\n')
    r = cli("ingest", vhost_log(tmp_path / "one.log"), "--config", cfg, ok=False)
    assert r.exit_code == 2 and "cannot reach the Dask scheduler" in r.output
    assert not (tmp_path / "lake").exists()


def test_lake_commands_without_a_lake_read_the_logferry_toml_here(tmp_path, monkeypatch):
    """``logferry lake status | compact | expire --older-than 400d`` as the issue writes them:
    no LAKE and no --config take ./logferry.toml's [lake], as ``serve`` does."""
    monkeypatch.chdir(tmp_path)
    cli("ingest", vhost_log(tmp_path / "one.log"), "--lake", "lake")
    r = cli("lake", "status", ok=False)
    assert r.exit_code == 2 and "give the LAKE" in r.output  # (no logferry.toml here yet)
    (tmp_path / "logferry.toml").write_text('[lake]\npath = "lake"\n')
    assert json.loads(cli("lake", "status", "--json").stdout)["records"] == 60
    assert "compacted" in cli("lake", "compact").output
    assert "expired the days older than 400d" in cli("lake", "expire", "--older-than", "400d").output


def test_workers_and_cluster_together_are_an_error_before_any_work(tmp_path):
    lake = tmp_path / "lake"
    r = cli("ingest", vhost_log(tmp_path / "one.log"), "--lake", lake, "--workers", "2",
            "--cluster", f"tcp://127.0.0.1:{free_port()}", ok=False)
    assert r.exit_code == 2 and r.output.startswith("logferry: error: ") and "give one" in r.output
    assert not lake.exists()


def test_the_configs_workers_or_cluster_compact_and_make_every_sites_report(tmp_path, monkeypatch):
    """``[lake] cluster`` (or ``workers``) applies to ``lake compact`` and ``report
    --each-site`` as to ingest; the flags win."""
    monkeypatch.chdir(tmp_path)
    cli("ingest", vhost_log(tmp_path / "one.log"), "--lake", "lake")
    (tmp_path / "logferry.toml").write_text(f'[lake]\npath = "lake"\ncluster = "tcp://127.0.0.1:{free_port()}"\n')
    for args in (["lake", "compact"], ["report", "--config", "logferry.toml", "--each-site", "out"]):
        r = cli(*args, ok=False)
        assert r.exit_code == 2 and "cannot reach the Dask scheduler" in r.output, (args, r.output)
    assert not (tmp_path / "out").exists()
    r = cli("report", "--config", "logferry.toml", "--each-site", "out", "--json", "--workers", "1")
    assert "site reports in out" in r.output and (tmp_path / "out").is_dir()  # (--workers 1: a local cluster)
