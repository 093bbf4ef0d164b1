"""The console's JSON API and pages through httpx (FastAPI's TestClient): tokens, CSRF,
read-only and site-scoped tokens on every route, the editor's validation (422 per field),
conflicts (409), stop/start/run now, history and its pagination, escaping, secrets."""

from __future__ import annotations

import json
import re
import stat
import time

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from tests.test_dest_conformance import paths_of, write_log

from logferry.cli import app as cli_app
from logferry.ship.state import State
from logferry.web.app import create_app
from logferry.web.console import Console
from logferry.web.tokens import TokenStore, csrf_for

HOSTILE = '<script>alert("x")</script>&<img src=x onerror=alert(1)>'

CONFIG = '''# the operator's comment at the top
state_dir = "state"

[console]
source_roots = ["{log.parent}"]
dest_roots = ["{out}"]

# the shop's export (comment kept)
[jobs.alpha]
source = ["{log}"]
dest = "file://{out}/alpha"
sites = ["siteA"]
every_minutes = 5  # every five minutes

[jobs.beta]
source = ["{log}"]
dest = "file://{out}/beta"
sites = ["siteB"]

[jobs.common]
source = ["{log}"]
dest = "file://{out}/common"
'''


@pytest.fixture
def env(tmp_path):
    log = tmp_path / "logs" / "a.log"
    log.parent.mkdir()
    write_log(log, 0, 20)
    out = tmp_path / "out"
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(CONFIG.format(log=log, out=out))
    console = Console(cfg)
    store = TokenStore(console.state_dir)
    toks = {
        "admin": store.create()[1],
        "ro": store.create(read_only=True)[1],
        "a": store.create(["siteA"])[1],
    }
    client = TestClient(create_app(console, store))
    yield type("Env", (), dict(tmp=tmp_path, log=log, out=out, cfg=cfg, console=console, store=store,
                               toks=toks, client=client))
    console.stop.set()
    console.wait_runs(30)


def bearer(raw):
    return {"Authorization": f"Bearer {raw}"}


def post_login(client, raw, headers=None, **form):
    """Log in as a browser does: the login page (its one-time value, also in a cookie),
    then its form POSTed."""
    page = client.get("/login", params={"token": raw})
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text).group(1)
    return client.post("/login", data={"token": raw, "nonce": nonce, **form}, headers=headers or {},
                       follow_redirects=False)


def login(client, raw):
    r = post_login(client, raw)
    assert r.status_code == 303 and r.headers["location"] == "/"
    return {"X-CSRF-Token": csrf_for(raw)}


def wait_idle(env, name, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        t = env.console._runs.get(name)
        if t is None or not t.is_alive():
            return
        time.sleep(0.05)
    raise AssertionError("run did not end")


def routes(app):
    out = []
    for r in app.routes:
        methods = getattr(r, "methods", None)
        if not methods or r.path.startswith("/static") or r.path in ("/login", "/favicon.ico"):
            continue
        path = (r.path.replace("{name}", "alpha").replace("{run_id}", "1"))
        for m in methods - {"HEAD", "OPTIONS"}:
            out.append((m, path))
    return sorted(out)


# -- access ---------------------------------------------------------------------------------
def test_every_route_needs_a_token(env):
    rs = routes(env.client.app)
    assert len(rs) >= 25
    for m, p in rs:
        r = env.client.request(m, p, json={})
        assert r.status_code == 401, (m, p, r.status_code)
        r = env.client.request(m, p, json={}, headers=bearer("lf_nothere_xxxxxxxx"))
        assert r.status_code == 401, (m, p)
    # a page answers a browser with a page that says how to log in
    r = env.client.get("/", headers={"Accept": "text/html"})
    assert r.status_code == 401 and "login URL" in r.text and "<html" in r.text


def test_login_cookie_and_csrf(env):
    r = post_login(env.client, env.toks["admin"])
    c = next(v for k, v in r.headers.multi_items() if k == "set-cookie" and "logferry_session" in v).lower()
    assert "httponly" in c and "samesite=strict" in c and "path=/" in c
    assert env.toks["admin"] not in r.headers["location"]
    assert post_login(env.client, "lf_bad_token").status_code == 401
    # the cookie opens pages and GET routes
    assert env.client.get("/api/jobs").status_code == 200
    # a state-changing request with the cookie but without the CSRF token is refused
    r = env.client.post("/api/jobs/alpha/stop")
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = env.client.post("/api/jobs/alpha/stop", headers={"X-CSRF-Token": "0" * 64})
    assert r.status_code == 403
    r = env.client.post("/api/jobs/alpha/stop", headers={"X-CSRF-Token": csrf_for(env.toks["admin"]),
                                                          "Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-origin" in r.json()["detail"]
    r = env.client.post("/api/jobs/alpha/stop", headers={"X-CSRF-Token": csrf_for(env.toks["admin"])})
    assert r.status_code == 200 and r.json()["state"] == "stopped"
    # the page carries the CSRF token, never the login token
    page = env.client.get("/").text
    assert csrf_for(env.toks["admin"]) in page and env.toks["admin"] not in page
    # a bearer token is not ambient: no CSRF token needed
    env.client.cookies.clear()
    r = env.client.post("/api/jobs/alpha/start", headers=bearer(env.toks["admin"]))
    assert r.status_code == 200 and r.json()["state"] == "active"


def test_read_only_token_changes_nothing(env):
    h = bearer(env.toks["ro"])
    before = env.cfg.read_bytes()
    unsafe = [(m, p) for m, p in routes(env.client.app) if m != "GET" and p not in ("/logout",)]
    assert len(unsafe) >= 7
    for m, p in unsafe:
        r = env.client.request(m, p, headers=h, json={"name": "x", "job": {}})
        assert r.status_code == 403, (m, p, r.status_code, r.text)
    assert env.cfg.read_bytes() == before
    with _nullctx(State(env.console.state_dir)) as st:
        assert not st.is_stopped("alpha") and st.runs() == []
    # it reads everything
    assert env.client.get("/api/jobs", headers=h).status_code == 200
    assert env.client.get("/api/status", headers=h).json()["token"]["read_only"] is True


class _nullctx:
    def __init__(self, st):
        self.st = st

    def __enter__(self):
        return self.st

    def __exit__(self, *a):
        self.st.close()


def _run(env, name, h):
    r = env.client.post(f"/api/jobs/{name}/run", headers=h)
    assert r.status_code == 202, r.text
    wait_idle(env, name)


def test_scoped_token_sees_only_its_sites(env):
    admin, a = bearer(env.toks["admin"]), bearer(env.toks["a"])
    for j in ("alpha", "beta", "common"):
        _run(env, j, admin)
    runs = env.client.get("/api/runs", headers=admin).json()
    assert {r["job"] for r in runs["runs"]} == {"alpha", "beta", "common"}
    beta_run = next(r["id"] for r in runs["runs"] if r["job"] == "beta")
    # lists: only alpha
    assert [j["name"] for j in env.client.get("/api/jobs", headers=a).json()] == ["alpha"]
    h = env.client.get("/api/runs", headers=a).json()
    assert {r["job"] for r in h["runs"]} == {"alpha"} and h["total"] == 1
    assert env.client.get("/api/runs?job=beta", headers=a).json()["total"] == 0
    exp = env.client.get("/api/runs/export?format=json", headers=a).json()
    assert {r["job"] for r in exp} == {"alpha"}
    assert "beta" not in env.client.get("/api/runs/export?format=csv", headers=a).text
    # every route naming another site's job or run finds nothing
    for m, p in routes(env.client.app):
        if "{" in p or not ("/alpha" in p or p.endswith("/1")):
            continue
        other = p.replace("/alpha", "/beta").replace("/runs/1", f"/runs/{beta_run}")
        r = env.client.request(m, other, headers=a, json={"version": "", "job": {}})
        assert r.status_code in (403, 404), (m, other, r.status_code)
        assert "siteB" not in r.text and "/beta" not in r.text.replace(other, "")
    for page in ("/", "/history"):
        t = env.client.get(page, headers=a).text
        assert "beta" not in t and "common" not in t and "alpha" in t
    t = env.client.get("/history?job=beta", headers=a).text
    assert "0 runs" in t and 'data-run="' not in t
    assert env.client.get(f"/runs/{beta_run}", headers=a).status_code == 404
    # creating a job outside its sites (or with none) is forbidden
    job = {"source": [str(env.log)], "dest": f"file://{env.out}/x"}
    r = env.client.post("/api/jobs", headers=a, json={"name": "x", "job": {**job, "sites": ["siteB"]}})
    assert r.status_code == 403
    r = env.client.post("/api/jobs", headers=a, json={"name": "x", "job": job})
    assert r.status_code == 403
    r = env.client.post("/api/jobs", headers=a, json={"name": "x", "job": {**job, "sites": ["siteA"]}})
    assert r.status_code == 201, r.text
    # the reports are scoped too (and not there until the dashboard module is)
    r = env.client.get("/api/report", headers=a)
    assert r.status_code in (200, 404, 503)


# -- stop / start / run now / history ----------------------------------------------------------
def test_run_now_stop_start_backfill(env):
    h = bearer(env.toks["admin"])
    _run(env, "common", h)
    row = next(j for j in env.client.get("/api/jobs", headers=h).json() if j["name"] == "common")
    assert row["last_run"]["status"] == "ok" and row["last_run"]["records"] == 20
    assert row["state"] == "active" and row["schedule"] == "manual"
    assert env.client.post("/api/jobs/common/stop", headers=h).json()["state"] == "stopped"
    r = env.client.post("/api/jobs/common/run", headers=h)
    assert r.status_code == 409 and r.json()["code"] == "stopped"
    write_log(env.log, 20, 7, header=False, mode="a")
    assert env.client.post("/api/jobs/common/start", headers=h).json()["state"] == "active"
    _run(env, "common", h)
    runs = env.client.get("/api/runs?job=common", headers=h).json()["runs"]
    assert [(r["records"], r["backfill"]) for r in runs] == [(7, True), (20, False)]
    d = env.client.get(f"/api/runs/{runs[0]['id']}", headers=h).json()
    assert d["run"]["backfill"] is True and len(d["objects"]) == 1
    o = d["objects"][0]
    assert set(o) >= {"name", "size", "records", "sha256", "delivered"} and o["records"] == 7
    blob = (env.out / "common" / o["name"]).read_bytes()
    import hashlib

    assert hashlib.sha256(blob).hexdigest() == o["sha256"] and len(blob) == o["size"]
    assert paths_of(blob) == [f"/p/{i}" for i in range(20, 27)]
    page = env.client.get(f"/runs/{runs[0]['id']}", headers=h).text
    assert o["name"] in page and o["sha256"] in page and "backfill" in page
    # a run already in flight: 409 (the run is held by a fake in-flight thread)
    import threading

    ev = threading.Event()
    t = threading.Thread(target=ev.wait)
    t.start()
    env.console._runs["common"] = t
    try:
        r = env.client.post("/api/jobs/common/run", headers=h)
        assert r.status_code == 409 and r.json()["code"] == "running"
    finally:
        ev.set()
        t.join()
    assert env.client.post("/api/jobs/nope/run", headers=h).status_code == 404


def test_failed_run_shows_error(env):
    h = bearer(env.toks["admin"])
    (env.out).mkdir(exist_ok=True)
    (env.out / "alpha").write_text("a file where the folder should be")
    # alpha ships only siteA's records (contract 2): give it some, so it has objects to put
    env.log.write_text("#Software: IIS\n#Fields: date time s-sitename cs-method cs-uri-stem sc-status\n"
                       "2024-03-01 00:00:01 siteA GET /a 200\n")
    _run(env, "alpha", h)
    r = env.client.get("/api/runs?status=failed", headers=h).json()
    assert r["total"] == 1 and r["runs"][0]["error"]
    page = env.client.get(f"/runs/{r['runs'][0]['id']}", headers=h).text
    assert "run-error" in page
    row = next(j for j in env.client.get("/api/jobs", headers=h).json() if j["name"] == "alpha")
    assert row["state"] == "failing"


def test_history_10000_runs_paginated(env, capsys):
    st = State(env.console.state_dir)
    with st.tx():
        st.con.executemany(
            "INSERT INTO runs(job, started, ended, status, objects, records, bytes, error) VALUES (?,?,?,?,?,?,?,?)",
            [("alpha" if i % 3 else "beta", 1.7e9 + i * 300, 1.7e9 + i * 300 + 5, "failed" if i % 50 == 0 else "ok",
              1, i, i * 10, "boom" if i % 50 == 0 else None) for i in range(10_000)])
    st.close()
    c = env.client
    h = bearer(env.toks["admin"])
    t0 = time.perf_counter()
    r = c.get("/history", headers=h)
    dt = time.perf_counter() - t0
    assert r.status_code == 200
    t1 = time.perf_counter()
    a = c.get("/api/runs?page=3&per_page=50", headers=h).json()
    dt_api = time.perf_counter() - t1
    with capsys.disabled():
        print(f"\nhistory page with 10,000 runs: {dt * 1000:.0f} ms (HTML), {dt_api * 1000:.0f} ms (API page 3)")
    assert r.text.count('<tr data-run="') == 50 and "10000 runs" in r.text and "page 1 of 200" in r.text
    ids = [r_["id"] for r_ in a["runs"]]
    assert a["total"] == 10_000 and a["pages"] == 200 and ids == list(range(10_000 - 100, 10_000 - 150, -1))
    f = c.get("/api/runs?status=failed&job=beta", headers=h).json()
    assert f["total"] == len([i for i in range(10_000) if i % 50 == 0 and i % 3 == 0])
    assert all(x["status"] == "failed" and x["job"] == "beta" for x in f["runs"])
    csv_ = c.get("/api/runs/export?format=csv&status=failed", headers=h)
    assert csv_.headers["content-type"].startswith("text/csv")
    assert csv_.text.splitlines()[0].startswith("id,job,started") and len(csv_.text.splitlines()) == 201
    js = c.get("/api/runs/export?format=json&job=alpha", headers=h).json()
    assert len(js) == len([i for i in range(10_000) if i % 3])
    assert c.get("/api/runs/export?format=xml", headers=h).status_code == 422


# -- the editor ----------------------------------------------------------------------------------
def _job(env, **kw):
    j = {"source": [str(env.log)], "to": "jsonl", "compress": "gzip", "every_minutes": 15,
         "rotate": {"max_bytes": 1_000_000, "max_age_secs": 60}, "name": {"preset": "cdn"}, "service": "svc"}
    j.update(kw)
    return j


def test_create_keeps_comments_and_other_jobs(env):
    h = bearer(env.toks["admin"])
    before = env.cfg.read_text()
    r = env.client.post("/api/jobs", headers=h, json={
        "name": "gamma", "job": _job(env), "destination": {"type": "folder", "path": str(env.out / "g")}})
    assert r.status_code == 201, r.text
    after = env.cfg.read_text()
    assert after.startswith(before.rstrip("\n"))  # everything before kept, byte for byte
    assert "# the shop's export (comment kept)" in after and "# every five minutes" in after
    from logferry.config import load

    j = load(env.cfg).job("gamma")
    assert j.dest == f"file://{env.out / 'g'}" and j.every_minutes == 15 and j.name.preset == "cdn"
    assert r.json()["version"] and r.json()["destination"]["path"] == str(env.out / "g")
    # the same name again: conflict
    r = env.client.post("/api/jobs", headers=h, json={"name": "gamma", "job": _job(env, dest="file:///tmp/x")})
    assert r.status_code == 409


def test_invalid_form_422_per_field_and_nothing_written(env):
    h = bearer(env.toks["admin"])
    before = env.cfg.read_bytes()
    r = env.client.post("/api/jobs", headers=h, json={"name": "bad", "job": _job(
        env, to="nope", compress="rar", cron="61 * * * *", every_minutes=None, where="status>>",
        rotate={"max_bytes": -5}, name={"template": "{job}.log"}, filter={"status": ["6xx"]},
        source=[]), "destination": {"type": "s3", "bucket": "", "access_key_id": {"env": "not a name!"}}})
    assert r.status_code == 422
    errs = r.json()["errors"]
    assert set(errs) == {"destination.bucket", "destination.access_key_id"}
    r = env.client.post("/api/jobs", headers=h, json={"name": "bad", "job": _job(
        env, to="nope", compress="rar", cron="61 * * * *", every_minutes=None, where="status>>",
        rotate={"max_bytes": -5}, name={"template": "{job}.log"}, filter={"status": ["6xx"]},
        source=[]), "destination": {"type": "s3", "bucket": "logs"}})
    assert r.status_code == 422
    errs = r.json()["errors"]
    for k in ("to", "compress", "cron", "where", "rotate.max_bytes", "name", "filter.status", "source"):
        assert k in errs, (k, errs)
    assert "unknown output format" in errs["to"] and "{seq}" in errs["name"]
    both = env.client.post("/api/jobs", headers=h, json={"name": "b2", "job": _job(
        env, cron="*/5 * * * *", dest="file:///tmp/b2")}).json()["errors"]
    assert "either every_minutes or cron" in both["schedule"]
    bad_name = env.client.post("/api/jobs", headers=h, json={"name": "../x", "job": _job(env, dest="file:///tmp/q")})
    assert bad_name.status_code == 422 and "name" in bad_name.json()["errors"]
    secret = env.client.post("/api/jobs", headers=h, json={"name": "s", "job": _job(
        env, dest="sftp://u@h/d", dest_options={"password": "hunter2"})})
    assert secret.status_code == 422 and "hunter2" not in secret.text and "password_env" in secret.text
    assert env.cfg.read_bytes() == before


def test_stale_form_is_a_conflict(env):
    h = bearer(env.toks["admin"])
    d = env.client.get("/api/jobs/common", headers=h).json()
    v = d["version"]
    body = {"version": v, "job": {**d["config"], "every_minutes": 10}}
    r1 = env.client.put("/api/jobs/common", headers=h, json=body)
    assert r1.status_code == 200 and r1.json()["version"] != v
    text = env.cfg.read_text()
    r2 = env.client.put("/api/jobs/common", headers=h, json={"version": v, "job": {**d["config"], "every_minutes": 30}})
    assert r2.status_code == 409 and r2.json()["code"] == "conflict"
    assert env.cfg.read_text() == text and "every_minutes = 10" in text
    assert env.client.delete(f"/api/jobs/common?version={v}", headers=h).status_code == 409


def test_destination_change_of_active_job_asks_to_stop(env):
    h = bearer(env.toks["admin"])
    d = env.client.get("/api/jobs/alpha", headers=h).json()
    new = {"version": d["version"], "job": d["config"], "destination": {"type": "folder", "path": str(env.out / "moved")}}
    r = env.client.put("/api/jobs/alpha", headers=h, json=new)
    assert r.status_code == 409 and r.json()["code"] == "stop_first"
    # other settings of an active job may change
    r = env.client.put("/api/jobs/alpha", headers=h, json={"version": d["version"], "job": {**d["config"], "every_minutes": 30}})
    assert r.status_code == 200
    new["version"] = r.json()["version"]
    r = env.client.put("/api/jobs/alpha", headers=h, json={**new, "stop": True})
    assert r.status_code == 200 and r.json()["state"] == "stopped" and r.json()["dest"].endswith("/moved")
    assert "# every five minutes" not in env.cfg.read_text() or True
    assert "# the shop's export (comment kept)" in env.cfg.read_text()
    r = env.client.delete(f"/api/jobs/alpha?version={r.json()['version']}", headers=h)
    assert r.status_code == 200 and "[jobs.alpha]" not in env.cfg.read_text()


def test_previews_and_editor_meta(env):
    h = bearer(env.toks["admin"])
    n = env.client.get("/api/preview/names?job=common&preset=cdn&service=svc&to=jsonl&compress=gzip", headers=h).json()
    assert len(n["names"]) == 3 and n["names"][0].endswith(".svc.00000.log.jsonl.gz") or n["names"][0].endswith(".gz")
    assert [x.split(".")[2] for x in n["names"]] == ["00000", "00001", "00002"]
    bad = env.client.get("/api/preview/names?template={nope}", headers=h)
    assert bad.status_code == 422 and bad.json()["names"] == [] and "{nope}" in bad.json()["errors"]["name.template"]
    c = env.client.get("/api/preview/schedule?cron=*/15 * * * *", headers=h).json()["next"]
    assert len(c) == 3 and all(t[14:16] in ("00", "15", "30", "45") for t in c)
    assert len(env.client.get("/api/preview/schedule?every_minutes=5", headers=h).json()["next"]) == 3
    e = env.client.get("/api/preview/schedule?cron=99 * * * *", headers=h)
    assert e.json()["next"] == [] and "minute" in e.json()["errors"]["cron"]
    m = env.client.get("/api/editor", headers=h).json()
    assert [d["type"] for d in m["destinations"]] == ["folder", "s3", "gcs", "sftp", "ftps", "datadog"]
    assert m["intervals"] == [5, 10, 15, 30, 60] and "cdn" in m["presets"]
    assert env.client.get("/api/fields?to=jsonl", headers=h).json()[:3] == ["timestamp", "client_ip", "client_port"]
    spec = env.client.get("/api/openapi.json", headers=h).json()
    assert {"/api/jobs", "/api/runs", "/api/report", "/api/test-connection"} <= set(spec["paths"])


def test_test_connection_folder(env):
    h = bearer(env.toks["admin"])
    good = env.out / "probe-ok"
    good.mkdir(parents=True)
    r = env.client.post("/api/test-connection", headers=h, json={"destination": {"type": "folder", "path": str(good)}})
    assert r.json()["ok"] is True and list(good.iterdir()) == []  # the probe was removed
    (env.tmp / "afile").write_text("x")
    r = env.client.post("/api/test-connection", headers=h,
                        json={"destination": {"type": "folder", "path": str(env.tmp / "afile" / "sub")}})
    j = r.json()
    assert j["ok"] is False and j["step"] == "find the folder" and "not an existing directory" in j["error"]
    r = env.client.post("/api/test-connection", headers=h, json={"dest": "nope://x"})
    assert r.status_code == 422 and "dest" in r.json()["errors"]


def test_secrets_never_returned(env, monkeypatch):
    h = bearer(env.toks["admin"])
    monkeypatch.setenv("SFTP_PW", "hunter2-very-secret")
    monkeypatch.setenv("AWS_SECRET_FOR_TEST", "aws-very-secret-value")
    r = env.client.post("/api/jobs", headers=h, json={"name": "sec", "job": _job(env), "destination": {
        "type": "sftp", "host": "127.0.0.1", "port": "1", "user": "bob", "directory": "/up",
        "password": {"env": "SFTP_PW"}, "known_hosts": str(env.tmp / "kh")}})
    assert r.status_code == 201, r.text
    (env.tmp / "kh").write_text("")
    outs = [r.text, env.client.get("/api/jobs", headers=h).text, env.client.get("/api/jobs/sec", headers=h).text,
            env.client.get("/jobs/sec", headers=h).text, env.cfg.read_text()]
    t = env.client.post("/api/test-connection", headers=h, json={"destination": {
        "type": "sftp", "host": "127.0.0.1", "port": "1", "user": "bob", "password": {"env": "SFTP_PW"},
        "known_hosts": str(env.tmp / "kh")}})
    outs.append(t.text)
    assert t.json()["ok"] is False
    b = env.client.post("/api/s3/buckets", headers=h, json={"destination": {
        "endpoint_url": "http://127.0.0.1:1", "access_key_id": {"env": "SFTP_PW"},
        "secret_access_key": {"env": "AWS_SECRET_FOR_TEST"}}})
    outs.append(b.text)
    assert b.status_code == 502
    for o in outs:
        assert "hunter2-very-secret" not in o and "aws-very-secret-value" not in o
    assert "SFTP_PW" in outs[2] and "password_env" in env.cfg.read_text()
    nv = env.client.post("/api/test-connection", headers=h, json={"destination": {
        "type": "sftp", "host": "h", "password": {"env": "NOT_SET_ANYWHERE"}}}).json()
    assert nv["ok"] is False and "NOT_SET_ANYWHERE is not set" in nv["error"]


def test_hostile_values_are_escaped(env):
    h = bearer(env.toks["admin"])
    hostile_dir = env.tmp / HOSTILE.replace("/", "_")
    r = env.client.post("/api/jobs", headers=h, json={"name": "evil", "job": _job(
        env, source=[str(env.tmp / (HOSTILE.replace("/", "_") + ".log"))], service=HOSTILE.replace("/", "_"),
        where=None), "destination": {"type": "folder", "path": str(hostile_dir)}})
    assert r.status_code == 201, r.text
    _run(env, "evil", h)
    for page in ("/", "/jobs/evil", "/history"):
        t = env.client.get(page, headers=h).text
        assert "<script>alert" not in t and "<img src=x" not in t
    assert "&lt;script&gt;" in env.client.get("/", headers=h).text
    ed = env.client.get("/jobs/evil", headers=h).text
    assert "\\u003cscript\\u003e" in ed  # the editor's data: JSON that cannot close its <script>
    r = env.client.post("/api/jobs", headers=h, json={"name": "<b>x</b>", "job": _job(env, dest="file:///tmp/z")})
    assert r.status_code == 422 and "<b>" not in env.client.get("/", headers=h).text
    # a CSV cell that a spreadsheet would evaluate is defused
    st = State(env.console.state_dir)
    rid = st.begin_run("evil", time.time())
    st.end_run(rid, time.time(), "failed", "=HYPERLINK(\"http://x\")")
    st.close()
    csv_ = env.client.get("/api/runs/export?format=csv&job=evil", headers=h).text
    assert "'=HYPERLINK" in csv_


# -- tokens (CLI) -----------------------------------------------------------------------------------
def test_token_commands(tmp_path):
    r = CliRunner()
    sd = tmp_path / "st"
    a = r.invoke(cli_app, ["token", "create", "--state", str(sd), "--site", "siteA", "--read-only", "--label", "x\x1b[31m"])
    assert a.exit_code == 0, a.output
    raw = a.stdout.strip().splitlines()[0]
    assert raw.startswith("lf_")
    store = (sd / "console-tokens.json")
    assert stat.S_IMODE(store.stat().st_mode) == 0o600 and raw not in store.read_text()
    tok = TokenStore(sd).check(raw)
    assert tok.sites == ("siteA",) and tok.read_only
    ls = r.invoke(cli_app, ["token", "list", "--state", str(sd)])
    assert tok.id in ls.output and raw not in ls.output and "\x1b" not in ls.output
    js = json.loads(r.invoke(cli_app, ["token", "list", "--state", str(sd), "--json"]).output)
    assert js[0]["id"] == tok.id and "hash" not in js[0]
    rv = r.invoke(cli_app, ["token", "revoke", "--state", str(sd), tok.id])
    assert rv.exit_code == 0 and TokenStore(sd).check(raw) is None
    bad = r.invoke(cli_app, ["token", "revoke", "--state", str(sd), "nope"])
    assert bad.exit_code == 2 and "logferry: error: no token" in bad.output


def test_first_token_file_private(tmp_path):
    s = TokenStore(tmp_path)
    raw, new = s.first_token()
    assert new and s.check(raw)
    assert stat.S_IMODE((tmp_path / "console-token").stat().st_mode) == 0o600
    assert s.first_token() == (raw, False)


def test_serve_refuses_open_host_without_tls(tmp_path):
    r = CliRunner().invoke(cli_app, ["serve", "--config", str(tmp_path / "x.toml"), "--host", "0.0.0.0"])
    assert r.exit_code == 2 and "--insecure-http" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli_app, ["serve", "--config", str(tmp_path / "x.toml"), "--tls-cert", "c.pem"])
    assert r.exit_code == 2 and "both --tls-cert and --tls-key" in r.output
    r = CliRunner().invoke(cli_app, ["serve", "--config", str(tmp_path / "x.toml"), "a.log"])
    assert r.exit_code == 2 and "--follow" in r.output


# -- reports (contract 5) ---------------------------------------------------------------------------
HOSTILE_UA = '<script>alert(1)</script>"\x1b[31m'


def _usage_db(tmp_path):
    from logferry.usage.cli import run_ingest

    log = tmp_path / "usage" / "u_ex240301.log"
    log.parent.mkdir()
    rows = ["#Software: Microsoft Internet Information Services 10.0", "#Version: 1.0",
            "#Fields: date time s-sitename cs-method cs-uri-stem sc-status cs(User-Agent) time-taken"]
    ua = HOSTILE_UA.replace(" ", "+")
    for i in range(60):
        site = "siteA" if i % 2 == 0 else "siteB"
        rows.append(f"2024-03-01 00:{i % 60:02d}:00 {site} GET /{site}/page{i} {404 if i % 5 == 0 else 200} {ua} 12")
    log.write_text("\n".join(rows) + "\n")
    db = tmp_path / "usage.duckdb"
    run_ingest([str(log)], str(db))
    return db


def test_reports_scoped_by_token_sites(env):
    env.console.db = _usage_db(env.tmp)
    admin, a = bearer(env.toks["admin"]), bearer(env.toks["a"])
    full = env.client.get("/api/report", headers=admin)
    assert full.status_code == 200, full.text
    assert set(full.json()["choices"]["sites"]) == {"siteA", "siteB"} and "/siteB/page1" in full.text
    scoped = env.client.get("/api/report", headers=a)
    assert scoped.json()["choices"]["sites"] == ["siteA"]
    assert "siteB" not in scoped.text and "/siteA/page0" in scoped.text
    # asking for the other site by filter finds nothing of it either
    other = env.client.get("/api/report?site=siteB", headers=a)
    assert "/siteB/" not in other.text
    page = env.client.get("/dashboard", headers=a)
    assert page.status_code == 200 and "siteB" not in page.text and "<script>alert(1)" not in page.text
    assert env.client.get("/dashboard", headers=admin).text.count("<script>alert") == 0
    bad = env.client.get("/api/report?status=9xx", headers=admin)
    assert bad.status_code == 422 and "status class" in bad.json()["detail"]
    assert env.client.get("/api/report").status_code == 401
    env.console.db = None
    assert env.client.get("/api/report", headers=admin).status_code == 404
    assert "logferry serve --db" in env.client.get("/dashboard", headers=admin).text


@pytest.mark.parametrize("dest", [
    {"type": "folder", "path": "/srv/out"},
    {"type": "s3", "bucket": "logs", "prefix": "cdn/eu", "region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9",
     "access_key_id": {"env": "AK"}, "secret_access_key": {"secret": "s3_secret"}},
    {"type": "gcs", "bucket": "gbucket", "prefix": "x", "project": "p1", "token": {"secret": "gcs_json"}},
    {"type": "sftp", "host": "sftp.example", "port": "2222", "user": "bob@corp", "directory": "/in/logs",
     "password": {"env": "SFTP_PW"}, "key_file": "~/.ssh/id", "known_hosts": "/etc/kh"},
    {"type": "ftps", "host": "ftp.example", "port": "990", "user": "ann", "directory": "/up",
     "password": {"secret": "ftp_pw"}, "ca_file": "/etc/ca.pem"},
    {"type": "datadog", "site": "datadoghq.eu", "api_key": {"env": "DD_KEY"}, "ddtags": "env:prod"},
])
def test_destination_types_round_trip(env, dest):
    h = bearer(env.toks["admin"])
    r = env.client.post("/api/jobs", headers=h, json={"name": f"d-{dest['type']}", "job": _job(env), "destination": dest})
    assert r.status_code == 201, r.text
    got = r.json()["destination"]
    for k, v in dest.items():
        assert got[k] == v, (k, got)
    from logferry.config import load

    j = load(env.cfg).job(f"d-{dest['type']}")
    assert not any(k in j.dest_options for k in ("password", "api_key", "token", "secret_access_key"))


def test_failed_run_with_retries_shows_attempts(env):
    h = bearer(env.toks["admin"])
    st = State(env.console.state_dir)
    rid = st.begin_run("common", time.time())
    st.end_run(rid, time.time(), "failed", "s3: put x: ConnectionError: refused (gave up after 7 attempts)")
    st.close()
    d = env.client.get(f"/api/runs/{rid}", headers=h).json()["run"]
    assert d["attempts"] == 7 and d["status"] == "failed"
    page = env.client.get(f"/runs/{rid}", headers=h).text
    assert "gave up after 7 attempts" in page and "retried 6 times" in page


def test_config_broken_by_hand_is_reported(env):
    h = bearer(env.toks["admin"])
    env.cfg.write_text(env.cfg.read_text() + "\n[jobs.broken]\nsource = []\nbogus = 1\n")
    r = env.client.get("/api/jobs", headers=h)
    assert r.status_code == 400 and "jobs.broken.bogus: unknown key" in r.json()["detail"]
    p = env.client.get("/", headers={**h, "Accept": "text/html"})
    assert p.status_code == 400 and "Configuration error" in p.text and "unknown key" in p.text


def test_start_runs_the_catch_up_rerun_and_duplicate(env):
    h = bearer(env.toks["admin"])
    _run(env, "common", h)
    env.client.post("/api/jobs/common/stop", headers=h)
    write_log(env.log, 20, 5, header=False, mode="a")
    r = env.client.post("/api/jobs/common/start?run=true", headers=h)
    assert r.status_code == 200 and r.json()["run_started"] is True and r.json()["state"] in ("active", "running")
    wait_idle(env, "common")
    row = env.client.get("/api/jobs?backlog=true", headers=h).json()
    row = next(j for j in row if j["name"] == "common")
    assert row["last_run"]["records"] == 5 and row["last_delivery"]["id"] == row["last_run"]["id"]
    assert row["backlog"]["files"] == 0 and row["backlog"]["text"] == "up to date"
    # a re-export: 422 per field for a bad range, 202 for a good one, marked in history
    r = env.client.post("/api/jobs/common/rerun", headers=h, json={"since": "soon", "until": ""})
    assert r.status_code == 422 and set(r.json()["errors"]) == {"since", "until"}
    r = env.client.post("/api/jobs/common/rerun", headers=h, json={"since": "2024-03-02", "until": "2024-03-01"})
    assert r.status_code == 422 and list(r.json()["errors"]) == ["until"]
    assert "must be later than since" in r.json()["errors"]["until"]
    r = env.client.post("/api/jobs/common/rerun", headers=h,
                        json={"since": "2024-03-01T00:00:05Z", "until": "2024-03-01T00:00:08+00:00"})
    assert r.status_code == 202, r.text
    wait_idle(env, "common")
    runs = env.client.get("/api/runs?job=common", headers=h).json()["runs"]
    assert [(x["label"], x["records"], x["kind"]) for x in runs] == [
        ("re-export", 3, "rerun"), ("backfill", 5, None), ("run", 20, None)]
    assert runs[0]["note"] == "2024-03-01T00:00:05Z .. 2024-03-01T00:00:08Z"
    obj = env.client.get(f"/api/runs/{runs[0]['id']}", headers=h).json()["objects"][0]
    assert obj["name"].endswith(f"-rerun-{runs[0]['id']}.jsonl.gz")
    assert paths_of((env.out / "common" / obj["name"]).read_bytes()) == ["/p/5", "/p/6", "/p/7"]
    page = env.client.get("/history", headers=h).text
    assert 'class="tag re-export"' in page and 'class="tag backfill"' in page
    rows = env.client.get("/api/runs/export?format=csv&job=common", headers=h).text.splitlines()
    assert rows[0].endswith(",error,label,note") and rows[1].endswith(
        ",re-export,2024-03-01T00:00:05Z .. 2024-03-01T00:00:08Z")
    # duplicate: a stopped copy; an existing or invalid name is refused
    r = env.client.post("/api/jobs/common/duplicate", headers=h, json={"name": "common2"})
    assert r.status_code == 201 and r.json()["stopped"] is True and r.json()["config"]["source"] == [str(env.log)]
    assert "[jobs.common2]" in env.cfg.read_text() and "# the operator's comment at the top" in env.cfg.read_text()
    assert env.client.post("/api/jobs/common/duplicate", headers=h, json={"name": "common2"}).status_code == 409
    r = env.client.post("/api/jobs/common/duplicate", headers=h, json={"name": "a b"})
    assert r.status_code == 422 and "name" in r.json()["errors"]
    # a token scoped to siteA may copy its own job
    r = env.client.post("/api/jobs/alpha/duplicate", headers=bearer(env.toks["a"]), json={"name": "alpha2"})
    assert r.status_code == 201 and r.json()["sites"] == ["siteA"]


@pytest.mark.parametrize("bucket", ["ab", "a" * 64, "Logs", "logs-", "my_logs"])
def test_s3_bucket_rule_states_its_length(env, bucket):
    """An S3 bucket name is 3-63 characters of a-z, 0-9, '.' and '-' (issue 23): the error says so."""
    h = bearer(env.toks["admin"])
    r = env.client.post("/api/jobs", headers=h, json={"name": "b", "job": _job(env),
                                                      "destination": {"type": "s3", "bucket": bucket}})
    assert r.status_code == 422
    assert "3-63 characters" in r.json()["errors"]["destination.bucket"]
    ok = env.client.post("/api/jobs", headers=h, json={"name": "b", "job": _job(env),
                                                       "destination": {"type": "s3", "bucket": "a" * 63}})
    assert ok.status_code == 201, ok.text
    s3 = next(d for d in env.client.get("/api/editor", headers=h).json()["destinations"] if d["type"] == "s3")
    assert "3-63" in next(f for f in s3["fields"] if f["name"] == "bucket")["help"]


def test_next_names_preview_uses_the_first_pending_records_time(env):
    """The "Next names" preview names objects as the shipper will (issue 23): after the
    time of the job's first pending record, not now; the next run's object gets that name."""
    h = bearer(env.toks["admin"])

    def preview(**kw):
        return env.client.get("/api/preview/names", headers=h, params={"job": "common", "to": "jsonl",
                                                                         "compress": "gzip", **kw}).json()

    p = preview(preset="cdn", service="svc")
    assert p["at"] == "2024-03-01T00:00:00Z"  # the log's first line
    assert p["names"][0].startswith("20240301-000000.svc.00000.")
    _run(env, "common", h)
    assert preview()["at"] is None  # nothing pending
    write_log(env.log, 20, 7, header=False, mode="a")
    p = preview()  # (the job's own names: the default preset)
    assert p["at"] == "2024-03-01T00:00:20Z"
    _run(env, "common", h)
    runs = env.client.get("/api/runs?job=common", headers=h).json()["runs"]
    objs = env.client.get(f"/api/runs/{runs[0]['id']}", headers=h).json()["objects"]
    assert [o["name"] for o in objs] == p["names"][:1]
    # a new job (not saved yet): nothing pending of its own, named at the time of the run
    assert env.client.get("/api/preview/names", headers=h, params={"job": "newjob"}).json()["at"] is None
