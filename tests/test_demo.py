"""``smsqueue demo --data``: the demo empties only folders it made, and refuses any other."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from smsqueue.cli import main
from smsqueue.errors import InputError
from smsqueue.testing.demo import MARKER, claim_data_dir

ROOT = Path(__file__).resolve().parent.parent


def test_a_new_folder_is_made_and_marked(tmp_path: Path) -> None:
    """A folder that does not exist yet is made, parents too, with the marker in it."""
    got = claim_data_dir(tmp_path / "a" / "demo")
    assert got == (tmp_path / "a" / "demo").resolve()
    assert [p.name for p in got.iterdir()] == [MARKER]


def test_an_empty_folder_is_taken_and_marked(tmp_path: Path) -> None:
    """An existing empty folder holds nothing to lose: it is used, and marked."""
    (tmp_path / "empty").mkdir()
    assert [p.name for p in claim_data_dir(tmp_path / "empty").iterdir()] == [MARKER]


def test_a_folder_a_demo_made_is_emptied(tmp_path: Path) -> None:
    """What an earlier demo left (files, folders) goes; the folder and its marker stay."""
    data = claim_data_dir(tmp_path / "demo")
    (data / "logs").mkdir()
    (data / "logs" / "worker-1.log").write_text("old")
    (data / "appendonly.aof").write_text("old")
    assert claim_data_dir(data) == data
    assert [p.name for p in data.iterdir()] == [MARKER]


def test_a_link_in_a_demo_folder_is_removed_not_followed(tmp_path: Path) -> None:
    """A symlink inside a marked folder is unlinked: the folder it points to is untouched."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("mine")
    data = claim_data_dir(tmp_path / "demo")
    (data / "link").symlink_to(elsewhere, target_is_directory=True)
    claim_data_dir(data)
    assert (elsewhere / "keep.txt").read_text() == "mine"
    assert not (data / "link").exists()


def test_a_folder_with_files_and_no_marker_is_refused(tmp_path: Path) -> None:
    """A non-empty folder the demo did not make: InputError, and every file is still there."""
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "thesis.tex").write_text("years of work")
    (mine / "sub" / "notes.txt").write_text("more")
    with pytest.raises(InputError, match="not made by the demo"):
        claim_data_dir(mine)
    assert (mine / "thesis.tex").read_text() == "years of work"
    assert (mine / "sub" / "notes.txt").read_text() == "more"
    assert not (mine / MARKER).exists()


def test_a_file_is_refused(tmp_path: Path) -> None:
    """--data naming a file: refused, the file kept."""
    path = tmp_path / "data"
    path.write_text("not a folder")
    with pytest.raises(InputError, match="not a folder"):
        claim_data_dir(path)
    assert path.read_text() == "not a folder"


def test_demo_command_refuses_a_folder_it_did_not_make(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`smsqueue demo --data DIR` on someone's folder: one error line, exit 1, nothing deleted."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--data", str(mine), "--no-flower"])
    err = capsys.readouterr().err
    assert exc.value.code == 1
    assert err.count("\n") == 1 and err.startswith("error: ") and "not made by the demo" in err
    assert (mine / "keep.txt").read_text() == "mine"


def test_demo_data_dot_keeps_the_working_directory(tmp_path: Path) -> None:
    """`smsqueue demo --data .` in a folder with files (a real process): refused, all kept."""
    (tmp_path / "keep.txt").write_text("mine")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSQUEUE_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "smsqueue", "demo", "--data", ".", "--no-flower"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_a_folder_an_older_demo_left_is_emptied(tmp_path: Path) -> None:
    """Demos before the marker left redis/ (with server.log) and logs/: still taken as ours."""
    old = tmp_path / "demo"
    (old / "redis").mkdir(parents=True)
    (old / "redis" / "server.log").write_text("old")
    (old / "logs").mkdir()
    assert [p.name for p in claim_data_dir(old).iterdir()] == [MARKER]


def test_a_folder_that_only_looks_like_an_older_demo_is_refused(tmp_path: Path) -> None:
    """redis/ and logs/ plus anything else, or without the server log: refused, all kept."""
    mine = tmp_path / "mine"
    (mine / "redis").mkdir(parents=True)
    (mine / "logs").mkdir()
    with pytest.raises(InputError):
        claim_data_dir(mine)
    (mine / "redis" / "server.log").write_text("x")
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(InputError):
        claim_data_dir(mine)
    assert (mine / "notes.txt").read_text() == "mine"
