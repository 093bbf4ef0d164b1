"""One conformance suite, run against every destination on a real server on 127.0.0.1."""

from __future__ import annotations

import collections
import gzip
import json
import os
from datetime import datetime, timedelta

import pytest
from tests.servers import servers as S

from logferry.destinations import open_destination
from logferry.errors import PermanentError
from logferry.ship.engine import Job, run_job
from logferry.ship.rotate import Limits
from logferry.ship.state import State

HEADER = ("#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n"
          "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip "
          "cs(User-Agent) sc-status sc-substatus sc-win32-status time-taken\n")


def write_log(path, start, n, header=True, mode="w"):
    t0 = datetime(2024, 3, 1)
    with open(path, mode) as f:
        if header:
            f.write(HEADER)
        for i in range(start, start + n):
            d = t0 + timedelta(seconds=i)
            f.write(f"{d:%Y-%m-%d %H:%M:%S} 10.0.0.1 GET /p/{i} q={i} 80 - 198.51.100.{i % 250} "
                    f"Mozilla/5.0+(X11) {500 if i % 11 == 0 else 200} 0 0 {i % 97}\n")


def paths_of(blob: bytes) -> list[str]:
    if blob[:2] == b"\x1f\x8b":
        blob = gzip.decompress(blob)
    return [json.loads(x)["path"] for x in blob.splitlines() if x.strip()]


@pytest.fixture(scope="module")
def s3():
    srv = S.S3Server()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def gcs():
    srv = S.GCSServer()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    srv = S.SSHServer(str(tmp_path_factory.mktemp("sshd")))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def ftps(tmp_path_factory):
    srv = S.FTPSServer(str(tmp_path_factory.mktemp("ftps")))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def intake():
    srv = S.DatadogIntake("dd-test-key-123")
    yield srv
    srv.stop()


DESTS = ["file", "s3", "gs", "sftp", "ftps", "datadog"]


@pytest.fixture(params=DESTS)
def target(request, tmp_path, monkeypatch):
    """(url, options, read_all_paths) for each destination."""
    kind = request.param
    if kind == "file":
        root = tmp_path / "dest"
        url = f"file://{root}"
        return kind, url, {}, lambda d: _read_objects(d)
    if kind == "s3":
        srv = request.getfixturevalue("s3")
        bucket = f"b{abs(hash(tmp_path)) % 10**8}"
        srv.make_bucket(bucket)
        monkeypatch.setenv("AWS_ENDPOINT_URL", srv.endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return kind, f"s3://{bucket}/exports", {}, _read_objects
    if kind == "gs":
        srv = request.getfixturevalue("gcs")
        return kind, f"gs://logs/{tmp_path.name}", {"endpoint_url": srv.endpoint}, _read_objects
    if kind == "sftp":
        srv = request.getfixturevalue("sshd")
        d = os.path.join(srv.root, tmp_path.name)
        return kind, f"sftp://{srv.user}@127.0.0.1:{srv.port}{d}", {
            "key_file": srv.key, "known_hosts": srv.known_hosts}, _read_objects
    if kind == "ftps":
        srv = request.getfixturevalue("ftps")
        return kind, f"ftps://{srv.user}@127.0.0.1:{srv.port}/{tmp_path.name}", {
            "password": srv.password, "ca_file": srv.cert}, _read_objects
    srv = request.getfixturevalue("intake")
    srv.items.clear()
    srv.requests.clear()
    monkeypatch.setenv("DD_API_KEY", "dd-test-key-123")
    return kind, f"datadog://127.0.0.1:{srv.port}?tls=false&service=web&ddsource=iis&ddtags=env:test", {}, \
        lambda d: [json.loads(i["message"])["path"] for i in srv.items]


def _read_objects(dest) -> list[str]:
    out = []
    for o in dest.list():
        out += paths_of(dest.get(o.name))
    return out


def test_conformance(target, tmp_path):
    kind, url, opts, read_all = target
    log = tmp_path / "access.log"
    write_log(log, 0, 3000)
    limit = 9000
    job = Job("conf", (str(log),), url, opts, limits=Limits(max_bytes=limit),
              name_template="{job}/%Y%m%d-%H%M%S.{seq:05d}{ext}")
    dest = open_destination(url, opts)
    st = State(tmp_path / "state")
    try:
        r1 = run_job(job, st, dest, clock=lambda: 1e12, sleep=lambda s: None)
        assert r1.status == "ok", r1.error
        assert r1.records == 3000
        got = read_all(dest)
        assert collections.Counter(got) == collections.Counter(f"/p/{i}" for i in range(3000))
        objs = st.objects(run_id=r1.run_id)
        assert len(objs) == r1.objects
        if kind == "datadog":
            assert all(o.records <= 1000 for o in objs)
        else:
            assert r1.objects >= 3
            assert all(o.size <= limit for o in objs), [o.size for o in objs]
            listed = {o.name: o.size for o in dest.list()}
            assert listed == {o.name: o.size for o in objs}
            assert objs[0].name == "conf/20240301-000000.00000.jsonl.gz"
        # nothing new -> nothing sent
        r2 = run_job(job, st, dest, clock=lambda: 1e12, sleep=lambda s: None)
        assert (r2.status, r2.objects, r2.records) == ("ok", 0, 0)
        # the file grows: only the new lines go
        write_log(log, 3000, 250, header=False, mode="a")
        r3 = run_job(job, st, dest, clock=lambda: 1e12, sleep=lambda s: None)
        assert (r3.status, r3.records) == ("ok", 250)
        got = read_all(dest)
        assert collections.Counter(got) == collections.Counter(f"/p/{i}" for i in range(3250))
        if kind != "datadog":
            # put is idempotent: the same name replaces, never duplicates
            name = objs[0].name
            dest.put(name, gzip.compress(b'{"path":"/x"}\n'))
            dest.put(name, gzip.compress(b'{"path":"/y"}\n'))
            assert paths_of(dest.get(name)) == ["/y"]
            assert sum(1 for o in dest.list() if o.name == name) == 1
            dest.delete(name)
            assert name not in {o.name for o in dest.list()}
    finally:
        st.close()
        dest.close()


def test_sftp_unknown_host_key_is_refused(sshd, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{sshd.port} ssh-ed25519 "
                  "AAAAC3NzaC1lZDI1NTE5AAAAIEJ5UFUX9nX5mHq0pKHc3x0qO1m1mN6m5hKJ3a3xQ0ZQ\n")
    with pytest.raises(PermanentError):
        d = open_destination(f"sftp://{sshd.user}@127.0.0.1:{sshd.port}/tmp",
                             {"key_file": sshd.key, "known_hosts": str(kh)})
        d.put("x", b"y")


def test_datadog_limits_and_auth(intake, tmp_path, monkeypatch):
    monkeypatch.setenv("DD_API_KEY", "dd-test-key-123")
    intake.items.clear()
    intake.requests.clear()
    log = tmp_path / "a.log"
    write_log(log, 0, 2500)
    job = Job("dd", (str(log),), f"datadog://127.0.0.1:{intake.port}?tls=false&service=shop&ddtags=env:ci",
              limits=Limits(max_bytes=50_000_000))
    dest = open_destination(job.dest, {})
    st = State(tmp_path / "st")
    r = run_job(job, st, dest, clock=lambda: 1e12, sleep=lambda s: None)
    assert r.status == "ok" and r.records == 2500
    assert [q["entries"] for q in intake.requests] == [1000, 1000, 500]
    assert all(q["encoding"] == "gzip" and q["bytes"] <= 5_000_000 for q in intake.requests)
    it = intake.items[0]
    assert (it["service"], it["ddsource"], it["ddtags"]) == ("shop", "logferry", "env:ci")
    assert it["date"] == "2024-03-01T00:00:00Z"
    assert intake.violations == []
    # a wrong key is a permanent failure, reported in history without the key
    monkeypatch.setenv("DD_API_KEY", "wrong-key-999")
    write_log(log, 2500, 10, header=False, mode="a")
    bad = open_destination(job.dest, {})
    r2 = run_job(job, st, bad, clock=lambda: 1e12, sleep=lambda s: None)
    assert r2.status == "failed" and "HTTP 403" in r2.error and "wrong-key-999" not in r2.error
    assert st.runs("dd", failed_only=True)[0].error == r2.error
    st.close()


def test_a_datadog_refusal_echoing_the_api_key_never_shows_it(intake, tmp_path, monkeypatch):
    """A 403 whose body repeats the key it was sent (a debugging proxy in front of the
    intake): ``ship``'s one-line error, the run's history and the console's Test
    connection say HTTP 403 with the key as ***."""
    from click.testing import CliRunner

    from logferry.cli import app
    from logferry.config import Config, Loaded
    from logferry.web import editor

    monkeypatch.setenv("DD_API_KEY", "echoed-key-4242")
    log = tmp_path / "a.log"
    write_log(log, 0, 5)
    url = f"datadog://127.0.0.1:{intake.port}?tls=false"
    intake.echo = True
    try:
        r = CliRunner().invoke(app, ["ship", str(log), "--dest", url, "--state", str(tmp_path / "st"),
                                     "--retries", "0"])
        check = editor.test_connection(Loaded(Config(), tmp_path / "logferry.toml"), url, {})
    finally:
        intake.echo = False
    assert r.exit_code == 1 and "HTTP 403" in r.output and "invalid API key ***" in r.output
    st = State(tmp_path / "st")
    [run] = st.runs("ship", failed_only=True)
    st.close()
    assert "HTTP 403" in run.error and check["ok"] is False and "HTTP 403" in check["error"]
    assert "echoed-key-4242" not in r.output + run.error + json.dumps(check)


# (the key's part looked for is no number: "777" was found in the intake's port, 127.0.0.1:50777)
@pytest.mark.parametrize("key", ["dd-key-qzx\n", "dd-key\r\nqzx", "dd-key-qzx\u00e9"])
def test_a_datadog_key_that_cannot_be_a_header_is_refused_without_showing_it(intake, tmp_path, monkeypatch, key):
    """An API key with a line break (read from a file that ends with one) or a character
    outside ASCII cannot be sent as a header: httpx's error quoted it (Illegal header value
    b'...'), which went into ship's error, the run's history and the console's Test
    connection.  It is a one-line error before any work that does not show the key."""
    from click.testing import CliRunner

    from logferry.cli import app
    from logferry.config import Config, Loaded
    from logferry.web import editor

    monkeypatch.setenv("DD_API_KEY", key)
    log = tmp_path / "a.log"
    write_log(log, 0, 5)
    url = f"datadog://127.0.0.1:{intake.port}?tls=false"
    r = CliRunner().invoke(app, ["ship", str(log), "--dest", url, "--state", str(tmp_path / "st"),
                                 "--retries", "0"])
    check = editor.test_connection(Loaded(Config(), tmp_path / "logferry.toml"), url, {})
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "API key" in r.output, r.output
    assert check["ok"] is False and "API key" in check["error"]
    assert "qzx" not in r.output + json.dumps(check) and not (tmp_path / "st").exists()


def test_console_test_connection_on_every_destination(target, tmp_path, request, monkeypatch):
    """The console's Test connection (``web.editor.test_connection``, what
    ``/api/test-connection`` runs) against each real server: ok, and nothing left behind.
    Datadog's intake keeps what it is sent: its API key is checked instead, and no log goes."""
    from logferry.config import Config, Loaded
    from logferry.web import editor

    kind, url, opts, _ = target
    if kind == "file":  # Test connection creates no folder: it exists, as after a first run
        os.makedirs(url[len("file://"):], exist_ok=True)
    loaded = Loaded(Config(), tmp_path / "logferry.toml")
    r = editor.test_connection(loaded, url, opts)
    assert r["ok"] is True, r
    d = open_destination(url, opts)
    try:
        assert [o.name for o in d.list() if "logferry-probe" in o.name] == []
    finally:
        d.close()
    if kind == "datadog":
        intake = request.getfixturevalue("intake")
        assert intake.validations >= 1 and intake.items == [] and intake.requests == []
        assert "API key is valid" in r["message"]
        monkeypatch.setenv("DD_API_KEY", "wrong-key-999")
        bad = editor.test_connection(loaded, url, opts)
        assert bad["ok"] is False and bad["step"] == "check the destination" and "HTTP 403" in bad["error"]
        assert "wrong-key-999" not in json.dumps(bad) and intake.items == []
    if kind == "ftps":  # a wrong password, given as the console gives it (an env var's name)
        monkeypatch.setenv("FTPS_PW_FOR_TEST", "not-the-password-42")
        wrong = {k: v for k, v in opts.items() if k != "password"} | {"password_env": "FTPS_PW_FOR_TEST"}
        bad = editor.test_connection(loaded, url, wrong)
        assert bad["ok"] is False and bad["step"] in ("connect", "write a probe object"), bad
        assert "not-the-password-42" not in json.dumps(bad)
