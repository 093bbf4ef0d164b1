from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests explore the same examples on every run (CI must not pass or fail by
# luck); LOGFERRY_FUZZ_RANDOM=1 explores new ones -- what found the bugs now pinned as
# @example cases.
settings.register_profile("logferry", derandomize=os.environ.get("LOGFERRY_FUZZ_RANDOM", "") != "1")
settings.load_profile("logferry")

ROOT = Path(__file__).resolve().parent.parent
CORPUS = (ROOT / ".." / "shared" / "corpus").resolve()


def corpus(rel: str) -> Path:
    p = CORPUS / rel
    if not p.exists():
        pytest.skip(f"corpus file {rel} not available at {CORPUS}")
    return p


@pytest.fixture
def corpus_path():
    return corpus


def rows(path, **kw):
    """Read ``path`` with logferry.read: (stream, list of row dicts)."""
    import logferry

    s = logferry.read(path, **kw)
    out = [r for b in s for r in b.to_pylist()]
    return s, out


def check_invariant(s):
    """Nothing lost: every data line is a record or a bad row."""
    st = s.stats
    assert st.records + st.bad == st.lines - st.directives - st.blank
