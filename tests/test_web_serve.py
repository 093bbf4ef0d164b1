"""`logferry serve` as a process: its scheduler runs the jobs on their schedule (and picks
up a job saved through the console without a restart), Run now and the scheduler never run
a job twice at once, and SIGTERM finishes the object in flight and exits cleanly."""

from __future__ import annotations

import json

import httpx
from tests.servers.servers import Serve, until
from tests.test_dest_conformance import write_log


def start(tmp_path, cfg):
    srv = Serve(tmp_path, "--config", str(cfg))
    tok = (tmp_path / "state" / "console-token").read_text().strip()
    return srv, httpx.Client(base_url=srv.base, headers={"Authorization": f"Bearer {tok}"}, timeout=30)


def runs(c, job):
    return c.get(f"/api/runs?job={job}").json()["runs"]


def test_scheduler_reload_and_sigterm_finishes_the_object_in_flight(tmp_path):
    log = tmp_path / "a.log"
    write_log(log, 0, 40)
    big = tmp_path / "big.log"
    write_log(big, 0, 300_000)  # (150 objects: still running when its first is delivered, however fast)
    cfg = tmp_path / "logferry.toml"
    cfg.write_text(f'state_dir = "state"\n[jobs.tick]\nsource = ["{log}"]\ndest = "file://{tmp_path}/tick"\n'
                   f'every_minutes = 0.05\n'
                   f'[jobs.big]\nsource = ["{big}"]\ndest = "file://{tmp_path}/big"\ncompress = "none"\n'
                   f'rotate = {{ max_records = 2000 }}\n')
    srv, c = start(tmp_path, cfg)
    try:
        # the scheduler runs `tick` on its schedule (every 3 s) while the console serves
        until(lambda: len(runs(c, "tick")) >= 2)
        assert runs(c, "tick")[-1]["records"] == 40
        # a job saved through the console is scheduled without a restart
        r = c.post("/api/jobs", json={"name": "late", "job": {"source": [str(log)], "every_minutes": 0.05},
                                      "destination": {"type": "folder", "path": str(tmp_path / "late")}})
        assert r.status_code == 201, r.text
        until(lambda: runs(c, "late"))
        # Run now of the big job; a second Run now while it runs is refused
        assert c.post("/api/jobs/big/run").status_code == 202
        until(lambda: (rs := runs(c, "big")) and rs[0]["objects"] >= 1)
        second = c.post("/api/jobs/big/run")
        assert second.status_code == 409 and second.json()["code"] == "running"
        row = next(j for j in c.get("/api/jobs").json() if j["name"] == "big")
        assert row["state"] == "running" and row["running"]["pid"] == srv.proc.pid
        rc, out = srv.stop(timeout=120)
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
    assert rc == 0, out
    assert "stopped cleanly" in out and "Traceback" not in out
    from logferry.ship.state import State

    st = State(tmp_path / "state")
    r = st.runs("big")[0]
    objs = st.objects(run_id=r.id)
    st.close()
    assert r.status == "stopped" and 0 < r.objects < 150 and r.records < 300_000
    # every object the run recorded is complete at the destination, and nothing more is there
    root = tmp_path / "big"
    files = sorted(f for f in root.rglob("*") if f.is_file())
    assert [str(f.relative_to(root)) for f in files] == sorted(o.name for o in objs)
    got = [json.loads(x)["path"] for f in files for x in f.read_bytes().splitlines()]
    assert len(got) == r.records == sum(o.records for o in objs)
    assert got == [f"/p/{i}" for i in range(r.records)]  # in order, none missing, none twice
