"""Object names (issue 12, items 2 and 12): `%%` renders as `%`; a template whose names
could collide is refused at load time; a name that already holds an object is never
overwritten; names and job names cannot leave the destination or the state directory."""

from __future__ import annotations

import collections
import os

import pytest
from click.testing import CliRunner
from tests.test_dest_conformance import paths_of, s3, write_log  # noqa: F401  (fixture)

from logferry.cli import app
from logferry.config import load
from logferry.destinations import open_destination
from logferry.errors import ConfigError, PermanentError
from logferry.ship import naming
from logferry.ship.engine import Job, run_job
from logferry.ship.rotate import Limits
from logferry.ship.state import State


def _ship(tmp_path, *args):
    return CliRunner().invoke(app, ["ship", *args], catch_exceptions=False)


def test_percent_percent_is_a_literal_percent_and_names_stay_apart(tmp_path):
    log = tmp_path / "a.log"
    write_log(log, 0, 30)
    out = tmp_path / "out"
    r = _ship(tmp_path, str(log), "--dest", f"file://{out}", "--max-records", "10",
              "--name", "run-100%%-{seq}{ext}", "--state", str(tmp_path / "st"))
    assert r.exit_code == 0, r.output
    assert sorted(os.listdir(out)) == ["run-100%-0.jsonl.gz", "run-100%-1.jsonl.gz",
                                       "run-100%-2.jsonl.gz"]
    d = open_destination(f"file://{out}")
    got = collections.Counter(p for o in d.list() for p in paths_of(d.get(o.name)))
    assert got == collections.Counter(f"/p/{i}" for i in range(30))


@pytest.mark.parametrize("template", [
    "%Y%m%d-{uuid:.3}{ext}",     # a cut uuid
    "x-{uuid8:.2}{ext}",
    "x-{seq:.0f}{ext}",          # not an integer format
    "x-{seq:c}{ext}",            # a character (and control characters)
    "%Y%m%d{ext}",               # no unique field
    "x-{seq}%",                  # a lone %
    "x-{seq}%Q",                 # unknown strftime field
])
def test_templates_that_can_collide_are_refused_at_load(tmp_path, template):
    with pytest.raises(ConfigError):
        naming.validate(template)
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(f'[jobs.a]\nsource=["x.log"]\ndest="file:///tmp/x"\nname={{template={template!r}}}\n')
    with pytest.raises(ConfigError, match="jobs.a.name"):
        load(cfg)
    r = _ship(tmp_path, "x.log", "--dest", f"file://{tmp_path}/o", "--name", template,
              "--state", str(tmp_path / "st"))
    assert r.exit_code == 2 and r.output.startswith("logferry: error: ")


def test_rendering_is_exact():
    from datetime import UTC, datetime

    ts = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    r = naming.render("{{%%}}/%Y%%%m-{seq:04d}-{job}{ext}", ts, seq=7, job="j", position="p", ext=".gz")
    assert r == "{%}/2024%01-0007-j.gz"
    # nothing a field renders is read as a strftime field
    assert naming.render("{service}-{seq}", ts, seq=1, job="j", position="p", service="a%Yb") == "a%Yb-1"


def test_a_name_that_holds_a_delivered_object_is_not_overwritten(tmp_path):
    """Two jobs share a destination and a template without {job}: the second one would
    overwrite the first one's objects; it fails instead, and the first one's objects stay."""
    a_log, b_log = tmp_path / "a.log", tmp_path / "b.log"
    write_log(a_log, 0, 20)
    write_log(b_log, 100, 20)
    url = f"file://{tmp_path}/out"
    st = State(tmp_path / "st")
    dest = open_destination(url)
    ja = Job("a", (str(a_log),), url, name_template="{seq:05d}{ext}")
    jb = Job("b", (str(b_log),), url, name_template="{seq:05d}{ext}")
    assert run_job(ja, st, dest).status == "ok"
    before = {o.name: dest.get(o.name) for o in dest.list()}
    rb = run_job(jb, st, dest)
    assert rb.status == "failed" and rb.objects == 0
    assert "'00000.jsonl.gz' already holds the object delivered by job a in run 1" in rb.error
    assert {o.name: dest.get(o.name) for o in dest.list()} == before

    # an object logferry never delivered is not overwritten either
    (tmp_path / "out2").mkdir()
    (tmp_path / "out2" / "00000.jsonl.gz").write_bytes(b"someone else's")
    jc = Job("c", (str(a_log),), f"file://{tmp_path}/out2", name_template="{seq:05d}{ext}")
    rc = run_job(jc, st, open_destination(jc.dest))
    assert rc.status == "failed" and "an object logferry did not deliver" in rc.error
    assert (tmp_path / "out2" / "00000.jsonl.gz").read_bytes() == b"someone else's"
    st.close()


def test_a_killed_runs_intended_name_is_still_replaced(tmp_path):
    """The intent of a run killed after its put (before the checkpoint) is reused: that
    object is replaced, not refused as taken."""
    log = tmp_path / "a.log"
    write_log(log, 0, 20)
    url = f"file://{tmp_path}/out"
    st = State(tmp_path / "st")
    dest = open_destination(url)
    job = Job("k", (str(log),), url, name_template="{seq:05d}{ext}", limits=Limits(max_records=10))
    dest.put("00000.jsonl.gz", b"half")  # what the killed run put
    st.set_pending("k", "00000.jsonl.gz", 0)
    r = run_job(job, st, dest)
    assert r.status == "ok" and r.records == 20, r.error
    got = [p for o in dest.list() for p in paths_of(dest.get(o.name))]
    assert got == [f"/p/{i}" for i in range(20)]
    st.close()


@pytest.mark.parametrize("args", [
    ["--name", "../../x/{seq}"],
    ["--name", "/abs/{seq}"],
    ["--name", "a//{seq}"],
    ["--name", "a\x1b[2J{seq}"],
    ["--job", "../../x"],
    ["--job", ".."],
    ["--job", "ABS"],  # an absolute path: <job>.bad.jsonl would go outside --state
    ["--service", "../..", "--name", "{service}/{seq}{ext}"],
])
def test_names_cannot_leave_the_destination(tmp_path, args):
    log = tmp_path / "in" / "a.log"
    log.parent.mkdir()
    write_log(log, 0, 5)
    dest = tmp_path / "d1" / "d2" / "out"
    args = [str(tmp_path / "abs") if a == "ABS" else a for a in args]
    r = _ship(tmp_path, str(log), "--dest", f"file://{dest}", "--state", str(tmp_path / "st"), *args)
    assert r.exit_code == 2, r.output
    assert r.output.startswith("logferry: error: ") and "\x1b" not in r.output
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["in/a.log"]


def test_config_job_names_are_slugs(tmp_path):
    cfg = tmp_path / "logferry.toml"
    cfg.write_text('[jobs.".."]\nsource=["x.log"]\ndest="file:///tmp/x"\n')
    with pytest.raises(ConfigError, match="job name '..'"):
        load(cfg)


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_every_put_stays_under_the_root(kind, tmp_path, request, monkeypatch):
    if kind == "s3":
        srv = request.getfixturevalue("s3")
        srv.make_bucket("roots")
        for k, v in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                     ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ENDPOINT_URL", srv.endpoint)):
            monkeypatch.setenv(k, v)
        url, outside = "s3://roots/a/b", open_destination("s3://roots")
    else:
        url, outside = f"file://{tmp_path}/a/b", open_destination(f"file://{tmp_path}")
    d = open_destination(url)
    for name in ("../x", "../../x", "c/../../x", "/x", "c//x", "./x", "c\\..\\x", "x\x00", "x\n"):
        with pytest.raises(PermanentError):
            d.put(name, b"data")
        with pytest.raises(PermanentError):
            d.get(name)
        with pytest.raises(PermanentError):
            d.delete(name)
    d.put("c/ok", b"data")
    assert [o.name for o in outside.list()] == ["a/b/c/ok"]
    assert d.exists("c/ok") and not d.exists("c/nope")
