"""logferry's command line keeps glibc to two malloc arenas (for itself and, through the
environment, for Dask's worker processes): with one arena per allocating thread, a
100-file lake ingest crept from ~420 to ~600 MB of RSS (bench_lake.py)."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = "import os, logferry.cli; print(os.environ['MALLOC_ARENA_MAX'])"


def _run(env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_the_command_line_sets_two_arenas_and_keeps_a_users_choice():
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _run(env) == "2"
    assert _run({**env, "MALLOC_ARENA_MAX": "6"}) == "6"
