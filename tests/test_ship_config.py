"""Strict config (issue 12, item 16) and one-line errors for the ship/config cases of
item 15: a deeply nested TOML, an ftp:// source that cannot be reached, an unusable
--state -- `logferry: error: ...`, exit status 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tests.test_dest_conformance import write_log

from logferry.config import load
from logferry.errors import ConfigError
from logferry.ship.schedule import Schedule

JOB = '[jobs.a]\nsource=["a.log"]\ndest="file:///tmp/x"\n'


def _load(tmp_path, body: str):
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(JOB + body + "\n")
    return load(cfg)


@pytest.mark.parametrize("body, says", [
    ("every_minutes = 1e-300", "jobs.a.every_minutes: Input should be greater than or equal to 0.05"),
    ("every_minutes = 0.01", "greater than or equal to 0.05"),
    ("every_minutes = -5", "greater than or equal to 0.05"),
    ("every_minutes = nan", "every_minutes"),
    ('every_minutes = "5"', "jobs.a.every_minutes: Input should be a valid number"),
    ("retries = true", "jobs.a.retries: Input should be a valid integer"),
    ('retries = "3"', "jobs.a.retries: Input should be a valid integer"),
    ("rotate = { max_bytes = 1.5 }", "jobs.a.rotate.max_bytes"),
    ('rotate = { max_records = "10" }', "jobs.a.rotate.max_records"),
    ('compress = 1', "jobs.a.compress"),
    ('service = 5', "jobs.a.service: Input should be a valid string"),
    ('fields = "path"', "jobs.a.fields: Input should be an array"),
    ("fields = [1, 2]", "jobs.a.fields.0: Input should be a valid string"),
    ('cron = "0 0 30 2 *"', "cron '0 0 30 2 *' never fires"),
    ('cron = "0 0 31 4,6,9,11 *"', "never fires"),
    ('dest_options = { secret = "s3cr3t-VALUE" }', "'secret': secrets may not be written in the config"),
    ('dest_options = { aws_secret_access_key = "s3cr3t-VALUE" }', "'aws_secret_access_key': secrets may not"),
    ('dest_options = { client_secret = "s3cr3t-VALUE" }', "'client_secret': secrets may not"),
    ('dest_options = { api_key = "s3cr3t-VALUE" }', "'api_key': secrets may not"),
    ('dest_options = { session_token = "s3cr3t-VALUE" }', "'session_token': secrets may not"),
    ('dest_options = { password_env = "not a name" }', "must name an environment variable"),
])
def test_loose_values_are_refused(tmp_path, body, says):
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, body)
    assert says in str(e.value)
    assert "logferry.toml" in str(e.value)
    assert "s3cr3t-VALUE" not in str(e.value)  # a secret's value is never echoed


@pytest.mark.parametrize("body", [
    "every_minutes = 1", "every_minutes = 2.5", "every_minutes = 0.05", 'cron = "0 0 29 2 *"', 'cron = "0 0 30 2 1"',
    'dest_options = { password_secret = "ftp", client_secret_env = "CS", key_file = "/k", region = "x" }',
    "rotate = { max_age_secs = 60 }", 'sites = ["a"]',
])
def test_sane_values_still_load(tmp_path, body):
    _load(tmp_path, body)


def test_the_same_cron_check_at_load_and_at_run():
    for expr in ("0 0 30 2 *", "0 0 31 2,4 *"):
        with pytest.raises(ConfigError, match="never fires"):
            Schedule.make(cron=expr)
    with pytest.raises(ConfigError, match="from 0.05 to 527,040"):
        Schedule.make(every_minutes=1e-300)


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "logferry.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def test_one_line_errors_exit_2(tmp_path):
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 50_000 + "]" * 50_000 + "\n")
    log = tmp_path / "a.log"
    write_log(log, 0, 5)
    (tmp_path / "file").write_text("x")
    cases = [
        (["export", "list", "--config", str(deep)], "nested too deeply"),
        (["ship", "ftp://127.0.0.1:1/logs/*.log", "--dest", f"file://{tmp_path}/o",
          "--state", str(tmp_path / "st")], "cannot list them"),
        (["ship", str(log), "--dest", f"file://{tmp_path}/o", "--state", str(tmp_path / "file" / "st")],
         "state directory"),
        (["ship", str(log), "--dest", f"file://{tmp_path}/o", "--state", "/proc/logferry-state"],
         "state directory"),
    ]
    for args, says in cases:
        r = _cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith("logferry: error: ") and says in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(f'state_dir = "{tmp_path / "file" / "st"}"\n[jobs.a]\nsource=["{log}"]\ndest="file://{tmp_path}/o"\n')
    for args in (["export", "list"], ["export", "run", "a", "--once"], ["export", "history"], ["prune"]):
        r = _cli(*args, "--config", str(cfg))
        assert r.returncode == 2 and r.stderr.startswith("logferry: error: state directory"), (args, r.stderr)
        assert "Traceback" not in r.stderr
