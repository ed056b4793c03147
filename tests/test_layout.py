"""The Redis layout is defined once (smsqueue.store.keys): Python and the Lua scripts agree."""

from __future__ import annotations

import inspect
import re
import string
import typing

import pytest
import redis

from smsqueue.delivery import outcomes
from smsqueue.store import keys, lua

# One sample id per placeholder name a key can take; each distinct, so a mixed-up
# argument order shows.
SAMPLE_IDS = {
    "cid": "18f3a2b4c5dabcdef01",
    "k": "7",
    "mid": "18f3a2b4c5dabcdef01-7-42",
    "smsid": "a1b2c3d4e5",
    "key": "order-1",
    "provider": "wooxy",
    "name": "provider_latency_seconds",
}
# Names the generated header gives Lua, with the same name and value as in keys.
CONSTANT_PREFIXES = ("ST_", "CAMPAIGN_", "OUTCOME_")
# A Lua function listing a table's entries as "key=value" strings (Redis returns no maps).
LUA_ENTRIES = (
    "(function(t) local o = {} "
    "for a, b in pairs(t) do o[#o + 1] = a .. '=' .. tostring(b) end return o end)"
)


def run_lua(client: redis.Redis, expr: str, *args: str, prefix: str = keys.KEY_PREFIX) -> object:
    """``expr`` evaluated after the scripts' PRELUDE, with the prefix as ARGV[1]."""
    return client.eval(lua.PRELUDE + f"\nreturn {expr}\n", 0, prefix, *args)


def key_ids(name: str) -> list[str]:
    """The ids the Python accessor of key ``name`` takes, in order (none for a fixed key)."""
    accessor = getattr(keys, f"k_{name}", None)
    return [] if accessor is None else list(inspect.signature(accessor).parameters)


def python_key(name: str) -> str:
    """Key ``name`` built by Python for the sample ids."""
    ids = key_ids(name)
    if ids:
        return str(getattr(keys, f"k_{name}")(**{i: SAMPLE_IDS[i] for i in ids}))
    return str(getattr(keys, f"K_{name.upper()}"))


def test_every_key_has_one_python_accessor() -> None:
    """Each LAYOUT entry has a k_<name> function or a K_<NAME> constant, and nothing else does."""
    accessors = {n for n in vars(keys) if n.startswith(("k_", "K_"))}
    expected = {f"k_{n}" if "{" in p else f"K_{n.upper()}" for n, p in keys.LAYOUT.items()}
    assert accessors == expected


@pytest.mark.parametrize("name", list(keys.LAYOUT))
def test_lua_builds_the_same_key_as_python(client: redis.Redis, name: str) -> None:
    """Lua's generated key_<name>(...) or KEY_<NAME> equals Python's key for the same ids."""
    ids = key_ids(name)
    values = [SAMPLE_IDS[i] for i in ids]
    args = ", ".join(f"ARGV[{n + 2}]" for n in range(len(ids)))
    expr = f"key_{name}({args})" if ids else f"KEY_{name.upper()}"
    expected = python_key(name)
    assert run_lua(client, expr, *values) == expected
    assert all(v in expected for v in values)  # every id is in the key
    # The prefix is the caller's (ARGV[1]), not baked into the script.
    other = run_lua(client, expr, *values, prefix="other:")
    assert other == "other:" + expected.removeprefix(keys.KEY_PREFIX)


def test_lua_has_the_python_state_letters_and_statuses(client: redis.Redis) -> None:
    """Every ST_*, CAMPAIGN_* and OUTCOME_* name has the same value in Lua as in Python."""
    names = [n for n in vars(keys) if n.startswith(CONSTANT_PREFIXES)]
    assert {n.split("_")[0] for n in names} == {"ST", "CAMPAIGN", "OUTCOME"}
    got = run_lua(client, "{" + ", ".join(names) + "}")
    assert got == [getattr(keys, n) for n in names]


def test_lua_pub_and_terminal_match_python(client: redis.Redis) -> None:
    """Lua's PUB table is PUBLIC_STATUS and its TERMINAL set is TERMINAL."""
    pub = run_lua(client, f"{LUA_ENTRIES}(PUB)")
    assert isinstance(pub, list)
    assert sorted(pub) == sorted(f"{s}={n}" for s, n in keys.PUBLIC_STATUS.items())
    terminal = run_lua(client, f"{LUA_ENTRIES}(TERMINAL)")
    assert isinstance(terminal, list)
    assert sorted(terminal) == sorted(f"{s}=true" for s in keys.TERMINAL)
    assert set(keys.PUBLIC_STATUS) >= keys.TERMINAL


def test_finish_outcomes_are_the_engines_kinds() -> None:
    """The OUTCOME_* words FINISH understands are exactly the engine's outcome kinds."""
    ours = {getattr(keys, n) for n in vars(keys) if n.startswith("OUTCOME_")}
    assert ours == set(typing.get_args(outcomes.Kind))


def lua_strings(source: str) -> list[str]:
    """The quoted string literals of Lua source, comments left out."""
    found: list[str] = []
    i = 0
    while i < len(source):
        if source.startswith("--", i):
            end = source.find("\n", i)
            i = len(source) if end < 0 else end
        elif source[i] in "'\"":
            j = i + 1
            while source[j] != source[i]:
                j += 2 if source[j] == "\\" else 1
            found.append(source[i + 1 : j])
            i = j + 1
        else:
            i += 1
    return found


def key_fragments() -> list[str]:
    """The literal parts of every key pattern that name something (not bare separators)."""
    parts = {keys.KEY_PREFIX}
    for pattern in keys.LAYOUT.values():
        parts |= {
            lit for lit, _, _, _ in string.Formatter().parse(pattern) if re.search(r"\w", lit)
        }
    return sorted(parts)


def layout_literals(body: str) -> list[str]:
    """The quoted state letters, campaign statuses and key fragments in Lua ``body``."""
    letters = set(keys.PUBLIC_STATUS)
    statuses = {getattr(keys, n) for n in vars(keys) if n.startswith("CAMPAIGN_")}
    fragments = [
        # A fragment counts where it is not part of a longer word.
        re.compile(
            ("(?<!\\w)" if f[0].isalnum() else "")
            + re.escape(f)
            + ("(?!\\w)" if f[-1].isalnum() else "")
        )
        for f in key_fragments()
    ]
    return [
        s
        for s in lua_strings(body)
        if s in letters or s in statuses or any(f.search(s) for f in fragments)
    ]


def test_layout_literals_finds_what_it_should() -> None:
    """The script check flags letters, statuses and key fragments, and passes ordinary words."""
    sample = "x('q') y('done') z(P .. 'c:' .. cid .. ':n') w(P .. 'pending') -- 'F' in a comment"
    assert layout_literals(sample) == ["q", "done", "c:", ":n", "pending"]
    assert layout_literals("redis.call('HGET', c, 'status', ':', '-inf', 'KEEPTTL')") == []


def test_script_bodies_spell_no_layout() -> None:
    """After the generated header, no script quotes a state letter, campaign status or key part."""
    scripts = {
        name: value
        for name, value in vars(lua).items()
        if name.isupper() and isinstance(value, str) and name != "HEADER"
    }
    assert "CLAIM" in scripts and "PERMIT_ACQUIRE" in scripts
    offending = {
        name: found
        for name, script in scripts.items()
        if (found := layout_literals(script.removeprefix(lua.HEADER)))
    }
    assert offending == {}
