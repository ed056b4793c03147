"""Shell completion (``--show-completion``) and ``--provider``'s choices from the registry."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from smsqueue.cli import main
from smsqueue.cli.app import check_provider, complete_provider
from smsqueue.operations import exits
from smsqueue.providers import registry
from smsqueue.providers.voip import VoipProvider

ROOT = Path(__file__).resolve().parent.parent


def _env(**extra: str) -> dict[str, str]:
    """The caller's environment without SMSQUEUE_* or completion variables, plus ``extra``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SMSQUEUE_", "_SMSQUEUE_"))}
    return {**clean, **extra}


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_show_completion_prints_the_bash_script_in_a_real_process() -> None:
    """`smsqueue --show-completion` run from bash prints bash's completion script for smsqueue."""
    # Typer finds the shell among the parent processes: run under bash, which must not exec
    # python in its place (so a command follows it).
    proc = subprocess.run(
        ["bash", "-c", '"$0" -m smsqueue --show-completion; rc=$?; exit $rc', sys.executable],
        env=_env(SHELL="/bin/bash"), cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "_SMSQUEUE_COMPLETE=complete_bash" in proc.stdout, proc.stdout
    assert "complete -o default -F _smsqueue_completion smsqueue" in proc.stdout


def test_help_offers_the_completion_options() -> None:
    """The root's --help lists --install-completion and --show-completion."""
    proc = subprocess.run(
        [sys.executable, "-m", "smsqueue", "--help"],
        env=_env(), cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "--install-completion" in proc.stdout and "--show-completion" in proc.stdout


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [
        ("smsqueue send --provider ", "3", ["wooxy", "voip"]),
        ("smsqueue campaign people.csv --provider v", "4", ["voip"]),
    ],
)
def test_the_completion_script_completes_provider_names(
    words: str, cword: str, expected: list[str]
) -> None:
    """What the bash script runs on Tab after --provider prints the registered providers."""
    env = _env(_SMSQUEUE_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=cword)
    proc = subprocess.run(
        [sys.executable, "-m", "smsqueue"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == expected


def test_complete_provider_reads_the_registry_when_called(monkeypatch: pytest.MonkeyPatch) -> None:
    """The completion callback lists the registry's names as they are at the time of the Tab."""
    assert complete_provider("") == list(registry.names()) == ["wooxy", "voip"]
    assert complete_provider("w") == ["wooxy"] and complete_provider("x") == []
    monkeypatch.setattr(registry, "DEFAULT", registry.ProviderRegistry([VoipProvider()]))
    assert complete_provider("") == ["voip"]


def test_check_provider_names_the_registered_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The validation callback passes a registered name and refuses another, naming them."""
    assert check_provider("voip") == "voip"
    with pytest.raises(
        typer.BadParameter, match="'nope' is not a provider; use one of wooxy, voip"
    ):
        check_provider("nope")
    monkeypatch.setattr(registry, "DEFAULT", registry.ProviderRegistry([VoipProvider()]))
    with pytest.raises(typer.BadParameter, match=r"use one of voip$"):
        check_provider("wooxy")


@pytest.mark.parametrize(
    "args",
    [
        ["send", "--to", "+12125550101", "--text", "x", "--provider", "nope"],
        ["campaign", "people.csv", "--text", "x", "--provider", "nope"],
        ["campaign", "people.csv", "--text", "x", "--provider", "nope", "--dry-run"],
    ],
)
def test_provider_nope_is_a_usage_error_naming_the_providers(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--provider nope: exit 2 and one line naming the valid providers, before any file or Redis."""
    monkeypatch.setenv("SMSQUEUE_REDIS_URL", "redis://127.0.0.1:1/0")  # never reached
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    assert exc.value.code == exits.USAGE == 2, err
    assert out == "" and err.count("\n") == 1, err
    assert err.startswith("error: Invalid value for '--provider': 'nope' is not a provider")
    assert "use one of wooxy, voip" in err and f"(see smsqueue {args[0]} --help)" in err
