"""Message templates: ``Hi {name}``, with ``{{`` and ``}}`` for literal braces.

Only plain names are placeholders: no attribute access, indexing or format
specs, so a template cannot reach into Python objects the way str.format can.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from smsqueue.errors import InputError

_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|\{|\}")


class Template:
    """A parsed template; ``fields`` are its placeholder names in order of first use."""

    __slots__ = ("_pieces", "fields", "source")

    def __init__(self, source: str) -> None:
        try:
            source.encode("utf-8")  # a lone surrogate could be neither stored nor sent
        except UnicodeEncodeError as exc:
            raise InputError(
                f"template is not valid Unicode (a lone surrogate at {exc.start})"
            ) from None
        self.source = source
        pieces: list[str | int] = []  # literal text, or an index into fields
        fields: list[str] = []
        pos = 0
        for m in _TOKEN.finditer(source):
            pieces.append(source[pos : m.start()])
            token = m.group(0)
            if token in ("{{", "}}"):
                pieces.append(token[0])
            elif m.group(1) is not None:
                name = m.group(1)
                if name not in fields:
                    fields.append(name)
                pieces.append(fields.index(name))
            else:
                raise InputError(
                    f"template has a lone '{token}' at {m.start()}: "
                    "placeholders are {name}; write {{ or }} for a brace"
                )
            pos = m.end()
        pieces.append(source[pos:])
        self._pieces = tuple(p for p in pieces if p != "")
        self.fields = tuple(fields)

    def render(self, values: Sequence[str]) -> str:
        """The text with ``values`` in the order of ``fields``."""
        return "".join(values[p] if isinstance(p, int) else p for p in self._pieces)

    def values(self, row: Mapping[str, object]) -> list[str]:
        """This row's values for ``fields``; KeyError names the first one missing."""
        out = []
        for name in self.fields:
            value = row.get(name)
            if value is None:
                raise KeyError(name)
            out.append(value if isinstance(value, str) else str(value))
        return out
