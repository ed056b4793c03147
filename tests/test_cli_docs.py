"""docs/cli.md keeps up with ``--help``: a section per command naming each of its options.

A command's section is the ``##`` heading naming it (```smsqueue send```, or
```smsqueue pause`, `smsqueue resume``` for two at once) down to the next ``##``;
the root's is ``## `smsqueue```. Options are read from the Click command Typer builds,
the same one ``--help`` prints, and each is checked to be in that help too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

from smsqueue.cli import app, main

ROOT = Path(__file__).resolve().parent.parent
CLI_MD = ROOT / "docs" / "cli.md"
GROUP = typer.main.get_command(app)
COMMANDS = sorted(getattr(GROUP, "commands", {}))


def sections() -> dict[str, str]:
    """Each ``##`` heading of docs/cli.md (outside code blocks) -> the text under it."""
    found: dict[str, list[str]] = {}
    body: list[str] = []
    fence: str | None = None
    for line in CLI_MD.read_text(encoding="utf-8").splitlines():
        marker = re.match(r"(```|~~~)", line)
        if marker and fence is None:
            fence = marker.group(1)
        elif marker and line.strip() == fence:
            fence = None
        elif fence is None and line.startswith("## "):
            body = found.setdefault(line[3:].strip(), [])
            continue
        body.append(line)
    return {heading: "\n".join(lines) for heading, lines in found.items()}


def section_of(command: str) -> str | None:
    """The section of docs/cli.md for ``command`` ("" is the root), or None."""
    name = f"`smsqueue {command}`" if command else "`smsqueue`"
    for heading, body in sections().items():
        if heading == name or (command and name in re.findall(r"`[^`]+`", heading)):
            return body
    return None


def long_options(command: str) -> list[str]:
    """The long options (``--json``, and ``--no-keep`` beside ``--keep``) of ``command``
    ("" is the root) that its ``--help`` shows; ``--help`` itself left out."""
    cmd = GROUP.commands[command] if command else GROUP  # type: ignore[attr-defined]
    names: list[str] = []
    for param in cmd.params:
        if param.param_type_name != "option" or getattr(param, "hidden", False):
            continue
        names += [o for o in [*param.opts, *param.secondary_opts] if o.startswith("--")]
    return names


def help_text(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    """What ``smsqueue [COMMAND] --help`` prints."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([*([command] if command else []), "--help"])
    assert exc.value.code in (0, None)
    return capsys.readouterr().out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_section_in_docs_cli_md(command: str) -> None:
    """docs/cli.md has a ## section naming `smsqueue COMMAND` for each registered command."""
    assert section_of(command) is not None, f"no ## section for `smsqueue {command}`"


@pytest.mark.parametrize("command", ["", *COMMANDS], ids=["(root)", *COMMANDS])
def test_every_option_in_help_is_in_the_commands_section(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each long option `--help` shows for a command (or the root) is named in its section."""
    shown = help_text(command, capsys)
    options = long_options(command)
    assert [o for o in options if o not in shown] == [], shown  # the help does show them
    section = section_of(command)
    assert section is not None
    missing = [o for o in options if not re.search(rf"{re.escape(o)}(?![\w-])", section)]
    assert missing == [], f"docs/cli.md, `smsqueue {command}`: {missing} not documented"


def test_the_section_reader_finds_shared_headings_and_the_root() -> None:
    """pause and resume share a section; the root has its own; an unknown command has none."""
    assert section_of("pause") is not None and section_of("pause") == section_of("resume")
    assert section_of("") is not None and section_of("") != section_of("send")
    assert section_of("nosuchcommand") is None
    assert long_options("demo") == ["--data", "--flower-port", "--no-flower", "--keep", "--no-keep"]
