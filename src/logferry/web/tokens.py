"""Console access tokens: only their SHA-256 hashes are stored (``console-tokens.json`` in
the state directory, mode 0600).  A token is ``lf_<id>_<secret>``; the id finds the entry,
the hash of the whole token proves it.  A token may be scoped to sites (contract 2: it sees
a job only when the job's ``sites`` is non-empty and within the token's sites) and may be
read-only (it changes nothing).

The first token is generated on the first ``logferry serve``; its value is kept in
``console-token`` (mode 0600) next to the hashes so the operator can find it again, and
printed once as a login URL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import ConfigError

STORE = "console-tokens.json"
FIRST = "console-token"
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Token:
    id: str
    hash: str
    sites: tuple[str, ...] = ()
    read_only: bool = False
    created: float = 0.0
    label: str = ""

    @property
    def scoped(self) -> bool:
        return bool(self.sites)

    def sees(self, job_sites) -> bool:
        """Contract 2: a scoped token sees a job only if the job's sites are non-empty and
        all within the token's sites; an unscoped token sees every job."""
        if not self.sites:
            return True
        js = tuple(job_sites or ())
        return bool(js) and set(js) <= set(self.sites)

    def public(self) -> dict:
        d = asdict(self)
        del d["hash"]
        d["sites"] = list(self.sites)
        return d


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def csrf_for(raw: str) -> str:
    """The CSRF token of a session: derived from the login token (unguessable without it,
    stable for the session, never the token itself)."""
    return hmac.new(raw.encode("utf-8"), b"logferry-csrf", hashlib.sha256).hexdigest()


@dataclass
class TokenStore:
    state_dir: Path
    _cache: tuple[float, dict[str, Token]] | None = field(default=None, repr=False)

    def __post_init__(self):
        self.state_dir = Path(self.state_dir)

    @property
    def path(self) -> Path:
        return self.state_dir / STORE

    @property
    def first_path(self) -> Path:
        return self.state_dir / FIRST

    # -- storage ----------------------------------------------------------------------
    def _read(self) -> dict[str, Token]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return {}
        if self._cache and self._cache[0] == st.st_mtime_ns:
            return self._cache[1]
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"{self.path}: cannot read the token store: {e}") from None
        toks = {d["id"]: Token(d["id"], d["hash"], tuple(d.get("sites") or ()), bool(d.get("read_only")),
                               float(d.get("created") or 0), str(d.get("label") or ""))
                for d in data.get("tokens", [])}
        self._cache = (st.st_mtime_ns, toks)
        return toks

    def _write(self, toks: dict[str, Token]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"tokens": [asdict(t) for t in toks.values()]}, indent=1)
        _write_private(self.path, body)
        self._cache = None

    # -- operations -------------------------------------------------------------------
    def list(self) -> list[Token]:
        return sorted(self._read().values(), key=lambda t: t.created)

    def create(self, sites=(), read_only: bool = False, label: str = "") -> tuple[Token, str]:
        for s in sites:
            if not s or any(c.isspace() or ord(c) < 32 for c in s):
                raise ConfigError(f"--site {s!r}: a site name without spaces or control characters")
        with _LOCK:
            toks = dict(self._read())
            tid = secrets.token_hex(4)
            while tid in toks:
                tid = secrets.token_hex(4)
            raw = f"lf_{tid}_{secrets.token_urlsafe(24)}"
            t = Token(tid, _hash(raw), tuple(dict.fromkeys(sites)), read_only, time.time(), label)
            toks[tid] = t
            self._write(toks)
        return t, raw

    def revoke(self, tid: str) -> Token:
        with _LOCK:
            toks = dict(self._read())
            if tid not in toks:
                raise ConfigError(f"no token {tid!r} (see `logferry token list`)")
            t = toks.pop(tid)
            self._write(toks)
            if self.first_path.exists():
                try:
                    if self.first_path.read_text("utf-8").strip().split("_")[1:2] == [tid]:
                        self.first_path.unlink()
                except OSError:
                    pass
        return t

    def check(self, raw: str | None) -> Token | None:
        if not raw or not raw.startswith("lf_") or raw.count("_") < 2:
            return None
        tid = raw.split("_", 2)[1]
        t = self._read().get(tid)
        if t is None or not hmac.compare_digest(t.hash, _hash(raw)):
            return None
        return t

    def first_token(self) -> tuple[str, bool]:
        """The login token of ``serve``: (value, newly generated).  Generated when the store
        has no token at all; kept in ``console-token`` (0600)."""
        with _LOCK:
            if self.first_path.exists():
                raw = self.first_path.read_text("utf-8").strip()
                if self.check(raw):
                    return raw, False
        if self.list() and not self.first_path.exists():
            return "", False  # tokens exist (made with `token create`); none is kept here
        _, raw = self.create(label="first")
        _write_private(self.first_path, raw + "\n")
        return raw, True


def _write_private(path: Path, text: str) -> None:
    from .configfile import write_atomic

    write_atomic(path, text, 0o600)
