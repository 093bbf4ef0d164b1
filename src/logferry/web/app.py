"""The console's web app (FastAPI): pages and the JSON API under ``/api/``.

Every route needs a token (the cookie set by ``POST /login``, or ``Authorization:
Bearer``).  State-changing requests made with the cookie carry the session's CSRF token
in ``X-CSRF-Token``; read-only tokens may not make them (403); a token scoped to sites
sees only the jobs whose ``sites`` are within its own, and their runs and report rows.
What a token other than an admin's may put in a job is :mod:`.policy`'s.
"""

from __future__ import annotations

import csv
import hmac
import io
import json
import secrets
from importlib import resources
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel

from .. import __version__
from ..alerts.web import incident_marks
from ..alerts.web import routes as alert_routes
from ..errors import ConfigError, LogferryError, first_line
from ..ship.schedule import MAX_EVERY_MINUTES, MIN_EVERY_MINUTES
from . import configfile, desttypes, editor, policy
from .console import MAX_PAGE, MAX_PER_PAGE, Busy, Console, Forbidden, NotFound, job_sites
from .tokens import Token, TokenStore, csrf_for

COOKIE = "logferry_session"
#: the login form's one-time value, also in a SameSite cookie: another site's form lacks it
LOGIN_COOKIE = "logferry_login"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
#: the dashboard is one self-contained page (its script and style inline)
CSP_DASHBOARD = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
                 "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")


class Session:
    def __init__(self, token: Token, raw: str, cookie: bool):
        self.token, self.raw, self.cookie = token, raw, cookie

    @property
    def csrf(self) -> str:
        return csrf_for(self.raw)


class JobSave(BaseModel):
    name: str | None = None
    version: str | None = None
    job: dict[str, Any]
    destination: dict[str, Any] | None = None
    stop: bool = False  # stop the job first when its destination changes


class RerunBody(BaseModel):  # (checked by the console, after the job: 404 before 422)
    since: str = ""
    until: str = ""


class DuplicateBody(BaseModel):
    name: str = ""


class DestBody(BaseModel):
    job: str | None = None  # the saved job being edited: the probe may use its credentials
    destination: dict[str, Any] | None = None
    dest: str | None = None
    dest_options: dict[str, Any] | None = None


def _templates() -> Environment:
    path = resources.files("logferry.web") / "templates"
    env = Environment(loader=FileSystemLoader(str(path)), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    return env


def create_app(console: Console, tokens: TokenStore, *, secure_cookie: bool = False) -> FastAPI:
    app = FastAPI(title="logferry console", version=__version__,
                  description="Export jobs, their history, stop/start and the usage reports of logferry.",
                  docs_url=None, redoc_url=None, openapi_url=None)
    env = _templates()
    static = resources.files("logferry.web") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    app.state.console = console

    # -- access ------------------------------------------------------------------------------
    def session(request: Request) -> Session:
        raw = None
        cookie = False
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            raw = auth[7:].strip()
        elif COOKIE in request.cookies:
            raw, cookie = request.cookies[COOKIE], True
        tok = tokens.check(raw)
        if tok is None:
            raise HTTPException(401, "a valid token is needed: open the login URL that "
                                     "`logferry serve` printed, or send Authorization: Bearer TOKEN")
        s = Session(tok, raw, cookie)
        if request.method in UNSAFE:
            if cookie and request.headers.get("x-csrf-token", "") != s.csrf:
                raise HTTPException(403, "missing or wrong CSRF token (X-CSRF-Token)")
            origin = request.headers.get("origin")
            if cookie and origin and origin.split("://", 1)[-1] != request.headers.get("host", ""):
                raise HTTPException(403, "cross-origin request refused")
        return s

    def writer(s: Session = Depends(session)) -> Session:
        if s.token.read_only:
            raise HTTPException(403, "this token is read-only")
        return s

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        if _wants_html(request) and exc.status_code in (401, 403, 404, 422):
            return HTMLResponse(env.get_template("message.html").render(
                title={401: "Log in", 403: "Not allowed", 404: "Not found", 422: "Invalid request"}[exc.status_code],
                message=str(exc.detail), nav=exc.status_code != 401, csrf=""),
                status_code=exc.status_code, headers=exc.headers)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound):
        return await http_error(request, HTTPException(404, str(exc)))

    @app.exception_handler(Busy)
    async def busy(request: Request, exc: Busy):
        return JSONResponse({"detail": str(exc), "code": exc.code}, status_code=409)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden):
        return JSONResponse({"detail": str(exc)}, status_code=403)

    @app.exception_handler(configfile.Invalid)
    async def invalid(request: Request, exc: configfile.Invalid):
        return JSONResponse({"detail": "invalid job", "errors": exc.errors}, status_code=422)

    @app.exception_handler(configfile.Conflict)
    async def conflict(request: Request, exc: configfile.Conflict):
        return JSONResponse({"detail": str(exc), "code": "conflict"}, status_code=409)

    @app.exception_handler(ConfigError)
    async def config_error(request: Request, exc: ConfigError):
        # e.g. logferry.toml edited by hand into an invalid file: say so where it is read
        if _wants_html(request):
            return HTMLResponse(env.get_template("message.html").render(
                title="Configuration error", message=str(exc), nav=True, csrf=""), status_code=400)
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.middleware("http")
    async def headers(request: Request, call_next):
        resp = await call_next(request)
        resp.headers.setdefault("Content-Security-Policy",
                                CSP_DASHBOARD if request.url.path == "/dashboard" else CSP)
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    def page(name: str, s: Session, code: int = 200, **ctx) -> HTMLResponse:
        html = env.get_template(name).render(csrf=s.csrf, token=s.token.public(), nav=True,
                                             version=__version__, usage_kind=_usage_kind(), **ctx)
        return HTMLResponse(html, status_code=code)

    def _usage_kind() -> str | None:
        return None if console.usage is None else console.usage.kind

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi(s: Session = Depends(session)):
        """The OpenAPI description (behind the token like every route; FastAPI's own docs
        pages are off: they load their scripts from a CDN, and the console needs no network)."""
        return app.openapi()

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def api_docs(s: Session = Depends(session)):
        """The API description as a page: Swagger UI served from the package (no network)."""
        return page("apidocs.html", s, title="API")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return Response(status_code=204)

    # -- login -------------------------------------------------------------------------------
    @app.get("/login", include_in_schema=False)
    def login_page(request: Request, token: str = "", next: str = "/"):
        """The login form (the URL ``serve`` prints fills it in): a GET never logs in, so
        another site cannot log a visitor in as someone else (login CSRF)."""
        tid = token.split("_")[1] if token.startswith("lf_") and token.count("_") >= 2 else ""
        cur = tokens.check(request.cookies.get(COOKIE))
        nonce = secrets.token_urlsafe(18)
        html = env.get_template("login.html").render(
            title="Log in", nav=False, csrf="", token_id=tid, raw=token if tid else "", nonce=nonce,
            current=cur.id if cur is not None and cur.id != tid else "", next=_local(next))
        resp = HTMLResponse(html)
        resp.set_cookie(LOGIN_COOKIE, nonce, max_age=900, httponly=True, samesite="strict",
                        secure=secure_cookie, path="/login")
        return resp

    @app.post("/login", include_in_schema=False)
    def login(request: Request, token: str = Form(""), next: str = Form("/"), nonce: str = Form("")):
        """Log in: the token by POST from this console's own login page (its one-time value
        in the form and in a SameSite cookie; a form another site posts has no cookie)."""
        site = request.headers.get("sec-fetch-site", "same-origin")
        origin = request.headers.get("origin") or "null"
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if site not in ("same-origin", "none") or origin not in ("null", f"{request.url.scheme}://"
                                                                 f"{request.headers.get('host', '')}") \
                or not expected or not hmac.compare_digest(expected, nonce):
            raise HTTPException(403, "login refused: open the login URL and press Log in on this console's page")
        if tokens.check(token) is None:
            raise HTTPException(401, "this token is not valid (revoked or mistyped)")
        resp = RedirectResponse(_local(next), status_code=303)
        resp.delete_cookie(LOGIN_COOKIE, path="/login")
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure_cookie, path="/")
        return resp

    @app.post("/logout", include_in_schema=False)
    def logout(s: Session = Depends(session)):
        resp = JSONResponse({"ok": True})
        resp.delete_cookie(COOKIE, path="/")
        return resp

    # -- pages ---------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def exports_page(s: Session = Depends(session)):
        return page("exports.html", s, jobs=console.jobs(s.token, backlog=True), title="Exports")

    @app.get("/jobs/new", response_class=HTMLResponse, include_in_schema=False)
    def new_page(s: Session = Depends(session)):
        return page("editor.html", s, title="New export", editor=_editor_data(None, s))

    @app.get("/jobs/{name}", response_class=HTMLResponse, include_in_schema=False)
    def edit_page(name: str, s: Session = Depends(session)):
        d = console.job_detail(s.token, name)
        return page("editor.html", s, title=f"Export {name}", editor=_editor_data(d, s))

    @app.get("/history", response_class=HTMLResponse, include_in_schema=False)
    def history_page(s: Session = Depends(session), job: str = "", status: str = "",
                     page_: int = Query(1, alias="page", ge=1, le=MAX_PAGE)):
        h = console.history(s.token, job or None, status or None, page_)
        qs = "&".join(f"{k}={quote(v)}" for k, v in (("job", job), ("status", status)) if v)
        return page("history.html", s, title="History", h=h, job=job, status=status, qs=qs,
                    jobs=list(console.visible(s.token)))

    @app.get("/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
    def run_page(run_id: int, s: Session = Depends(session)):
        d = console.run_detail(s.token, run_id)
        return page("run.html", s, title=f"Run {run_id}", d=d)

    @app.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
    def dashboard_page(request: Request, s: Session = Depends(session)):
        dash = _dashboard_module()
        if dash is None:
            return page("message.html", s, title="Dashboard",
                        message="The dashboard is not available in this version of logferry "
                                "(logferry.usage.dashboard is not installed).")
        if console.usage is None:
            return page("message.html", s, title="Dashboard",
                        message="No usage database: start the console with `logferry serve --db PATH` "
                                "(a database made by `logferry ingest` or `logferry demo`) or "
                                "`logferry serve --lake LAKE` (a lake made by `logferry ingest --lake`).")
        data = _report_data(dash, request, s)
        store = data.pop("store")
        lake = store is not None and store.get("kind") == "lake"
        html = dash.render_dashboard(data, api="/api/report", live=console.follower is not None or lake,
                                     status="/api/status", lake=lake,
                                     snapshot=store.get("snapshot_id") if lake else None,
                                     nav=env.get_template("nav.html").render(nav=True, token=s.token.public(),
                                                                            store=store))
        return HTMLResponse(html)

    @app.get("/overview", response_class=HTMLResponse, include_in_schema=False)
    def overview_page(request: Request, s: Session = Depends(session)):
        try:  # (the lake and its snapshot in the nav, as on the dashboard: described first)
            store = _reading(console.usage, console.usage.describe) if _usage_kind() == "lake" else None
            data = _overview_data(request, s)
        except HTTPException as e:
            return page("message.html", s, code=e.status_code, title="Overview", message=e.detail)
        return page("overview.html", s, title="Overview of every site", d=data, store=store,
                    since=request.query_params.get("since", ""), until=request.query_params.get("until", ""))

    # -- API: jobs -------------------------------------------------------------------------------
    @app.get("/api/jobs", tags=["jobs"])
    def api_jobs(backlog: bool = False, s: Session = Depends(session)) -> list[dict[str, Any]]:
        """Every job this token sees: destination, format, schedule, state, last run, last
        delivery and next run; ``?backlog=true``: also how far behind each job is (pending
        files and bytes, the oldest undelivered line)."""
        return console.jobs(s.token, backlog)

    @app.get("/api/jobs/{name}", tags=["jobs"])
    def api_job(name: str, s: Session = Depends(session)) -> dict[str, Any]:
        """One job: its row, its TOML table (``config``), the editor's destination fields and
        its ``version`` (send it back when saving)."""
        return console.job_detail(s.token, name)

    def _check_scope(s: Session, job: dict[str, Any]) -> None:
        if s.token.scoped and not s.token.sees(job.get("sites")):
            raise Forbidden("this token is scoped to sites "
                            f"{', '.join(s.token.sites)}: a job needs sites within them")

    @app.post("/api/jobs", tags=["jobs"], status_code=201)
    def api_create(body: JobSave, s: Session = Depends(writer)) -> dict[str, Any]:
        """Create a job (validated by the CLI's config model; 422 with per-field errors;
        409 when the name exists -- ``name_unavailable`` when a job this token cannot see
        has it; 403 for what only an admin token may name)."""
        job = editor.job_from_form(body.model_dump())
        return _create(s, (body.name or "").strip(), job)

    def _create(s: Session, name: str, job: dict[str, Any], like: dict[str, Any] | None = None,
                stopped: bool = False) -> dict[str, Any]:
        """A new job (``like``: the job it copies, whose sources and credentials it may keep)."""
        _check_scope(s, job)
        configfile.validate_job(console.config_path, name, job)
        if name in configfile.raw_jobs(console.config_path):
            if name in console.visible(s.token):
                raise configfile.Conflict(f"a job named {name!r} exists already")
            raise Busy(f"the name {name!r} cannot be used; choose another", "name_unavailable")
        policy.check_job(s.token, console.loaded(), job, like)
        console.create_job(name, job, stopped)
        return console.job_detail(s.token, name)

    @app.put("/api/jobs/{name}", tags=["jobs"])
    def api_save(name: str, body: JobSave, s: Session = Depends(writer)) -> dict[str, Any]:
        """Save a job: ``version`` must be the one the form was loaded with (409 otherwise);
        changing the destination of an active job needs ``stop: true`` (409 ``stop_first``)."""
        old = console.job(s.token, name)
        job = editor.job_from_form(body.model_dump())
        _check_scope(s, job)
        configfile.validate_job(console.config_path, name, job)
        policy.check_job(s.token, console.loaded(), job, configfile.raw_jobs(console.config_path).get(name))
        if body.version != configfile.job_version(console.config_path, name):
            raise configfile.Conflict(f"job {name!r} was changed since this form was loaded; reload it")
        dest_changed = (job.get("dest"), job.get("dest_options") or {}) != (old.dest, dict(old.dest_options))
        if dest_changed:
            with console.state() as st:
                active = not st.is_stopped(name) or console.running(st, name)
            if active and not body.stop:
                raise Busy(f"job {name} is active: stop it before changing its destination", "stop_first")
            if active:
                with console.state() as st:
                    if console.running(st, name):
                        raise Busy(f"job {name} is running; wait for the run to end", "running")
                    st.set_stopped(name, True)
        configfile.save_job(console.config_path, name, job, body.version, new=False)
        return console.job_detail(s.token, name)

    @app.delete("/api/jobs/{name}", tags=["jobs"])
    def api_delete(name: str, version: str = "", s: Session = Depends(writer)) -> dict[str, Any]:
        """Remove a job from the config file; ``?version=`` as for a save.  Its history stays
        (under its retired identity: a new job of that name starts afresh)."""
        j = console.job(s.token, name)
        _check_scope(s, {"sites": list(job_sites(j))})
        console.delete_job(s.token, name, version)
        return {"deleted": name}

    @app.post("/api/jobs/{name}/stop", tags=["jobs"])
    def api_stop(name: str, s: Session = Depends(writer)) -> dict[str, Any]:
        """Stop a job (as `logferry export stop`): it exports nothing until started."""
        return console.set_stopped(s.token, name, True)

    @app.post("/api/jobs/{name}/start", tags=["jobs"])
    def api_start(name: str, run: bool = False, s: Session = Depends(writer)) -> dict[str, Any]:
        """Start a job (as `logferry export start`): its next run backfills the stopped period;
        ``?run=true`` (the console's Start) runs that catch-up at once (``run_started``)."""
        return console.set_stopped(s.token, name, False, run)

    @app.post("/api/jobs/{name}/run", tags=["jobs"], status_code=202)
    def api_run(name: str, s: Session = Depends(writer)) -> dict[str, Any]:
        """Run a job now, in the background, through the job lock (409 when it is running or stopped)."""
        return console.run_now(s.token, name)

    @app.post("/api/jobs/{name}/rerun", tags=["jobs"], status_code=202)
    def api_rerun(name: str, body: RerunBody, s: Session = Depends(writer)) -> dict[str, Any]:
        """Re-export a past range (as `logferry export rerun`): ``{since, until}`` (ISO 8601);
        new objects named ``...-rerun-RUN``; the job's checkpoint is left alone (422 for a bad
        range, 409 while a run of the job is in flight)."""
        return console.rerun(s.token, name, body.since, body.until)

    @app.post("/api/jobs/{name}/duplicate", tags=["jobs"], status_code=201)
    def api_duplicate(name: str, body: DuplicateBody, s: Session = Depends(writer)) -> dict[str, Any]:
        """Copy a job under ``{name}``, created stopped: its sources and destination are the
        original's, change what differs, then Start it (422 for an invalid name, 409 if it
        exists -- as a create)."""
        console.job(s.token, name)
        raw = configfile.raw_jobs(console.config_path)[name]
        return _create(s, body.name.strip(), raw, like=raw, stopped=True)

    # -- API: editor helpers --------------------------------------------------------------------
    @app.get("/api/editor", tags=["editor"])
    def api_editor(s: Session = Depends(session)) -> dict[str, Any]:
        """What the editor offers: destination types and fields, formats, presets, intervals."""
        return _editor_meta()

    @app.get("/api/fields", tags=["editor"])
    def api_fields(to: str = "jsonl", s: Session = Depends(session)) -> list[str]:
        """The fields a job can pick, in order."""
        return editor.field_names(to)

    @app.get("/api/preview/names", tags=["editor"])
    def api_names(job: str = "", template: str = "", preset: str = "", to: str = "jsonl",
                  compress: str = "gzip", service: str = "", site: str = "",
                  s: Session = Depends(session)) -> dict[str, Any]:
        """The next three object names of a template or preset, for a saved job at the time
        of its first pending record (``at``; null: now); 422 with ``errors`` when it is invalid
        (an unknown field, a width or precision above 256 ...)."""
        seq, at = 0, None
        if job and job in console.visible(s.token):
            with console.state() as st:
                seq = st.next_seq(job)
                at = editor.next_record_time(console.loaded(), st, job)
        try:
            return {"names": editor.preview_names(job, template, preset, to, compress, service, site, seq, at=at),
                    "errors": {}, "at": at.isoformat().replace("+00:00", "Z") if at else None}
        except (ConfigError, ValueError) as e:  # the form shows the error by the field being typed
            return JSONResponse({"names": [], "errors": {"name.template" if template else "name.preset": str(e)},
                                 "at": None}, status_code=422)

    @app.get("/api/preview/schedule", tags=["editor"])
    def api_schedule(every_minutes: float | None = Query(None, ge=MIN_EVERY_MINUTES, le=MAX_EVERY_MINUTES,
                                                         allow_inf_nan=False), cron: str = "",
                     s: Session = Depends(session)) -> dict[str, Any]:
        """The next three run times of an interval or a cron expression (UTC; ``errors`` when invalid)."""
        try:
            return {"next": editor.preview_schedule(every_minutes, cron or None), "errors": {}}
        except ConfigError as e:
            return {"next": [], "errors": {"cron" if cron else "every_minutes": str(e)}}

    def _composed(d: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The editor's destination fields -> (URL, options with the kept extra options)."""
        url, opts, errs = desttypes.compose(d)
        if errs:
            raise configfile.Invalid(errs)
        extra = d.get("extra_options")
        opts = {**(extra if isinstance(extra, dict) else {}), **opts}
        _check_options("destination", opts)
        return url, opts

    def _check_options(field: str, opts: dict[str, Any]) -> None:
        from ..destinations import check_options

        try:
            check_options(opts)
        except ConfigError as e:
            raise configfile.Invalid({field: str(e)}) from None

    def _dest_of(body: DestBody) -> tuple[str, dict[str, Any]]:
        if body.destination is not None:
            return _composed(body.destination)
        if not body.dest:
            raise configfile.Invalid({"dest": "required"})
        from ..config import _SECRET_KEYS
        from ..destinations import check_url

        opts = dict(body.dest_options or {})
        bad = [k for k in opts if k in _SECRET_KEYS]
        if bad:
            raise configfile.Invalid({"dest_options": f"{bad[0]!r}: give secrets as {bad[0]}_env or {bad[0]}_secret"})
        try:
            check_url(body.dest)
        except ConfigError as e:
            raise configfile.Invalid({"dest": str(e)}) from None
        _check_options("dest_options", opts)
        return body.dest, opts

    @app.post("/api/test-connection", tags=["editor"])
    def api_test(body: DestBody, s: Session = Depends(writer)) -> dict[str, Any]:
        """Write and remove a probe object at a destination (Datadog: check the API key): ``ok``
        or the exact error."""
        url, opts = _dest_of(body)
        _check_probe(s, body.job, url, opts)
        return editor.test_connection(console.loaded(), url, opts, reveal=policy.is_admin(s.token))

    def _check_probe(s: Session, job: str | None, url: str, opts: dict[str, Any], *,
                     any_bucket: bool = False) -> None:
        """403 unless the token may talk to this place with these credentials (:mod:`.policy`;
        ``any_bucket``: the S3 bucket list, whose endpoint and credentials are the saved job's)."""
        saved = None
        if job:
            console.job(s.token, job)  # 404 for a job it does not see
            saved = configfile.raw_jobs(console.config_path).get(job)
            if any_bucket and str((saved or {}).get("dest", "")).startswith("s3://"):
                url = saved["dest"]
        policy.check_destination(s.token, console.loaded(), url, opts, saved)

    @app.post("/api/s3/buckets", tags=["editor"])
    def api_buckets(body: DestBody, s: Session = Depends(writer)) -> dict[str, Any]:
        """The S3 buckets the given credentials (names of env vars / secrets) can see."""
        d = dict(body.destination or {})
        d.update(type="s3", bucket=d.get("bucket") or "placeholder")
        _, opts = _composed(d)
        _check_probe(s, body.job, "s3://", opts, any_bucket=True)
        try:
            return {"buckets": editor.s3_buckets(console.loaded(), opts, reveal=policy.is_admin(s.token))}
        except ConfigError as e:
            return JSONResponse({"detail": str(e), "buckets": []}, status_code=502)

    # -- API: history ------------------------------------------------------------------------------
    @app.get("/api/runs", tags=["history"])
    def api_runs(job: str = "", status: str = "", page: int = Query(1, ge=1, le=MAX_PAGE),
                 per_page: int = Query(50, ge=1, le=MAX_PER_PAGE), s: Session = Depends(session)) -> dict[str, Any]:
        """Runs, newest first, filtered by job and status, one page at a time."""
        return console.history(s.token, job or None, status or None, page, per_page)

    @app.get("/api/runs/export", tags=["history"])
    def api_runs_export(format: str = "csv", job: str = "", status: str = "",
                        s: Session = Depends(session)):
        """All the runs of the filter as a CSV or JSON download."""
        runs = console.all_runs(s.token, job or None, status or None)
        if format == "json":
            return Response(json.dumps(runs, indent=1), media_type="application/json",
                            headers={"Content-Disposition": 'attachment; filename="logferry-runs.json"'})
        if format != "csv":
            raise configfile.Invalid({"format": "csv or json"})
        buf = io.StringIO()
        cols = ["id", "job", "started", "ended", "status", "backfill", "objects", "records", "bytes",
                "bad", "attempts", "error", "label", "note"]
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for r in runs:
            w.writerow([_csv_cell(r.get(c)) for c in cols])
        return PlainTextResponse(buf.getvalue(), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": 'attachment; filename="logferry-runs.csv"'})

    @app.get("/api/runs/{run_id}", tags=["history"])
    def api_run_detail(run_id: int, s: Session = Depends(session)) -> dict[str, Any]:
        """One run and every object it delivered: name, size, records, SHA-256, time."""
        return console.run_detail(s.token, run_id)

    # -- API: reports (contract 5) -------------------------------------------------------------------
    def _allowed(s: Session):
        return list(s.token.sites) if s.token.scoped else None

    def _filters(dash, request: Request):
        """The dashboard's filters of the query (422 naming the value that is not one)."""
        try:
            return dash.filters_from_query(request.query_params)
        except ConfigError as e:
            raise HTTPException(422, str(e)) from None

    def _report_data(dash, request: Request, s: Session) -> dict[str, Any]:
        """The dashboard's data for the query's filters and the token's sites, from the
        console's usage source (the database or the lake's last snapshot), with the incident
        marks and ``store``: what it was read from (described first: the data is of that
        snapshot or a later one)."""
        src = console.usage
        if src is None:
            raise HTTPException(404, "no usage database (start `logferry serve --db PATH` or `--lake LAKE`)")
        filters = _filters(dash, request)
        store, data = _reading(src, lambda: (src.describe(), src.dashboard(filters, allowed_sites=_allowed(s))))
        return {**data, "incidents": incident_marks(console, _allowed(s)), "store": store}

    def _reading(src, read):
        """``read()`` of the usage source: an error of the file or the lake (a data file
        gone, object storage not answering) is a 503 saying so in one line."""
        try:
            return read()
        except ConfigError:
            raise
        except Exception as e:  # noqa: BLE001 - the file or the lake, not a bug: one line
            what = "usage lake" if src.kind == "lake" else "usage database"
            raise HTTPException(503, f"cannot read the {what}: {first_line(e)}") from None

    @app.get("/api/report", tags=["reports"])
    def api_report(request: Request, s: Session = Depends(session)) -> dict[str, Any]:
        """The dashboard's data (``?since=&until=&site=&status=&format=&bots=``), scoped by the
        token's sites; ``store``: the database or lake (and its snapshot) it was read from."""
        dash = _dashboard_module()
        if dash is None:
            raise HTTPException(503, "the dashboard is not available in this version of logferry")
        return _report_data(dash, request, s)

    @app.get("/api/overview", tags=["reports"])
    def api_overview(request: Request, s: Session = Depends(session)) -> dict[str, Any]:
        """Every site of the lake in ``?since=&until=`` from its hourly rollups (what
        ``report --lake --rollups --json`` gives): requests, status classes and bytes
        exact; visitors and latency percentiles approximate within ``bounds``. A token sees
        its sites only. 409 when the console reads a database, not a lake."""
        return _overview_data(request, s)

    def _overview_data(request: Request, s: Session) -> dict[str, Any]:
        dash = _dashboard_module()
        if console.usage is None or dash is None:
            raise HTTPException(404, "no usage lake (start `logferry serve --lake LAKE`)")
        if console.usage.kind != "lake":
            raise HTTPException(409, "the overview reads a lake's hourly rollups: start the console with "
                                "`logferry serve --lake LAKE` (on a database the dashboard is exact)")
        filters = _filters(dash, request)
        return _reading(console.usage, lambda: console.usage.overview(filters, allowed_sites=_allowed(s)))

    @app.get("/api/status", tags=["console"])
    def api_status(s: Session = Depends(session)) -> dict[str, Any]:
        """Version, who you are (token id, sites, read-only), the follower's status and the
        store the reports read (``kind`` duckdb or lake, its location; the lake's snapshot).
        A token scoped to sites sees whether the follower runs and when it last stored
        lines, not its paths, errors and counts: those are every site's."""
        follower = console.follower_status()
        if follower is not None and s.token.scoped:
            follower = {k: follower[k] for k in ("running", "commits", "last_line_at")}
        return {"version": __version__, "token": s.token.public(), "follower": follower,
                "store": console.store_status()}

    def _editor_data(detail: dict | None, s: Session) -> dict[str, Any]:
        return {"meta": _editor_meta(), "job": detail, "read_only": s.token.read_only,
                "token_sites": list(s.token.sites)}

    app.include_router(alert_routes(console, session, writer, page))
    return app


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    t = str(v)
    if t[:1] in ("=", "+", "-", "@", "\t", "\r"):
        t = "'" + t  # a spreadsheet never evaluates a log-derived cell
    return t


def _local(path: str) -> str:
    """A redirect target on this console only."""
    return path if path.startswith("/") and not path.startswith("//") and "\\" not in path else "/"


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def _dashboard_module():
    try:
        from ..usage import dashboard
    except ImportError:
        return None
    return dashboard


def _editor_meta() -> dict[str, Any]:
    from ..formats import registry
    from ..ship import naming
    from ..writers import WRITERS

    return {
        "destinations": desttypes.describe(),
        "writers": sorted(WRITERS),
        "readers": sorted(registry()),
        "compressions": ["gzip", "zstd", "none"],
        "presets": naming.PRESETS,
        "intervals": [5, 10, 15, 30, 60],
        "status_classes": ["2xx", "3xx", "4xx", "5xx"],
        "fields": editor.field_names("jsonl"),
    }


__all__ = ["create_app", "Console", "LogferryError"]
