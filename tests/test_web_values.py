"""Values the console's API takes (issue 22 item 10, issue 23 item 1): every numeric query,
path and body value is checked -- ASCII digits, finite, in range, within SQLite's and
DuckDB's 64-bit integers -- and answers 422 (or 404 for an id that names nothing), never a
500; a time is ISO 8601 wherever one is taken (a string with ``Z``, an offset or a date
alone), and a job's From/Until saved from the editor loads again."""

from __future__ import annotations

import json
import threading

import pytest
from fastapi.testclient import TestClient
from tests.test_web_api import _job, _usage_db, bearer, env  # noqa: F401 - the fixture

from logferry.config import load
from logferry.usage.follow import Follower
from logferry.web.app import create_app

BIG = "99999999999999999999999"  # past a 64-bit integer


@pytest.fixture
def client(env):  # noqa: F811
    """The app with server errors answered (a 500 is a status to assert, not an exception)."""
    return TestClient(create_app(env.console, env.store), raise_server_exceptions=False)


@pytest.mark.parametrize(("url", "status"), [
    ("/api/report?status=③", 422),
    ("/api/report?status=٣", 422),
    ("/api/report?status=4,②xx", 422),
    ("/api/report?since=2024-03-02&until=2024-03-01", 422),
    ("/api/report?since=1e300", 422),
    ("/api/report?since=nan", 422),
    ("/dashboard?status=③", 422),
    ("/api/preview/schedule?every_minutes=nan", 422),
    ("/api/preview/schedule?every_minutes=inf", 422),
    ("/api/preview/schedule?every_minutes=1e300", 422),
    ("/api/preview/schedule?every_minutes=-1", 422),
    ("/api/runs?page=9223372036854775807", 422),
    (f"/api/runs?page={BIG}", 422),
    ("/api/runs?page=0", 422),
    ("/api/runs?per_page=9223372036854775807", 422),
    ("/history?page=9223372036854775807", 422),
    (f"/api/runs/{BIG}", 404),
    ("/api/runs/9223372036854775807", 404),
    (f"/runs/{BIG}", 404),
])
def test_bad_query_and_path_values_answer_422_or_404(env, client, url, status):  # noqa: F811
    env.console.db = _usage_db(env.tmp)
    r = client.get(url, headers=bearer(env.toks["admin"]))
    assert r.status_code == status, (url, r.status_code, r.text[:300])


def test_good_values_still_answer(env, client):  # noqa: F811
    env.console.db = _usage_db(env.tmp)
    h = bearer(env.toks["admin"])
    r = client.get("/api/report?status=4xx,5&since=2024-03-01T00:00:00Z&until=2024-03-02", headers=h)
    assert r.status_code == 200 and r.json()["filters"]["status_classes"] == [4, 5]
    assert r.json()["filters"]["since"] == "2024-03-01T00:00:00+00:00"
    assert len(client.get("/api/preview/schedule?every_minutes=0.5", headers=h).json()["next"]) == 3
    assert client.get("/api/runs?page=2&per_page=1000", headers=h).json()["page"] == 2


@pytest.mark.parametrize("port", ["③", "٣", "1_000", BIG, "0", "65536", "1e3", "-22"])
def test_a_port_is_ascii_digits_in_range(env, client, port):  # noqa: F811
    r = client.post("/api/test-connection", headers=bearer(env.toks["admin"]), json={"destination": {
        "type": "sftp", "host": "127.0.0.1", "port": port, "user": "u", "directory": "/in"}})
    assert r.status_code == 422 and r.json()["errors"] == {"destination.port": "a port number (1-65535)"}


@pytest.mark.parametrize("body", [
    {"every_minutes": float("inf")}, {"rotate": {"max_age_secs": 1e400}}, {"rotate": {"max_bytes": 2**64}},
    {"fields": ["timestamp", "clientip"]}, {"filter": {"status": ["①②③"]}}, {"dest": "sftp://u@h:③/in"},
])
def test_job_numbers_and_fields_are_checked_before_saving(env, client, body):  # noqa: F811
    before = env.cfg.read_bytes()
    dest = {} if "dest" in body else {"destination": {"type": "folder", "path": str(env.out / "n")}}
    payload = {"name": "n1", "job": {**_job(env), **body}, **dest}
    r = client.post("/api/jobs", headers={**bearer(env.toks["admin"]), "Content-Type": "application/json"},
                    content=json.dumps(payload))  # (Infinity as JavaScript's JSON.parse would not, Python's does)
    assert r.status_code == 422, r.text
    assert env.cfg.read_bytes() == before


@pytest.mark.parametrize(("since", "until", "want"), [
    ("2024-03-01T10:30:00Z", "2024-03-01T10:50:00Z", ("2024-03-01T10:30:00+00:00", "2024-03-01T10:50:00+00:00")),
    ("2024-03-01T12:30:00+02:00", None, ("2024-03-01T10:30:00+00:00", None)),
    ("2024-03-01", "2024-03-02", ("2024-03-01T00:00:00+00:00", "2024-03-02T00:00:00+00:00")),
])
def test_from_and_until_are_saved_and_load_again(env, client, since, until, want):  # noqa: F811
    h = bearer(env.toks["admin"])
    flt = {"since": since, **({"until": until} if until else {})}
    r = client.post("/api/jobs", headers=h, json={
        "name": "ranged", "job": _job(env, filter=flt), "destination": {"type": "folder", "path": str(env.out / "r")}})
    assert r.status_code == 201, r.text
    f = load(env.cfg).job("ranged").filter
    got = tuple(t.astimezone(__import__("datetime").UTC).isoformat() if t else None for t in (f.since, f.until))
    assert got == want
    # saved again as loaded (the editor's round trip)
    d = client.get("/api/jobs/ranged", headers=h).json()
    r = client.put("/api/jobs/ranged", headers=h, json={"version": d["version"], "job": d["config"]})
    assert r.status_code == 200, r.text


def test_until_before_since_is_refused_by_field(env, client):  # noqa: F811
    r = client.post("/api/jobs", headers=bearer(env.toks["admin"]), json={
        "name": "backwards", "job": _job(env, filter={"since": "2024-03-02T00:00:00Z", "until": "2024-03-01"}),
        "destination": {"type": "folder", "path": str(env.out / "b")}})
    assert r.status_code == 422 and "until must be after since" in r.json()["errors"]["filter"]
    r = client.post("/api/jobs", headers=bearer(env.toks["admin"]), json={
        "name": "garbled", "job": _job(env, filter={"since": "yesterday"}),
        "destination": {"type": "folder", "path": str(env.out / "b")}})
    assert r.status_code == 422 and "not a date/time" in r.json()["errors"]["filter.since"]


def test_a_follower_that_stops_on_an_error_says_so_in_the_status(env, client):  # noqa: F811
    bad_db = env.tmp / "a-folder.duckdb"
    bad_db.mkdir()  # not a database file: the follower cannot open it
    env.console.follower = Follower(str(bad_db), [str(env.log)])
    t = threading.Thread(target=env.console.follow, args=(threading.Event(),))
    t.start()
    t.join(60)
    st = client.get("/api/status", headers=bearer(env.toks["admin"])).json()["follower"]
    assert st["running"] is False and "a-folder.duckdb" in st["errors"]["follower"]


@pytest.mark.parametrize("cron", ["٣ * * * *", "* ③ * * *", "*/٥ * * * *"])
def test_a_cron_field_is_ascii_digits(env, client, cron):  # noqa: F811
    r = client.get("/api/preview/schedule", params={"cron": cron}, headers=bearer(env.toks["admin"]))
    assert r.status_code == 200 and r.json()["next"] == [] and "is not a number" in r.json()["errors"]["cron"]
