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
