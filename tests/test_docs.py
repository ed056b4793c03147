"""The docs keep up with the code: every setting and every command is documented."""

from __future__ import annotations

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
