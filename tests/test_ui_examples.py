"""Every example the console and the docs show parses with the real parsers: the editor's
placeholders and help texts (marked ``data-example`` in the templates), the ``--where``
examples in the CLI's help, the README, docs/ and the config file's documented example."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest

from logferry.transforms import compile_where

ROOT = Path(__file__).resolve().parents[1]


def _parse_cron(text: str) -> None:
    from logferry.ship.schedule import Cron

    Cron.parse(text)


def _parse_name(text: str) -> None:
    from logferry.ship import naming

    naming.validate(naming.resolve(text, None), job="job")


PARSERS = {"where": compile_where, "cron": _parse_cron, "name": _parse_name}
#: what an example-free placeholder (prose) may not contain: the characters of an expression
EXPRESSION = re.compile(r"[=<>^~{}%*]")


class _Examples(HTMLParser):
    def __init__(self):
        super().__init__()
        self.examples: list[tuple[str, str]] = []  # (kind, text)
        self.prose: list[str] = []  # placeholders that are not examples
        self._open: list[tuple[str, str, list[str]]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        kind = a.get("data-example")
        if kind and "placeholder" in a:
            self.examples.append((kind, a["placeholder"]))
        elif kind:
            self._open.append((tag, kind, []))
        elif "placeholder" in a:
            self.prose.append(a["placeholder"])

    def handle_data(self, data):
        for _, _, buf in self._open:
            buf.append(data)

    def handle_endtag(self, tag):
        if self._open and self._open[-1][0] == tag:
            _, kind, buf = self._open.pop()
            self.examples.append((kind, "".join(buf)))


def template_examples() -> _Examples:
    p = _Examples()
    for t in (resources.files("logferry.web") / "templates").iterdir():
        if t.name.endswith(".html"):
            p.feed(t.read_text("utf-8"))
    return p


def test_the_editor_shows_where_examples():
    ex = template_examples()
    kinds = [k for k, _ in ex.examples]
    assert kinds.count("where") >= 3 and "cron" in kinds and "name" in kinds
    assert ("where", "status>=500 and path^=/api") in ex.examples  # the Where placeholder


@pytest.mark.parametrize("kind,text", template_examples().examples)
def test_template_example_parses(kind, text):
    PARSERS[kind](text)


def test_placeholders_without_a_parser_are_prose():
    ex = template_examples()
    js = "".join(p.read_text("utf-8") for p in (resources.files("logferry.web") / "static").iterdir()
                 if p.name.endswith(".js"))
    prose = ex.prose + re.findall(r'placeholder: "([^"]*)"', js)
    assert prose and not [p for p in prose if EXPRESSION.search(p)]


def cli_where_examples() -> list[str]:
    from logferry.cli import app as main

    out = []

    def walk(cmd):
        for p in getattr(cmd, "params", []):
            if p.name == "where":
                out.extend(re.findall(r"'([^']+)'", p.help or ""))
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(main)
    return out


def doc_where_examples() -> list[str]:
    out = []
    for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = p.read_text("utf-8")
        out += re.findall(r"--where '([^']+)'", text) + re.findall(r'--where "([^"]+)"', text)
        out += re.findall(r'^\s*where = "([^"]+)"', text, re.M)
        # the README's list of examples: "`--where` filters on canonical columns (`a`, `b`, ...)"
        for m in re.finditer(r"`--where` filters on canonical columns \(([^)]*(?:\([^)]*\))?[^)]*)\)", text):
            out += [x for x in re.findall(r"`([^`]+)`", m.group(1)) if x != "and"]
    import logferry.config
    import logferry.transforms

    out += re.findall(r'^\s*where = "([^"]+)"', logferry.config.__doc__, re.M)
    block = logferry.transforms.__doc__.split("Examples::", 1)[1].split("\n\n")[1]
    out += [ln.strip() for ln in block.splitlines() if ln.strip()]
    return out


def test_cli_and_docs_have_where_examples():
    assert len(cli_where_examples()) >= 2
    docs = doc_where_examples()
    assert "path^=/api" in docs and len(docs) >= 8


@pytest.mark.parametrize("text", cli_where_examples() + doc_where_examples())
def test_where_example_parses(text):
    compile_where(text)
