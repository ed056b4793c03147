"""The public API: what ``smsqueue`` exports, and docs/api.md keeping up with it.

Each public method of ``SmsQueue`` and ``AsyncSmsQueue`` has a section of docs/api.md (a
heading naming it in backticks) with a ``**Returns**`` line and a ``**Raises**`` line; the
two classes are twins; every name of ``smsqueue.__all__`` imports and is documented there.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import smsqueue
from smsqueue import AsyncSmsQueue, SmsQueue, errors, models

ROOT = Path(__file__).resolve().parent.parent
API_MD = ROOT / "docs" / "api.md"
FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^(#{1,3})\s+(.+?)\s*$", re.MULTILINE)
TICKED = re.compile(r"`([A-Za-z_]\w*)`")

# The two classes differ only here: ``close`` is ``aclose`` on the asyncio twin (as asyncio's
# own classes name it).
RENAMED = {"close": "aclose"}
SYNC_ONLY: set[str] = set()


def public_methods(cls: type) -> set[str]:
    """The names of ``cls``'s public callables (its own and inherited), dunders excluded."""
    return {n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))}


def sections(text: str) -> dict[str, str]:
    """Each method a level-1 to 3 heading names in backticks -> the text up to the next such
    heading (fenced code left out: its ``#`` comments are not headings)."""
    prose = FENCE.sub("", text)
    heads = list(HEADING.finditer(prose))
    found: dict[str, str] = {}
    for here, nxt in zip(heads, [*heads[1:], None], strict=True):
        body = prose[here.end() : nxt.start() if nxt else len(prose)]
        for name in TICKED.findall(here.group(2)):
            found.setdefault(name, body)
    return found


def missing_parts(body: str) -> list[str]:
    """What a method's section lacks of its ``**Returns**`` and ``**Raises**`` lines."""
    lines = [line.strip() for line in body.splitlines()]
    return [
        part for part in ("**Returns**", "**Raises**") if not any(s.startswith(part) for s in lines)
    ]


def raises_names(body: str) -> list[str]:
    """The class-like names in backticks on a section's Raises line and its continuation."""
    match = re.search(r"^\*\*Raises\*\*(.*?)(?=^\s*$|^\*\*|\Z)", body, re.MULTILINE | re.DOTALL)
    assert match is not None
    return [n for n in TICKED.findall(match.group(1)) if n[0].isupper()]


DOC = API_MD.read_text()
SECTIONS = sections(DOC)
METHODS = sorted(public_methods(SmsQueue) | public_methods(AsyncSmsQueue))


@pytest.mark.parametrize("name", METHODS)
def test_every_public_method_has_a_section_with_returns_and_raises(name: str) -> None:
    """docs/api.md has a heading naming the method, and its section says what it returns
    and what it raises."""
    assert name in SECTIONS, f"docs/api.md has no ### `{name}` section"
    assert missing_parts(SECTIONS[name]) == []


@pytest.mark.parametrize("name", METHODS)
def test_the_errors_a_section_names_are_smsqueue_errors(name: str) -> None:
    """Each class a Raises line names is a class of smsqueue.errors (no typo, none gone)."""
    named = raises_names(SECTIONS[name])
    assert [n for n in named if not isinstance(getattr(errors, n, None), type)] == []


def test_the_two_queues_are_twins() -> None:
    """AsyncSmsQueue has SmsQueue's public methods, with the same parameters, awaited."""
    sync, aio = public_methods(SmsQueue), public_methods(AsyncSmsQueue)
    expected = {RENAMED.get(n, n) for n in sync - SYNC_ONLY}
    assert aio == expected
    for name in sorted(sync & aio):
        s, a = (
            inspect.signature(getattr(SmsQueue, name)),
            inspect.signature(getattr(AsyncSmsQueue, name)),
        )
        shape = [(p.name, p.kind, p.default) for p in s.parameters.values()]
        assert [(p.name, p.kind, p.default) for p in a.parameters.values()] == shape, name
        if name != "from_env":  # a constructor: nothing to await
            fn = getattr(AsyncSmsQueue, name)
            assert inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn), name
    assert inspect.iscoroutinefunction(AsyncSmsQueue.aclose)


@pytest.mark.parametrize("name", sorted(smsqueue.__all__))
def test_every_exported_name_imports_and_is_documented(name: str) -> None:
    """Each name of smsqueue.__all__ is importable from smsqueue and named in docs/api.md."""
    assert getattr(smsqueue, name) is not None
    if name != "__version__":
        assert f"`{name}`" in DOC or f"`{name}(" in DOC


def test_every_model_and_error_class_is_exported() -> None:
    """The package exports every return type of smsqueue.models and every error class."""
    wanted = {
        n
        for n, obj in vars(models).items()
        if isinstance(obj, type)
        and dataclasses.is_dataclass(obj)
        and obj.__module__ == models.__name__
    }
    wanted |= {
        n
        for n, obj in vars(errors).items()
        if isinstance(obj, type)
        and issubclass(obj, BaseException)
        and obj.__module__ == errors.__name__
    }
    assert wanted - set(smsqueue.__all__) == set()
    assert {"SmsQueue", "AsyncSmsQueue"} <= set(smsqueue.__all__)


def test_the_returned_types_are_exported() -> None:
    """Every class a public method's annotation names, from smsqueue.models, is exported."""
    named = set()
    for cls in (SmsQueue, AsyncSmsQueue):
        for name in public_methods(cls):
            ret = str(inspect.signature(getattr(cls, name)).return_annotation)
            named |= {
                n for n in re.findall(r"\w+", ret) if isinstance(getattr(models, n, None), type)
            }
    assert named and named <= set(smsqueue.__all__)


def test_importing_smsqueue_stays_light() -> None:
    """``import smsqueue`` and its models and errors load no Celery, Redis, kombu or httpx."""
    code = (
        "import sys\n"
        "import smsqueue\n"
        "from smsqueue import MessageStatus, NotFound, SmsQueueError\n"
        "print(sorted(m for m in ('celery', 'redis', 'kombu', 'httpx') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_section_reader_sees_what_is_missing() -> None:
    """The checker reads headings outside code, and finds a missing Raises line."""
    text = (
        "## Reading\n\n### `status`\n\n**Returns** a `MessageStatus`.\n**Raises** `NotFound`"
        " when\nthere is `none`.\n\n```python\n# `cancel` is not a heading here\n```\n"
        "### `pause` / `resume`\n\n**Returns** it.\n\n## Errors\n"
    )
    found = sections(text)
    assert set(found) == {"status", "pause", "resume"}
    assert missing_parts(found["status"]) == []
    assert missing_parts(found["pause"]) == ["**Raises**"]
    assert raises_names(found["status"]) == ["NotFound"]
