"""Issue 22, items 1-5, through the console's app (FastAPI's TestClient drives the real
routes): no secret leaves for a host a saved job does not name, name-template widths are
bounded, a job's past belongs to its identity, a site scope is the log's site, logins are
POSTed, Test connection creates nothing, and scoped tokens read only the admin's roots."""

from __future__ import annotations

import os
import socket
import threading

import pytest
from click.testing import CliRunner
from tests.test_web_api import _job, _run, bearer, env, post_login  # noqa: F401 - env is a fixture

from logferry.cli import app as cli_app
from logferry.ship import cli as ship_cli
from logferry.ship.state import State

SECRET = "AKIA-TOPSECRET-4242"


class Listener:
    """A TCP listener on 127.0.0.1 that keeps every byte sent to it (an attacker's host)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.got = bytearray()
        self.connections = 0
        self.done = threading.Event()
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()

    def _serve(self):
        while not self.done.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            c.settimeout(0.5)
            try:
                c.sendall(b"220 hello\r\n")  # enough for an FTP client to say USER/PASS
                while True:
                    b = c.recv(65536)
                    if not b:
                        break
                    self.got += b
                    if b.startswith(b"USER"):
                        c.sendall(b"331 password please\r\n")
            except OSError:
                pass
            finally:
                c.close()

    def close(self):
        self.done.set()
        self.t.join(5)
        self.sock.close()


@pytest.fixture
def listener():
    ls = Listener()
    yield ls
    ls.close()


def _secrets_env(env, monkeypatch):
    monkeypatch.setenv("TOPSECRET", SECRET)
    (env.tmp / "secrets.env").write_text(f"b_secret={SECRET}\nftp_pw={SECRET}\n")
    text = env.cfg.read_text().replace('state_dir = "state"\n', 'state_dir = "state"\nsecrets_file = "secrets.env"\n')
    env.cfg.write_text(text)


# -- item 1: secrets -----------------------------------------------------------------------------
def test_probes_send_no_secret_to_a_host_no_saved_job_names(env, monkeypatch, listener):
    _secrets_env(env, monkeypatch)
    ro, a = bearer(env.toks["ro"]), bearer(env.toks["a"])
    evil = f"http://127.0.0.1:{listener.port}"
    s3 = {"endpoint_url": evil, "access_key_id": {"env": "TOPSECRET"}, "secret_access_key": {"secret": "b_secret"}}
    # the bucket list talks to a server: a read-only token may not ask for it at all
    r = env.client.post("/api/s3/buckets", headers=ro, json={"destination": s3})
    assert r.status_code == 403
    # a scoped writer: no saved job of its own names that endpoint with those credentials
    for job in ("", "alpha"):
        r = env.client.post("/api/s3/buckets", headers=a, json={"job": job, "destination": s3})
        assert r.status_code == 403, r.text
    # (nor a job it does not see)
    assert env.client.post("/api/s3/buckets", headers=a, json={"job": "beta", "destination": s3}).status_code == 404
    for dest in ({"type": "datadog", "site": f"127.0.0.1:{listener.port}", "api_key": {"env": "TOPSECRET"}},
                 {"type": "ftps", "host": "127.0.0.1", "port": str(listener.port), "user": "u",
                  "password": {"secret": "ftp_pw"}}):
        for h in (a, ro):
            r = env.client.post("/api/test-connection", headers=h, json={"destination": dest})
            assert r.status_code == 403, r.text
    r = env.client.post("/api/test-connection", headers=a,
                        json={"job": "alpha", "dest": f"datadog://127.0.0.1:{listener.port}?tls=false",
                              "dest_options": {"api_key_secret": "b_secret"}})
    assert r.status_code == 403
    assert SECRET.encode() not in listener.got and listener.connections == 0


def test_a_scoped_token_uses_only_its_jobs_credentials_where_they_go(env, monkeypatch, listener):
    _secrets_env(env, monkeypatch)
    a, admin = bearer(env.toks["a"]), bearer(env.toks["admin"])
    # the admin gives siteA a job on an FTP server with a password from the secrets file
    ftp = {"type": "ftps", "host": "127.0.0.1", "port": "1", "user": "u", "directory": "/in",
           "password": {"secret": "ftp_pw"}}
    r = env.client.post("/api/jobs", headers=admin, json={"name": "ftpa", "job": _job(env, sites=["siteA"]),
                                                           "destination": ftp})
    assert r.status_code == 201, r.text
    d = env.client.get("/api/jobs/ftpa", headers=a).json()
    # another secret, even at the same place: no
    other = {**ftp, "password": {"env": "TOPSECRET"}}
    r = env.client.put("/api/jobs/ftpa", headers=a, json={"version": d["version"], "job": d["config"],
                                                          "destination": other})
    assert r.status_code == 403 and "credentials" in r.json()["detail"]
    # its own secret, at another host: no (a save, and a probe)
    moved = {**ftp, "port": str(listener.port)}
    r = env.client.put("/api/jobs/ftpa", headers=a, json={"version": d["version"], "job": d["config"],
                                                          "destination": moved, "stop": True})
    assert r.status_code == 403
    r = env.client.post("/api/test-connection", headers=a, json={"job": "ftpa", "destination": moved})
    assert r.status_code == 403
    # a new job of its own: no credentials at all, and no server the admin did not name
    r = env.client.post("/api/jobs", headers=a, json={"name": "mine", "job": _job(env, sites=["siteA"]),
                                                       "destination": moved})
    assert r.status_code == 403
    r = env.client.post("/api/jobs", headers=a, json={"name": "mine", "job": _job(
        env, sites=["siteA"], privacy={"ip": "hash", "key_env": "TOPSECRET"}),
        "destination": {"type": "folder", "path": str(env.out / "mine")}})
    assert r.status_code == 403
    assert SECRET.encode() not in listener.got and listener.connections == 0
    # what it was given still works: the same place, the same secret (path and schedule may change)
    r = env.client.put("/api/jobs/ftpa", headers=a, json={
        "version": d["version"], "job": {**d["config"], "every_minutes": 30},
        "destination": {**ftp, "directory": "/in/other"}, "stop": True})
    assert r.status_code == 200, r.text
    r = env.client.post("/api/test-connection", headers=a, json={"job": "ftpa", "destination": ftp})
    assert r.status_code == 200 and r.json()["ok"] is False  # nothing listens on port 1
    assert SECRET not in r.text


def test_an_unset_variable_is_not_named_to_a_scoped_token(env):
    admin, a = bearer(env.toks["admin"]), bearer(env.toks["a"])
    ftp = {"type": "ftps", "host": "127.0.0.1", "port": "1", "user": "u", "password": {"env": "LF_NOT_SET_XYZ"}}
    r = env.client.post("/api/jobs", headers=admin, json={"name": "ftpa", "job": _job(env, sites=["siteA"]),
                                                           "destination": ftp})
    assert r.status_code == 201, r.text
    j = env.client.post("/api/test-connection", headers=a, json={"job": "ftpa", "destination": ftp}).json()
    assert j["ok"] is False and j["step"] == "configure"
    assert "LF_NOT_SET_XYZ" not in j["error"] and "is not set" not in j["error"]
    assert "not available" in j["error"]
    # the admin is told which one
    j = env.client.post("/api/test-connection", headers=admin, json={"job": "ftpa", "destination": ftp}).json()
    assert "LF_NOT_SET_XYZ is not set" in j["error"]


# -- item 2: name-template widths ------------------------------------------------------------------
@pytest.mark.parametrize("tmpl", ["{seq:>300000000}", "{seq:99999999999d}", "{uuid:>99999}x{seq}",
                                  "{job:.1000}{seq}", "{seq:0" + "9" * 5000 + "}"])
def test_name_template_widths_are_bounded(env, tmpl, tmp_path):
    h = bearer(env.toks["ro"])
    r = env.client.get("/api/preview/names", params={"template": tmpl}, headers=h)
    assert r.status_code == 422 and "width or precision" in r.json()["errors"]["name.template"]
    r = env.client.post("/api/jobs", headers=bearer(env.toks["admin"]), json={
        "name": "wide", "job": _job(env, name={"template": tmpl}, dest="file:///tmp/wide")})
    assert r.status_code == 422 and "width or precision" in r.json()["errors"]["name"]
    out = tmp_path / "cli-out"
    c = CliRunner().invoke(cli_app, ["ship", str(env.log), "--dest", f"file://{out}", "--name", tmpl,
                                     "--state", str(tmp_path / "st")])
    assert c.exit_code == 2 and c.output.startswith("logferry: error:") and "width or precision" in c.output
    assert "Traceback" not in c.output and not out.exists()


def test_name_template_width_within_bound_still_works(env):
    r = env.client.get("/api/preview/names", params={"template": "{seq:0256d}"}, headers=bearer(env.toks["ro"]))
    assert r.status_code == 200 and len(r.json()["names"][0]) == 256


# -- item 3: a job's past belongs to its identity ------------------------------------------------------
def test_a_new_job_with_a_deleted_jobs_name_starts_afresh(env, monkeypatch):
    admin = bearer(env.toks["admin"])
    b = bearer(env.store.create(["siteB"])[1])
    old_out = env.out / "old"
    r = env.client.post("/api/jobs", headers=admin, json={
        "name": "old", "job": _job(env, name={"template": "old-{seq:03d}{ext}"}, rotate={"max_records": 5}),
        "destination": {"type": "folder", "path": str(old_out)}})
    assert r.status_code == 201, r.text
    _run(env, "old", admin)
    old_runs = env.client.get("/api/runs?job=old", headers=admin).json()["runs"]
    assert len(old_runs) == 1 and old_runs[0]["objects"] == 4
    objects = sorted(p.name for p in old_out.iterdir())
    d = env.client.get("/api/jobs/old", headers=admin).json()
    assert env.client.delete(f"/api/jobs/old?version={d['version']}", headers=admin).status_code == 200
    # another tenant takes the name, with the old folder and a retention of a day
    r = env.client.post("/api/jobs", headers=b, json={
        "name": "old", "job": _job(env, sites=["siteB"], name={"template": "old-{seq:03d}{ext}"},
                                   retention={"dest_days": 1}),
        "destination": {"type": "folder", "path": str(old_out)}})
    assert r.status_code == 201, r.text
    assert r.json()["last_run"] is None
    h = env.client.get("/api/runs?job=old", headers=b).json()
    assert h["total"] == 0 and env.client.get("/api/runs", headers=b).json()["total"] == 0
    assert env.client.get(f"/api/runs/{old_runs[0]['id']}", headers=b).status_code == 404
    st = State(env.console.state_dir)
    try:
        assert st.files("old") == [] and st.next_seq("old") == 0 and st.delivered_names("old") == set()
    finally:
        st.close()
    # prune does not touch the old job's objects, old as they are
    now = 1_900_000_000.0
    for p in old_out.iterdir():
        os.utime(p, (now - 90 * 86400, now - 90 * 86400))
    monkeypatch.setattr(ship_cli, "clock", lambda: now)
    r = CliRunner().invoke(cli_app, ["prune", "--config", str(env.cfg)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in old_out.iterdir()) == objects
    # the old history stays readable to the admin, under the retired identity
    runs = env.client.get("/api/runs", headers=admin).json()["runs"]
    old = [x for x in runs if x["id"] == old_runs[0]["id"]]
    assert old and old[0]["job"].startswith("old#") and old[0]["objects"] == 4
    d = env.client.get(f"/api/runs/{old_runs[0]['id']}", headers=admin).json()
    assert sorted(o["name"] for o in d["objects"]) == objects


def test_a_job_deleted_by_hand_leaves_nothing_to_its_namesake(env):
    admin, a = bearer(env.toks["admin"]), bearer(env.toks["a"])
    _run(env, "common", admin)
    text = env.cfg.read_text()
    env.cfg.write_text(text[: text.index("[jobs.common]")])  # removed from the file by hand
    r = env.client.post("/api/jobs", headers=a, json={
        "name": "common", "job": _job(env, sites=["siteA"]),
        "destination": {"type": "folder", "path": str(env.out / "c2")}})
    assert r.status_code == 201, r.text
    assert r.json()["last_run"] is None and env.client.get("/api/runs?job=common", headers=a).json()["total"] == 0


def test_another_tenants_job_name_is_not_revealed(env):
    a = bearer(env.toks["a"])
    body = {"name": "beta", "job": _job(env, sites=["siteA"]),
            "destination": {"type": "folder", "path": str(env.out / "x")}}
    assert env.client.get("/api/jobs/beta", headers=a).status_code == 404  # as if free
    before = env.cfg.read_text()
    r = env.client.post("/api/jobs", headers=a, json=body)
    assert r.status_code == 409 and r.json()["code"] == "name_unavailable"
    assert "exist" not in r.text and "siteB" not in r.text and env.cfg.read_text() == before
    # its own name: it sees that job anyway
    r = env.client.post("/api/jobs", headers=a, json={**body, "name": "alpha"})
    assert r.status_code == 409 and "exists already" in r.json()["detail"]


def test_existing_history_is_kept_on_upgrade(env):
    """A state written before identities (runs under the job's name) stays the job's."""
    st = State(env.console.state_dir)
    rid = st.begin_run("alpha", 1_700_000_000.0)
    st.end_run(rid, 1_700_000_001.0, "ok")
    st.close()
    r = env.client.get("/api/runs?job=alpha", headers=bearer(env.toks["a"])).json()
    assert [x["id"] for x in r["runs"]] == [rid]


# -- item 4: a site scope is the log's site -------------------------------------------------------------
def _host_db(tmp_path):
    from logferry.usage.cli import run_ingest

    log = tmp_path / "usage" / "u_ex240301.log"
    log.parent.mkdir()
    rows = ["#Software: Microsoft Internet Information Services 10.0", "#Version: 1.0",
            "#Fields: date time s-sitename cs-method cs-uri-stem sc-status cs-host cs(User-Agent) time-taken"]
    for i in range(20):
        # siteB's requests, every one with a forged Host header naming siteA
        rows.append(f"2024-03-01 00:{i:02d}:00 siteB GET /siteB/secret{i} 200 siteA Agent-of-B 12")
        rows.append(f"2024-03-01 00:{i:02d}:30 siteA GET /siteA/page{i} 200 siteA Agent-of-A 12")
    log.write_text("\n".join(rows) + "\n")
    plain = tmp_path / "usage" / "access.log"  # a log without a site column, Host only
    plain.write_text("".join(f'10.0.0.1 - - [01/Mar/2024:01:00:{i:02d} +0000] "GET /nosite/{i} HTTP/1.1" 200 5 '
                             f'"-" "Agent-no-site"\n' for i in range(5)))
    db = tmp_path / "usage.duckdb"
    run_ingest([str(log), str(plain)], str(db))
    return db, log


def test_site_scope_is_the_logs_site_never_the_host_header(env):
    env.console.db, log = _host_db(env.tmp)
    a, admin = bearer(env.toks["a"]), bearer(env.toks["admin"])
    full = env.client.get("/api/report", headers=admin)
    assert full.status_code == 200 and "/siteB/secret3" in full.text and "/nosite/1" in full.text
    for q in ("", "?site=siteA"):
        scoped = env.client.get("/api/report" + q, headers=a)
        assert scoped.status_code == 200, scoped.text
        assert "/siteB/" not in scoped.text and "Agent-of-B" not in scoped.text
        assert "/nosite/" not in scoped.text  # a log without a site is no site's
        assert "/siteA/page3" in scoped.text
    page = env.client.get("/dashboard", headers=a).text
    assert "/siteB/" not in page and "Agent-of-B" not in page
    # the ship filter: the log's site too
    r = env.client.post("/api/jobs", headers=admin, json={
        "name": "hostf", "job": _job(env, source=[str(log)], filter={"sites": ["siteA"]}, compress="none",
                                     rotate={"max_records": 1000}),
        "destination": {"type": "folder", "path": str(env.out / "hostf")}})
    assert r.status_code == 201, r.text
    _run(env, "hostf", admin)
    blob = b"".join(p.read_bytes() for p in (env.out / "hostf").iterdir())
    assert b"/siteA/page3" in blob and b"/siteB/" not in blob


# -- item 5: login, Test connection on a folder, sources ----------------------------------------------
def _session_cookie(r) -> bool:
    return any(k == "set-cookie" and "logferry_session=" in v for k, v in r.headers.multi_items())


def test_login_is_a_post_from_the_console_itself(env):
    raw = env.toks["admin"]
    r = env.client.get(f"/login?token={raw}", follow_redirects=False)
    assert r.status_code == 200 and not _session_cookie(r) and 'method="post"' in r.text
    assert env.client.get("/api/jobs").status_code == 401  # the GET logged nobody in
    # another site's form: no one-time value (its cookie is SameSite), or its origin, or both
    env.client.cookies.clear()
    r = env.client.post("/login", data={"token": raw}, follow_redirects=False)
    assert r.status_code == 403 and not _session_cookie(r)
    for bad in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        r = post_login(env.client, raw, headers=bad)
        assert r.status_code == 403 and not _session_cookie(r)
    assert env.client.get("/api/jobs").status_code == 401
    r = post_login(env.client, raw, headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
                   next="//evil.example/x")
    assert r.status_code == 303 and r.headers["location"] == "/" and _session_cookie(r)
    assert env.client.get("/api/jobs").status_code == 200


def test_test_connection_on_a_folder_creates_nothing(env, monkeypatch, tmp_path):
    admin, a = bearer(env.toks["admin"]), bearer(env.toks["a"])
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for path in ("rel/dir", str(tmp_path / "new" / "deep")):
        j = env.client.post("/api/test-connection", headers=admin,
                            json={"destination": {"type": "folder", "path": path}}).json()
        assert j["ok"] is False and j["step"] == "find the folder"
    assert list(cwd.iterdir()) == [] and not (tmp_path / "new").exists()
    # a scoped token: only under the admin's dest_roots (or its job's saved folder)
    (tmp_path / "elsewhere").mkdir()
    r = env.client.post("/api/test-connection", headers=a,
                        json={"destination": {"type": "folder", "path": str(tmp_path / "elsewhere")}})
    assert r.status_code == 403 and list((tmp_path / "elsewhere").iterdir()) == []
    env.out.mkdir(exist_ok=True)
    j = env.client.post("/api/test-connection", headers=a,
                        json={"destination": {"type": "folder", "path": str(env.out)}}).json()
    assert j["ok"] is True and list(env.out.iterdir()) == []


@pytest.mark.parametrize("src", ["/etc/shadow", "{state}/console-token", "{state}/*", "{logs}/../../etc/passwd",
                                 "http://127.0.0.1:9/x.log", "sftp://attacker.example/x.log", "s3://other/x.gz",
                                 "file:///etc/passwd", "relative/*.log"])
def test_scoped_token_sources_stay_under_the_admins_roots(env, src):
    a = bearer(env.toks["a"])
    src = src.format(state=env.console.state_dir, logs=env.log.parent)
    body = {"name": "mine", "job": _job(env, sites=["siteA"], source=[src]),
            "destination": {"type": "folder", "path": str(env.out / "mine")}}
    r = env.client.post("/api/jobs", headers=a, json=body)
    assert r.status_code == 403 and "source_roots" in r.json()["detail"], r.text
    d = env.client.get("/api/jobs/alpha", headers=a).json()
    r = env.client.put("/api/jobs/alpha", headers=a, json={"version": d["version"], "job": {**d["config"], "source": [src]}})
    assert r.status_code == 403


def test_scoped_token_sources_under_the_roots(env):
    a = bearer(env.toks["a"])
    env.cfg.write_text(env.cfg.read_text().replace(
        f'source_roots = ["{env.log.parent}"]', f'source_roots = ["{env.log.parent}", "s3://logs/siteA"]'))
    for i, src in enumerate([str(env.log), f"{env.log.parent}/*.log", "s3://logs/siteA/2024/*.gz"]):
        r = env.client.post("/api/jobs", headers=a, json={
            "name": f"ok{i}", "job": _job(env, sites=["siteA"], source=[src]),
            "destination": {"type": "folder", "path": str(env.out / f"ok{i}")}})
        assert r.status_code == 201, (src, r.text)
    for src in ("s3://logs/siteA-other/x.gz", "s3://logs/siteA/../siteB/x.gz", "s3://logs/siteA/%2e%2e/siteB/x.gz"):
        r = env.client.post("/api/jobs", headers=a, json={
            "name": "no", "job": _job(env, sites=["siteA"], source=[src]),
            "destination": {"type": "folder", "path": str(env.out / "no")}})
        assert r.status_code == 403, src
    # the admin names any source
    r = env.client.post("/api/jobs", headers=bearer(env.toks["admin"]), json={
        "name": "adm", "job": _job(env, source=["/var/log/x/*.log"]),
        "destination": {"type": "folder", "path": str(env.out / "adm")}})
    assert r.status_code == 201


def test_a_scoped_token_probes_its_own_s3_job(env, monkeypatch):
    """The positive side, against moto: a scoped token lists the buckets and tests the
    destination of the S3 job the admin gave it, and cannot move it to another bucket."""
    from tests.servers.servers import S3Server

    srv = S3Server()
    try:
        srv.make_bucket("sec-bkt-a")  # (moto's buckets are shared by every moto server of the process)
        srv.make_bucket("sec-bkt-b")
        monkeypatch.setenv("LF_AK", "test")
        monkeypatch.setenv("LF_SK", "test")
        admin, a = bearer(env.toks["admin"]), bearer(env.toks["a"])
        dest = {"type": "s3", "bucket": "sec-bkt-a", "prefix": "x", "region": "us-east-1", "endpoint_url": srv.endpoint,
                "access_key_id": {"env": "LF_AK"}, "secret_access_key": {"env": "LF_SK"}}
        r = env.client.post("/api/jobs", headers=admin, json={"name": "s3a", "job": _job(env, sites=["siteA"]),
                                                               "destination": dest})
        assert r.status_code == 201, r.text
        r = env.client.post("/api/s3/buckets", headers=a, json={"job": "s3a", "destination": dest})
        assert r.status_code == 200 and {"sec-bkt-a", "sec-bkt-b"} <= set(r.json()["buckets"]), r.text
        j = env.client.post("/api/test-connection", headers=a, json={"job": "s3a", "destination": dest}).json()
        assert j["ok"] is True, j
        d = env.client.get("/api/jobs/s3a", headers=a).json()
        for other in ({**dest, "bucket": "sec-bkt-b"}, {**dest, "endpoint_url": srv.endpoint + "/"}):
            r = env.client.put("/api/jobs/s3a", headers=a, json={"version": d["version"], "job": d["config"],
                                                                 "destination": other, "stop": True})
            assert r.status_code == 403, r.text
            r = env.client.post("/api/test-connection", headers=a, json={"job": "s3a", "destination": other})
            assert r.status_code == 403
    finally:
        srv.stop()


# -- passwords in URLs: never stored, shown or echoed ----------------------------------------------
PW = "URLPW-4242-secret"


@pytest.mark.parametrize("job", [
    {"source": [f"sftp://bob:{PW}@127.0.0.1/logs/*.log"]},
    {"dest": "s3://bkt/p", "dest_options": {"endpoint_url": f"http://AKID:{PW}@127.0.0.1:1"}},
    {"dest": f"nope://bob:{PW}@127.0.0.1/p"},
    {"dest": f"datadog://datadoghq.eu?service=web&api_key={PW}"},
    {"dest": "s3://bkt/p", "dest_options": {"endpoint_url": f"http://127.0.0.1:1/?X-Amz-Signature={PW}"}},
])
def test_a_password_in_a_jobs_url_is_refused_and_never_echoed(env, job):
    """A password (or a secret-like query key: ``?api_key=``) in a source URL or an option's
    URL would be stored in logferry.toml and shown to every token that reads the job (a
    read-only one too); an unknown scheme's error echoed the whole URL."""
    h = bearer(env.toks["admin"])
    before = env.cfg.read_bytes()
    r = env.client.post("/api/jobs", headers=h, json={"name": "pw", "job": _job(env, dest=f"file://{env.out}/pw")
                                                       | job})
    assert r.status_code == 422, r.text
    assert PW not in r.text and ("***" in r.text or "query" in r.text)
    assert env.cfg.read_bytes() == before
    if "source" not in job:
        t = env.client.post("/api/test-connection", headers=h, json={"dest": job["dest"],
                                                                     "dest_options": job.get("dest_options")})
        assert t.status_code == 422 and PW not in t.text
        c = CliRunner().invoke(cli_app, ["ship", str(env.log), "--dest", job["dest"], "--state", str(env.tmp / "st"),
                                         *(["--endpoint-url", job["dest_options"]["endpoint_url"]]
                                           if "dest_options" in job else [])])
        assert c.exit_code == 2 and c.output.startswith("logferry: error: ") and c.output.count("\n") == 1
        assert PW not in c.output, c.output


def test_a_password_in_a_url_of_the_config_file_is_a_one_line_error(env):
    """logferry.toml edited by hand: the same refusal when it is loaded (never the password)."""
    env.cfg.write_text(env.cfg.read_text().replace(f'dest = "file://{env.out}/beta"',
                                                   f'dest = "s3://b/p"\ndest_options = {{ endpoint_url = '
                                                   f'"http://k:{PW}@127.0.0.1:1" }}'))
    r = CliRunner().invoke(cli_app, ["export", "list", "--config", str(env.cfg)])
    assert r.exit_code == 2 and r.output.startswith("logferry: error: ") and PW not in r.output, r.output
