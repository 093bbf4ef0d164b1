"""convert --output-dir never overwrites a file unless --overwrite, and never writes through
a symbolic link (issue 12 item 13)."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from conftest import corpus
from logferry.cli import app

CASES = [  # (input, --to): one file per input, and the shop's daily rotation
    ("matomo-log-analytics/iis.log", "w3c"),
    ("spec-examples/shop19990907.log", "shop"),
]


def run(*args):
    return CliRunner().invoke(app, list(args))


def contents(d):
    """Each file's lines, without the #Date header (the time it was written)."""
    return {n: [x for x in (d / n).read_bytes().splitlines() if not x.startswith(b"#Date:")]
            for n in os.listdir(d)}


def names_for(src, to, tmp_path):
    d = tmp_path / "probe"
    r = run("convert", src, "--to", to, "--output-dir", str(d))
    assert r.exit_code == 0, r.output
    return contents(d)


@pytest.mark.parametrize(("src", "to"), CASES)
def test_an_existing_file_is_not_overwritten_without_overwrite(tmp_path, src, to):
    src = str(corpus(src))
    want = names_for(src, to, tmp_path)
    d = tmp_path / "out"
    d.mkdir()
    for n in want:
        (d / n).write_bytes(b"precious\n")
    r = run("convert", src, "--to", to, "--output-dir", str(d))
    assert r.exit_code == 2 and "exists; not overwritten (give --overwrite" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert all((d / n).read_bytes() == b"precious\n" for n in want)
    r = run("convert", src, "--to", to, "--output-dir", str(d), "--overwrite")
    assert r.exit_code == 0, r.output
    assert contents(d) == want


@pytest.mark.parametrize(("src", "to"), CASES)
@pytest.mark.parametrize("overwrite", [False, True])
def test_a_symlink_of_the_same_name_is_never_followed(tmp_path, src, to, overwrite):
    src = str(corpus(src))
    want = names_for(src, to, tmp_path)
    d = tmp_path / "out"
    d.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not yours\n")
    for n in want:
        os.symlink(outside, d / n)
    r = run("convert", src, "--to", to, "--output-dir", str(d), *(["--overwrite"] if overwrite else []))
    assert outside.read_bytes() == b"not yours\n"
    if overwrite:  # the link itself is replaced by the output
        assert r.exit_code == 0, r.output
        assert not any((d / n).is_symlink() for n in want)
        assert contents(d) == want
    else:
        assert r.exit_code == 2 and "exists; not overwritten" in r.output
        assert all((d / n).is_symlink() for n in want)
