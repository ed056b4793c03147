"""Recipients from a CSV file, streamed row by row (a million rows never sit in memory).

The rules, which ``docs/cli.md`` repeats for operators:

* **Encoding.** UTF-8, with or without a byte order mark (Excel's "CSV UTF-8"). A byte
  that is not UTF-8 refuses the **whole file**, with an error naming its line: such a
  file was saved in another encoding (Windows-1252, Latin-1, ...), so every accented
  name in it would be wrong, not only one row's. A UTF-16 or UTF-32 file is refused the
  same way. ``CsvSource.scan`` reads the file once before anything is enqueued, so the
  error comes before a single row is.
* **Header.** The first line names the columns. One must be ``phone`` (any case, spaces
  around names are ignored), or the one named by ``phone_column`` (any case); the others
  fill the text's placeholders. A ``ref`` column (any case) gives each row's ref, kept
  with its message (an empty cell: none). No phone column is an error naming the columns
  found, and so is a name given twice.
* **Delimiter.** Read from the header line: whichever of comma, semicolon (spreadsheets
  in many locales export those) and tab occurs most there outside quotes, comma when
  none does. ``delimiter`` overrides it.
* **Standard input.** ``CsvSource.from_stream`` copies a stream (``-`` on the command
  line) to an anonymous temporary file chunk by chunk, so it is read the same way as a
  file: streamed, and scanned whole before anything is enqueued.
* **Rows.** Quoting is RFC 4180 (Python's ``excel`` dialect): a quoted field may hold
  commas, doubled quotes and line breaks. A row with more or fewer fields than the
  header is **rejected with a reason** (its line given) and the rest go on. Blank lines
  are skipped. A row with broken quoting (``"Ann"x``) is rejected the same way; a quote
  never closed (the rest of the file would be one field) refuses the file.

Line numbers are physical lines of the file, the header being line 1, as an editor
shows them. ``CsvSource.line_of`` turns the position of a yielded row (1-based, as
``send_campaign`` numbers its rejected rows) back into its line, keeping only the
points where the two drift apart (a multi-line field, a blank or rejected line).
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

from smsqueue.errors import InputError
from smsqueue.intake.rows import REF_FIELD

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # UTF-32 LE starts with the UTF-16 LE one
_UTF32_BE_BOM = b"\x00\x00\xfe\xff"
DELIMITERS = (",", ";", "\t")  # detected from the header line, in this order on a tie
_CHUNK = 1 << 20


class CsvError(InputError):
    """The file cannot be read as recipients at all (nothing of it is enqueued)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BadRow:
    """A row left out: the line it starts on, the number as written, and why."""

    line: int
    number: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Scan:
    """What a first pass over the file found."""

    rows: int
    malformed: list[BadRow]


class CsvSource:
    """A CSV file of recipients; ``rows()`` streams them as ``{column: value}`` dicts."""

    def __init__(
        self,
        path: Path | str,
        *,
        delimiter: str | None = None,
        phone_column: str | None = None,
        _spool: BinaryIO | None = None,
    ) -> None:
        self.path = Path(path)
        self.name = str(path)
        self.bad: list[BadRow] = []
        self._index: list[int] = []  # row positions where line - position changes
        self._offset: list[int] = []
        self._spool = _spool
        self._wanted = "phone" if phone_column is None else phone_column.strip()
        if not self._wanted:
            raise CsvError("the phone column's name is empty")
        if delimiter is not None and (
            len(delimiter) != 1 or delimiter in '"\r\n' or delimiter.isalnum()
        ):
            raise CsvError(f"delimiter {delimiter!r}: give one character, such as , ; or a tab")
        if delimiter is None:
            with self._open() as fh:
                delimiter = detect_delimiter(_lines(fh, self.name))
        self.delimiter = delimiter
        self.phone_column = "phone"
        with self._open() as fh:
            self.columns = self._header(self._records(fh))

    @classmethod
    def from_stream(
        cls,
        stream: IO[bytes],
        *,
        name: str = "<stdin>",
        delimiter: str | None = None,
        phone_column: str | None = None,
    ) -> CsvSource:
        """Recipients from a byte stream (standard input), spooled to a temporary file.

        The copy goes chunk by chunk, so the stream is never held in memory; the file has
        no name on disk and goes away when the source is closed (or the process ends).
        """
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - the source owns it until close()
        try:
            shutil.copyfileobj(stream, spool, _CHUNK)
            spool.flush()
            return cls(name, delimiter=delimiter, phone_column=phone_column, _spool=spool)
        except BaseException:
            spool.close()
            raise

    def close(self) -> None:
        """Drop the temporary copy of a stream (nothing to do for a file)."""
        if self._spool is not None:
            self._spool.close()

    def scan(self) -> Scan:
        """Read the whole file once: CsvError on an encoding or CSV error, else the counts."""
        rows = 0
        malformed: list[BadRow] = []
        with self._open() as fh:
            records = self._records(fh)
            self._header(records)
            for line, fields in records:
                rows += 1
                if isinstance(fields, str) or len(fields) != len(self.columns):
                    malformed.append(self._malformed(line, fields))
        return Scan(rows=rows, malformed=malformed)

    def content_digest(self) -> str:
        """The SHA-256 of the file's bytes, read in chunks (hex)."""
        digest = hashlib.sha256()
        with self._open() as fh:
            for block in iter(lambda: fh.read(_CHUNK), b""):
                digest.update(block)
        return digest.hexdigest()

    def rows(self) -> Iterator[dict[str, str]]:
        """Each well-formed row, streamed; malformed ones are added to ``bad`` instead."""
        self.bad = []
        self._index, self._offset = [], []
        width = len(self.columns)
        position = 0
        with self._open() as fh:
            records = self._records(fh)
            self._header(records)
            for line, fields in records:
                if isinstance(fields, str) or len(fields) != width:
                    self.bad.append(self._malformed(line, fields))
                    continue
                position += 1
                if not self._offset or self._offset[-1] != line - position:
                    self._index.append(position)
                    self._offset.append(line - position)
                row = dict(zip(self.columns, fields, strict=True))
                if self.phone_column != "phone":
                    row["phone"] = row[self.phone_column]
                yield row

    def line_of(self, position: int) -> int:
        """The line of the ``position``-th row ``rows()`` yielded (1-based)."""
        at = bisect.bisect_right(self._index, position) - 1
        if at < 0:
            raise IndexError(f"no row {position} has been read")
        return position + self._offset[at]

    def _records(self, fh: IO[bytes]) -> Iterator[tuple[int, list[str] | str]]:
        return _records(fh, self.name, self.delimiter)

    def _open(self) -> IO[bytes]:
        if self._spool is not None:  # a new handle on the same file, from its start
            fh = os.fdopen(os.dup(self._spool.fileno()), "rb")
            fh.seek(0)
            return fh
        try:
            return self.path.open("rb")
        except FileNotFoundError:
            raise CsvError(f"{self.name}: no such file") from None
        except IsADirectoryError:
            raise CsvError(f"{self.name} is a folder, not a CSV file") from None
        except OSError as exc:
            raise CsvError(f"cannot read {self.name}: {exc.strerror or exc}") from None

    def _header(self, records: Iterator[tuple[int, list[str] | str]]) -> list[str]:
        first = next(records, None)
        if first is None:
            raise CsvError(
                f"{self.name} is empty: its first line must name the columns, one of them phone"
            )
        if isinstance(first[1], str):
            raise CsvError(f"{self.name}: line {first[0]} (the header): {first[1]}")
        names = [name.strip() for name in first[1]]
        names = ["phone" if name.casefold() == "phone" else name for name in names]
        names = [REF_FIELD if name.casefold() == REF_FIELD else name for name in names]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise CsvError(f"{self.name}: column {twice[0]!r} is named more than once")
        wanted = self._wanted.casefold()
        chosen = [name for name in names if name.casefold() == wanted]
        if not chosen:
            found = ", ".join(repr(n) for n in names)
            hint = ""
            if len(names) == 1 and any(sep in names[0] for sep in ",;\t|"):
                hint = " (columns must be separated by commas, semicolons or tabs)"
            raise CsvError(
                f"{self.name} has no {self._wanted!r} column; columns found: {found}{hint}"
            )
        self.phone_column = chosen[0]
        return names

    def _malformed(self, line: int, fields: list[str] | str) -> BadRow:
        if isinstance(fields, str):
            return BadRow(line=line, number="", reason=fields)
        width = len(self.columns)
        at = self.columns.index(self.phone_column)
        number = fields[at] if at < len(fields) else ""
        many = "too many" if len(fields) > width else "too few"
        reason = f"{many} fields: {len(fields)}, the header has {width}"
        return BadRow(line=line, number=number, reason=reason)


_DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";"}


def file_key(source: CsvSource, *, text: str, provider: str) -> str:
    """The campaign key of sending ``source`` with ``text`` through ``provider``: the same
    file content, text and provider always give the same key."""
    digest = hashlib.sha256()
    for part in (source.content_digest(), provider, text):
        data = part.encode("utf-8")
        digest.update(b"%d:" % len(data) + data)  # length-prefixed: no two inputs run together
    return f"csv:{digest.hexdigest()}"


def open_source(
    where: Path | str,
    *,
    stdin: IO[bytes],
    delimiter: str | None = None,
    phone_column: str | None = None,
) -> CsvSource:
    """The recipients in file ``where``, or in ``stdin`` when ``where`` is ``-``.

    ``delimiter`` is one character, or ``tab``, ``comma`` or ``semicolon``; None detects it.
    """
    if delimiter is not None:
        delimiter = _DELIMITER_NAMES.get(delimiter.casefold(), delimiter)
    if str(where) == "-":
        return CsvSource.from_stream(stdin, delimiter=delimiter, phone_column=phone_column)
    return CsvSource(where, delimiter=delimiter, phone_column=phone_column)


def detect_delimiter(lines: Iterator[str]) -> str:
    """The delimiter of the first non-blank line: the most frequent of ``DELIMITERS``
    outside double quotes, comma when none occurs."""
    header = next((line for line in lines if line.strip()), "")
    outside = "".join(header.split('"')[::2])  # the parts between pairs of quotes
    counts = {sep: outside.count(sep) for sep in DELIMITERS}
    best = max(DELIMITERS, key=lambda sep: counts[sep])  # the first one on a tie
    return best if counts[best] else ","


def _records(
    fh: IO[bytes], name: str, delimiter: str = ","
) -> Iterator[tuple[int, list[str] | str]]:
    """(first line, fields) of each non-blank record; (first line, why) for a broken one."""
    reader = csv.reader(_lines(fh, name), delimiter=delimiter, strict=True)
    last = 0
    while True:
        try:
            fields: list[str] | str = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "end of data" in str(exc):  # a quote never closed: the rest is one field
                raise CsvError(
                    f"{name}: line {last + 1}: a quoted field is never closed before the "
                    "end of the file"
                ) from None
            fields = f"unreadable CSV ({exc})"  # the reader goes on at the next line
        start, last = last + 1, reader.line_num
        if fields:
            yield start, fields


def _lines(fh: IO[bytes], name: str) -> Iterator[str]:
    """The file's lines decoded as UTF-8; CsvError naming the first line that is not.

    A newline byte never occurs inside a multi-byte UTF-8 sequence, so decoding line
    by line is exact and tells the line of a bad byte.
    """
    for number, raw in enumerate(fh, start=1):
        if number == 1:
            if raw.startswith(_UTF8_BOM):
                raw = raw[len(_UTF8_BOM) :]
            elif raw.startswith(_UTF16_BOMS) or raw.startswith(_UTF32_BE_BOM):
                raise CsvError(f"{name} is UTF-16 or UTF-32: save it as CSV UTF-8")
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            byte = raw[exc.start]
            raise CsvError(
                f"{name}: line {number} is not UTF-8 (byte 0x{byte:02x} at column "
                f"{exc.start + 1}): save the file as CSV UTF-8"
            ) from None
