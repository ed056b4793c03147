"""The docs keep up with the code: every setting and every command is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smsqueue.cli import app
from smsqueue.settings import Settings, markdown

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_in_docs_settings_md(name: str) -> None:
    """docs/settings.md has a row for each SMSQUEUE_ variable."""
    assert f"`SMSQUEUE_{name.upper()}`" in (ROOT / "docs" / "settings.md").read_text()


def test_docs_settings_md_is_what_the_generator_writes() -> None:
    """docs/settings.md is what `smsqueue settings --markdown` writes (regenerate it)."""
    assert (ROOT / "docs" / "settings.md").read_text() == markdown()


@pytest.mark.parametrize("command", sorted(c.name or "" for c in app.registered_commands))
def test_every_cli_command_is_in_the_readme(command: str) -> None:
    """The README's command table names each `smsqueue` command."""
    assert f"`smsqueue {command}" in (ROOT / "README.md").read_text()


def test_readme_quick_start_has_the_two_commands_ci_runs() -> None:
    """The Quick start names ./dev demo and ./dev test, and .ci/run runs the latter."""
    readme = (ROOT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("##", 1)[0]
    assert "./dev demo" in quick and "./dev test" in quick
    assert "./dev test" in (ROOT / ".ci" / "run").read_text()


# --- links: everything a doc points at is in the repository -----------------------------

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`+[^`\n]*`+")
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
PARENT_PATH = re.compile(r"(?:\.\./)+[^\s)\]`'\"<>]*")
# Material from outside the repository that a doc must neither link nor name.
OUTSIDE = ("shared/DESIGN", "seeds/")


def prose(text: str) -> str:
    """The text without fenced code blocks, which hold shell and diagrams, not links."""
    return FENCE.sub("", text)


def links(text: str) -> list[str]:
    """Every inline link and image target outside code (code spans inside link text are fine)."""
    return LINK.findall(CODE_SPAN.sub("x", prose(text)))


def is_local(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) and not target.startswith("//")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    heads = re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", prose(path.read_text()), re.MULTILINE)
    return {slug(h) for h in heads}


def inside(path: Path) -> bool:
    return path.resolve().is_relative_to(ROOT)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_doc_points_outside_the_repository(doc: Path) -> None:
    """No link or path in README.md or docs/*.md leaves the repository or names outside material."""
    text = doc.read_text()
    bad = [name for name in OUTSIDE if name in text]
    bad += [p for p in PARENT_PATH.findall(text) if not inside(doc.parent / p.split("#", 1)[0])]
    bad += [
        t
        for t in links(text)
        if is_local(t) and t.split("#", 1)[0] and not inside(doc.parent / t.split("#", 1)[0])
    ]
    assert bad == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_a_file_that_exists(doc: Path) -> None:
    """Each relative link (and its #anchor, in a Markdown file) resolves in the repository."""
    broken = []
    for target in links(doc.read_text()):
        if not is_local(target):
            continue
        path_part, _, anchor = target.partition("#")
        path = (doc.parent / path_part) if path_part else doc
        found = path.exists() and inside(path)
        if not found or (anchor and path.suffix == ".md" and anchor not in anchors(path)):
            broken.append(target)
    assert broken == []


def test_the_link_checks_see_bad_links(tmp_path: Path) -> None:
    """The link reader finds links with code in their text and skips fenced code."""
    text = "see [`a`](../x.md) and ![i](docs/p.png#top)\n```\n[no](nowhere.md)\n```\n"
    assert links(text) == ["../x.md", "docs/p.png#top"]
    assert slug("Lost signals: the pending set") == "lost-signals-the-pending-set"
    assert slug("The `Retry-After` header") == "the-retry-after-header"
    assert not inside(ROOT / "../shared/DESIGN.md") and inside(ROOT / "docs/../README.md")
