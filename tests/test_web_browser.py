"""End to end in real headless Chromium against `logferry serve` (a real process on
127.0.0.1) and the moto S3 server: log in with the printed token URL, create an S3 export
through the form, Test connection (a wrong bucket shows the error, the right one passes),
Run now, the run in History with its objects (and the objects in the bucket), Stop, more
log lines, Start, the backfill run delivers exactly the new lines.  Screenshots of each
page land in the test's tmp dir; the page makes no request off 127.0.0.1 and logs no
console error."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import time

import pytest
from tests.servers import servers as S
from tests.servers.servers import Serve, browser_login

HEADER = ("#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n"
          "#Fields: date time s-sitename cs-method cs-uri-stem sc-status cs(User-Agent)\n")


def write_log(path, start, n, header=True, mode="w"):
    """IIS lines of two sites: the even ones shop.example's, the odd ones other.example's."""
    from datetime import datetime, timedelta

    t0 = datetime(2024, 3, 1)
    with open(path, mode) as f:
        if header:
            f.write(HEADER)
        for i in range(start, start + n):
            site = "shop.example" if i % 2 == 0 else "other.example"
            f.write(f"{t0 + timedelta(seconds=i):%Y-%m-%d %H:%M:%S} {site} GET /p/{i} "
                    f"{500 if i % 11 == 0 else 200} Mozilla/5.0+(X11)\n")


def shop_paths(a, b):
    return [f"/p/{i}" for i in range(a, b) if i % 2 == 0]

KEY_ID, SECRET = "AKIACONSOLETESTKEY", "s3cr3t-console-value"  # moto takes any
# a bucket of this test's own: moto's buckets are shared by every moto server of the test
# process, and other tests write to theirs
BUCKET = "console-export"


@pytest.fixture(scope="module")
def s3():
    srv = S.S3Server()
    srv.make_bucket(BUCKET)
    srv.make_bucket("other")
    yield srv
    srv.stop()


@pytest.fixture
def serve(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(TEST_S3_KEY_ID=KEY_ID, TEST_S3_SECRET=SECRET)
    cfg = tmp_path / "logferry.toml"
    from tests.test_web_api import _usage_db

    db = _usage_db(tmp_path)  # two sites, a hostile user agent
    srv = Serve(tmp_path, "--config", str(cfg), "--db", str(db), env=env)
    yield type("Serve", (), {"url": srv.login, "base": srv.base, "proc": srv.proc, "cfg": cfg})
    srv.stop()


def s3_client(s3):
    import boto3

    return boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def lines_of(s3, key):
    body = s3_client(s3).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return [json.loads(x)["path"] for x in gzip.decompress(body).splitlines()]


def wait_text(page, selector, pattern, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        t = page.locator(selector).inner_text()
        if re.search(pattern, t):
            return t
        page.wait_for_timeout(200)
    raise AssertionError(f"{selector}: {t!r} never matched {pattern!r} (flash: "
                         f"{page.locator('#flash').inner_text()!r}, console: {page.watch.errors})")


def nav(page, link):
    """Follow a navigation link and wait until the page's scripts ran (their handlers are
    attached when the load event fires)."""
    with page.expect_navigation():
        page.click(link)
    page.wait_for_load_state("load")


def test_console_end_to_end(page, serve, s3, tmp_path):
    log = tmp_path / "logs" / "shop.log"
    log.parent.mkdir()
    write_log(log, 0, 80)  # 40 lines of the job's site, 40 of another

    dialogs = []  # an injected alert() would open one
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # -- log in with the token URL (a form: a GET logs nobody in), the cookie, then the URL
    # without the token ----------------------------------------------------------------------
    page.goto(serve.url)
    assert not [c for c in page.context.cookies() if c["name"] == "logferry_session"]
    browser_login(page, serve.url)
    assert page.url == serve.base + "/"
    assert "token=" not in page.url
    cookie = next(c for c in page.context.cookies() if c["name"] == "logferry_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "No export jobs yet" in page.inner_text("main")
    assert page.locator("#exports").count() == 0  # (no table of nothing)
    page.shot("01-exports-empty")

    # -- the editor: an S3 export -----------------------------------------------------------------
    nav(page, "#nav-new")
    page.fill("#name", "shop")
    page.fill("#sites", "shop.example")
    page.fill("#source", str(log))
    page.select_option("#dest-type", "s3")
    page.fill("#d-bucket", "wrong-bucket")
    page.fill("#d-prefix", "exports/shop")
    page.fill("#d-region", "us-east-1")
    page.fill("#d-endpoint_url", s3.endpoint)
    page.fill("#d-access_key_id", "TEST_S3_KEY_ID")
    page.fill("#d-secret_access_key", "TEST_S3_SECRET")
    page.click("#list-buckets")
    # (moto's buckets are shared by every moto server of this test process: others may be there)
    listed = wait_text(page, "#test-result", r"\d+ buckets: ")
    assert {BUCKET, "other"} <= set(listed.split(": ", 1)[1].split(", "))
    assert {BUCKET, "other"} <= set(page.eval_on_selector_all("#bucket-list option", "os => os.map(o => o.value)"))
    page.click("#test-connection")
    err = wait_text(page, "#test-result", r"Failed to")
    assert "write a probe object" in err and "wrong-bucket" in err
    assert "error" in page.get_attribute("#test-result", "class")
    page.shot("02-editor-test-failed")
    page.fill("#d-bucket", BUCKET)
    page.click("#test-connection")
    wait_text(page, "#test-result", r"Connection OK: wrote and removed \.logferry-probe-")
    assert s3_client(s3).list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0  # the probe is gone
    page.select_option("#to", "jsonl")
    page.select_option("#compress", "gzip")
    for f in ("timestamp", "client_ip", "path", "status"):
        page.check(f"input[name=field][value={f}]")
    page.check("input[name=status-class][value='2xx']")
    page.check("input[name=status-class][value='5xx']")
    page.fill("#max-records", "25")
    page.select_option("#preset", "cdn")
    page.fill("#service", "shopsvc")
    wait_text(page, "#name-preview", r"\.shopsvc\.00002\.log\.jsonl\.gz")
    assert len(page.locator("#name-preview li").all()) == 3
    page.select_option("#interval", "cron")
    page.fill("#cron", "*/15 * * * *")
    wait_text(page, "#schedule-preview", r"(:00|:15|:30|:45):00Z[\s\S]*:00Z[\s\S]*:00Z")
    assert len(page.locator("#schedule-preview li").all()) == 3
    # an invalid form: the errors at their fields, nothing written
    page.fill("#cron", "61 * * * *")
    page.fill("#where", "status >>> 3")
    page.click("#save")
    wait_text(page, '.row[data-key="cron"] .err', r"minute")
    assert page.inner_text('.row[data-key="where"] .err')
    assert not serve.cfg.exists()
    # the deliberately invalid save is the only console message so far (a 422 answer)
    assert all("status of 422" in e for e in page.watch.errors) and len(page.watch.errors) == 1
    page.watch.errors.clear()
    page.shot("03-editor-invalid")
    page.fill("#where", "")
    page.select_option("#interval", "")  # manual: runs only with Run now
    page.click("#save")
    page.wait_for_url(re.compile(r"/jobs/shop\?saved=1$"))
    page.shot("04-editor-saved")
    text = serve.cfg.read_text()
    assert 'bucket' not in text and f'dest = "s3://{BUCKET}/exports/shop/"' in text
    assert 'access_key_id_env = "TEST_S3_KEY_ID"' in text and KEY_ID not in text and SECRET not in text
    assert KEY_ID not in page.content() and SECRET not in page.content()

    # -- Run now ------------------------------------------------------------------------------------
    nav(page, "#nav-exports")
    row = page.locator('tr[data-job="shop"]')
    assert f"s3://{BUCKET}/exports/shop/" in row.inner_text()
    row.locator("[data-action=run]").click()
    wait_text(page, 'tr[data-job="shop"] [data-field="last"]', r"ok: 2 objects, 40 records")
    page.shot("05-exports-after-run")
    keys = sorted(o["Key"] for o in s3_client(s3).list_objects_v2(Bucket=BUCKET)["Contents"])
    assert len(keys) == 2 and all(k.startswith("exports/shop/") for k in keys)
    delivered = [p for k in keys for p in lines_of(s3, k)]
    assert sorted(delivered) == sorted(shop_paths(0, 80))  # only its tenant's records

    # -- History and the run's page -----------------------------------------------------------------
    nav(page, "#nav-history")
    first = page.locator("#runs tbody tr").first
    assert "shop" in first.inner_text() and "ok" in first.inner_text()
    page.shot("06-history")
    with page.expect_navigation():
        first.locator("a").first.click()
    objs = page.locator("#objects tbody tr")
    assert objs.count() == 2
    names = sorted(objs.nth(i).locator("td.name").inner_text() for i in range(2))
    assert names == [k.removeprefix("exports/shop/") for k in keys]
    import hashlib

    for i in range(2):
        cells = objs.nth(i).locator("td").all_inner_texts()
        body = s3_client(s3).get_object(Bucket=BUCKET, Key="exports/shop/" + cells[0])["Body"].read()
        assert cells[3] == hashlib.sha256(body).hexdigest() and int(cells[1]) == len(body)
    page.shot("07-run")

    # -- Stop, more lines, Start: the backfill delivers exactly the new lines ------------------------
    nav(page, "#nav-exports")
    page.locator('tr[data-job="shop"] [data-action=stop]').click()
    wait_text(page, 'tr[data-job="shop"] [data-field="state"]', r"^stopped$")
    assert page.locator('tr[data-job="shop"] [data-action=run]').is_disabled()
    page.shot("08-exports-stopped")
    write_log(log, 80, 26, header=False, mode="a")
    page.locator('tr[data-job="shop"] [data-action=start]').click()
    wait_text(page, 'tr[data-job="shop"] [data-field="state"]', r"^active$")
    page.locator('tr[data-job="shop"] [data-action=run]').click()
    wait_text(page, 'tr[data-job="shop"] [data-field="last"]', r"ok: 1 objects, 13 records")
    nav(page, "#nav-history")
    first = page.locator("#runs tbody tr").first
    assert "backfill" in first.inner_text()
    page.shot("09-history-backfill")
    with page.expect_navigation():
        first.locator("a").first.click()
    assert page.locator("#backfill").is_visible()
    name = page.locator("#objects td.name").inner_text()
    assert lines_of(s3, "exports/shop/" + name) == shop_paths(80, 106)
    page.shot("10-run-backfill")
    keys2 = sorted(o["Key"] for o in s3_client(s3).list_objects_v2(Bucket=BUCKET)["Contents"])
    assert len(keys2) == 3

    # -- the editor of the saved job, the dashboard, the API description ------------------------------
    page.goto(serve.base + "/jobs/shop")
    assert page.input_value("#d-bucket") == BUCKET and page.input_value("#d-access_key_id") == "TEST_S3_KEY_ID"
    assert page.is_checked("input[name=field][value=path]") and page.input_value("#preset") == "cdn"
    page.shot("11-editor-edit")
    # saving the loaded form unchanged writes the same file: the form keeps every setting
    before = serve.cfg.read_text()
    page.click("#save")
    page.wait_for_url(re.compile(r"/jobs/shop\?saved=1$"))
    assert serve.cfg.read_text() == before
    nav(page, "#nav-dashboard")
    page.wait_for_selector("#app :is(table, svg, canvas)")
    body = page.inner_text("body")
    assert "siteA" in body and "siteB" in body
    assert "<script>alert(1)" not in page.content()  # the hostile user agent never became markup
    page.shot("12-dashboard")
    # changing a filter re-fetches the data from the console's /api/report
    with page.expect_response(lambda r: "/api/report" in r.url) as resp:
        page.locator("select").first.select_option("siteA")
    assert resp.value.status == 200 and "site=siteA" in resp.value.url
    assert resp.value.json()["filters"]["sites"] == ["siteA"]
    page.goto(serve.base + "/api/openapi.json")
    assert "/api/jobs" in page.inner_text("body")
    page.watch.check()
    assert dialogs == []
    shots = sorted(p.name for p in (tmp_path / "screenshots").iterdir())
    assert len(shots) == 12, shots

    # -- SIGTERM: a clean exit --------------------------------------------------------------------------
    serve.proc.send_signal(signal.SIGTERM)
    out, _ = serve.proc.communicate(timeout=60)
    assert serve.proc.returncode == 0, out
    assert "stopped cleanly" in out and "Traceback" not in out
