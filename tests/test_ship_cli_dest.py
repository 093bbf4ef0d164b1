"""`logferry ship` takes the destination options a console job takes (one table makes both):
a key file and known_hosts for SFTP against the real OpenSSH server, a password from the
environment and a CA file for FTPS against pyftpdlib; an option of another kind of
destination, or an unset variable, is one line and exit status 2."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner
from tests.test_dest_conformance import ftps, paths_of, sshd, write_log  # noqa: F401  (fixtures)

from logferry.cli import app
from logferry.destinations import open_destination
from logferry.destinations.options import OPTIONS, cli_flag, for_scheme
from logferry.web import desttypes


def _ship(tmp_path, dest, *opts, env=None):
    log = tmp_path / "a.log"
    if not log.exists():
        write_log(str(log), 0, 30)
    return CliRunner().invoke(app, ["ship", str(log), "--dest", dest, "--state", str(tmp_path / "st"),
                                    "--name", "{seq:04d}{ext}", *opts], env=env)


def test_ship_to_sftp_with_key_file_and_known_hosts(sshd, tmp_path):  # noqa: F811
    d = os.path.join(sshd.root, tmp_path.name)
    url = f"sftp://{sshd.user}@127.0.0.1:{sshd.port}{d}"
    r = _ship(tmp_path, url, "--key-file", sshd.key, "--known-hosts", sshd.known_hosts, "--timeout", "10")
    assert r.exit_code == 0, r.output
    assert "ok: 1 objects, 30 records" in r.output
    dest = open_destination(url, {"key_file": sshd.key, "known_hosts": sshd.known_hosts})
    try:
        assert [p for o in dest.list() for p in paths_of(dest.get(o.name))] == [f"/p/{i}" for i in range(30)]
    finally:
        dest.close()


def test_ship_to_ftps_with_a_password_from_the_environment(ftps, tmp_path):  # noqa: F811
    url = f"ftps://{ftps.user}@127.0.0.1:{ftps.port}/{tmp_path.name}"
    r = _ship(tmp_path, url, "--password-env", "FTP_PW", "--ca-file", ftps.cert,
              env={"FTP_PW": ftps.password})
    assert r.exit_code == 0, r.output
    assert "ok: 1 objects, 30 records" in r.output and ftps.password not in r.output
    assert os.listdir(os.path.join(ftps.root, tmp_path.name)) == ["0000.jsonl.gz"]


def test_ship_destination_option_mistakes_are_one_line(tmp_path):
    out = f"file://{tmp_path}/out"
    r = _ship(tmp_path, out, "--key-file", "/k")
    assert r.exit_code == 2 and r.output.count("\n") == 1
    assert "logferry: error: --key-file applies to sftp:// destinations, not file://" in r.output
    r = _ship(tmp_path, "ftps://u@127.0.0.1:1/x", "--password-env", "NOT_SET_ANYWHERE", env={"NOT_SET_ANYWHERE": None})
    assert r.exit_code == 2 and "environment variable NOT_SET_ANYWHERE is not set" in r.output
    r = _ship(tmp_path, "sftp://u@127.0.0.1:1/x", "--timeout", "-1")
    assert r.exit_code == 2 and "--timeout: a number of seconds" in r.output
    r = _ship(tmp_path, "ftp://bob:pw@127.0.0.1/x")
    assert r.exit_code == 2 and "--password-env VAR" in r.output and "bob:pw" not in r.output
    assert not os.path.exists(tmp_path / "out")


def test_the_console_and_ship_take_the_same_destination_options():
    params = {o.opts[0] for o in app.commands["ship"].params if o.opts}
    seen = set()
    for t, (_, scheme, fields) in desttypes.TYPES.items():
        opt_fields = [f.name for f in fields if f.where == "option"]
        assert opt_fields == [o.name for o in for_scheme(scheme)], t
        seen.update(opt_fields)
    assert seen == {o.name for o in OPTIONS}
    assert {cli_flag(o) for o in OPTIONS} <= params
    assert {"--key-file", "--known-hosts", "--password-env", "--timeout", "--retries"} <= params


def test_a_missing_extra_names_the_pip_command(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "s3fs", None)  # as if the s3 extra were not installed
    r = _ship(tmp_path, "s3://bucket/x/")
    assert r.exit_code == 2 and r.output.count("\n") == 1
    assert "the s3:// destination needs the optional package 's3fs': pip install 'logferry[s3]'" in r.output
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    for url, extra in (("`s3://`", "`s3`"), ("`gs://`", "`gcs`"), ("`sftp://`", "`sftp`")):
        assert any(url in ln and f"| {extra} |" in ln for ln in readme.splitlines()), url


@pytest.mark.parametrize("dest", ["s3://", "s3:///logs", "gs://", "gcs:///logs"])
def test_an_object_store_url_without_a_bucket_is_a_one_line_error(tmp_path, dest):
    """``s3://`` has no bucket: the first segment of each object name became the bucket
    (``ship/2024/...`` went to a bucket named ``ship``); now refused before any work."""
    r = _ship(tmp_path, dest, "--retries", "0", env={"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ACCESS_KEY_ID": "x",
                                   "AWS_SECRET_ACCESS_KEY": "y"})
    assert r.exit_code == 2 and r.output.count("\n") == 1, r.output
    assert r.output.startswith("logferry: error: ") and "bucket" in r.output
    assert not (tmp_path / "st").exists()
