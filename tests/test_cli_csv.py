"""smsqueue.intake.csvfile: reading recipients from CSV files, streamed, with every error named."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import pytest

from smsqueue.intake.csvfile import BadRow, CsvError, CsvSource, open_source


def write(tmp_path: Path, data: bytes | str, name: str = "in.csv") -> Path:
    """A file with exactly these bytes (str is written as UTF-8)."""
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_rows_are_dicts_by_column(tmp_path: Path) -> None:
    """Each row maps the header's names to its fields, quotes undone."""
    src = CsvSource(write(tmp_path, 'phone,name\n+12125550101,"Ann, ""A"""\n'))
    assert src.columns == ["phone", "name"]
    assert list(src.rows()) == [{"phone": "+12125550101", "name": 'Ann, "A"'}]


def test_bom_and_crlf_are_read(tmp_path: Path) -> None:
    """Excel's CSV UTF-8: a BOM before the header and CRLF line ends."""
    src = CsvSource(write(tmp_path, b"\xef\xbb\xbfphone,city\r\n+12125550101,K\xc3\xb6ln\r\n"))
    assert src.columns == ["phone", "city"]
    assert list(src.rows()) == [{"phone": "+12125550101", "city": "Köln"}]


def test_header_names_are_trimmed_and_phone_is_found_in_any_case(tmp_path: Path) -> None:
    """' Phone ' is the phone column; other names are trimmed but keep their case."""
    src = CsvSource(write(tmp_path, " Phone , First Name\n+12125550101,Ann\n"))
    assert src.columns == ["phone", "First Name"]


def test_malformed_rows_are_set_aside_with_their_lines(tmp_path: Path) -> None:
    """Too many or too few fields, or broken quoting: in ``bad`` with a reason; others go on."""
    path = write(
        tmp_path,
        'phone,name\n+12125550101\n+12125550102,Bo,x\n+12125550103,"C"x\n\n+12125550104,Di\n',
    )
    src = CsvSource(path)
    assert list(src.rows()) == [{"phone": "+12125550104", "name": "Di"}]
    assert src.bad == [
        BadRow(line=2, number="+12125550101", reason="too few fields: 1, the header has 2"),
        BadRow(line=3, number="+12125550102", reason="too many fields: 3, the header has 2"),
        BadRow(line=4, number="", reason="unreadable CSV (',' expected after '\"')"),
    ]
    assert src.line_of(1) == 6
    scan = src.scan()
    assert (scan.rows, len(scan.malformed)) == (4, 3)


def test_line_of_follows_multiline_fields_and_blank_lines(tmp_path: Path) -> None:
    """line_of maps the n-th row yielded to the line it starts on."""
    text = 'phone,note\n\n+12125550101,"a\nb\nc"\n+12125550102,x\n\n\n+12125550103,y\n'
    src = CsvSource(write(tmp_path, text))
    rows = list(src.rows())
    assert len(rows) == 3
    assert [src.line_of(n) for n in (1, 2, 3)] == [3, 6, 9]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "is empty"),
        (b"\n\n", "is empty"),
        (b"name,city\nAnn,Paris\n", "columns found: 'name', 'city'"),
        (b"phone|name\n1|2\n", "separated by commas, semicolons or tabs"),
        (b"phone,name,Phone\n", "named more than once"),
        (b"phone,name\n+12125550101,\xff\n", "line 2 is not UTF-8 (byte 0xff at column 14)"),
        ("phone\n+12125550101\n".encode("utf-16"), "UTF-16"),
        (b'phone,name\n+12125550101,"open\n+12125550102,x\n', "line 2: a quoted field"),
    ],
)
def test_file_errors(tmp_path: Path, data: bytes, needle: str) -> None:
    """What refuses the whole file says why, naming the file."""
    path = write(tmp_path, data)
    with pytest.raises(CsvError) as exc:
        CsvSource(path).scan()
    assert needle in str(exc.value)
    assert str(path) in str(exc.value)


def test_an_encoding_error_deep_in_the_file_is_found_by_scan(tmp_path: Path) -> None:
    """scan() reads to the end, so a bad byte on line 502 refuses the file up front."""
    lines = ["phone,name"] + [f"+1212555{i:04d},N" for i in range(500)]
    path = write(tmp_path, ("\n".join(lines) + "\n").encode() + b"+12125559999,\xe9\n")
    src = CsvSource(path)  # the header is fine
    with pytest.raises(CsvError, match="line 502"):
        src.scan()


def test_missing_file_and_folder(tmp_path: Path) -> None:
    """A missing path and a folder are CsvErrors, not OSErrors."""
    with pytest.raises(CsvError, match="no such file"):
        CsvSource(tmp_path / "missing.csv")
    with pytest.raises(CsvError, match="is a folder"):
        CsvSource(tmp_path)


def test_rows_are_streamed(tmp_path: Path) -> None:
    """Reading 20,000 rows one by one holds a few rows, not the file, in memory."""
    body = "".join(f"+1212{i:07d},Name number {i}\n" for i in range(20_000))
    path = write(tmp_path, "phone,name\n" + body)
    assert path.stat().st_size > 500_000
    src = CsvSource(path)
    tracemalloc.start()
    try:
        count = sum(1 for _ in src.rows())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert peak < 200_000
    assert src.line_of(20_000) == 20_001


# --- delimiters, the phone column, standard input -------------------------------------------


@pytest.mark.parametrize(
    ("data", "delimiter"),
    [
        ('phone;name\n+12125550101;"Ann; Jr."\n', ";"),
        ("phone\tname\n+12125550101\tAnn; Jr.\n", "\t"),
        ('phone;"a,b,c"\n+12125550101;x\n', ";"),  # quoted commas do not count
        ("phone,name\n+12125550101,Ann; Jr.\n", ","),
        ("phone\n+12125550101\n", ","),
    ],
)
def test_delimiter_is_detected_from_the_header(tmp_path: Path, data: str, delimiter: str) -> None:
    """Comma, semicolon (spreadsheet exports) or tab: the most frequent in the header wins."""
    src = CsvSource(write(tmp_path, "\ufeff" + data))
    assert src.delimiter == delimiter
    rows = list(src.rows())
    assert len(rows) == 1 and rows[0]["phone"] == "+12125550101" and not src.bad


def test_semicolon_file_with_a_bad_row_names_its_line(tmp_path: Path) -> None:
    """A semicolon file is read like a comma one: fields counted, bad rows set aside."""
    src = CsvSource(write(tmp_path, "phone;name\n+12125550101;Ann\n+12125550102;Bo;x\n"))
    assert list(src.rows()) == [{"phone": "+12125550101", "name": "Ann"}]
    assert src.bad == [
        BadRow(line=3, number="+12125550102", reason="too many fields: 3, the header has 2")
    ]


def test_delimiter_can_be_given(tmp_path: Path) -> None:
    """An explicit delimiter overrides detection (here a comma inside semicolon-heavy names)."""
    src = CsvSource(write(tmp_path, "phone,a;b;c\n+12125550101,x;y;z\n"), delimiter=",")
    assert src.columns == ["phone", "a;b;c"]
    assert list(src.rows()) == [{"phone": "+12125550101", "a;b;c": "x;y;z"}]


@pytest.mark.parametrize("delimiter", ["", ";;", '"', "a", "\n"])
def test_bad_delimiter_is_refused(tmp_path: Path, delimiter: str) -> None:
    """A delimiter must be one character other than a quote, a line end or a letter."""
    with pytest.raises(CsvError, match="delimiter"):
        CsvSource(write(tmp_path, "phone\n+12125550101\n"), delimiter=delimiter)


def test_open_source_reads_delimiter_names(tmp_path: Path) -> None:
    """open_source takes tab, comma and semicolon by name."""
    path = write(tmp_path, "phone\tname\n+12125550101\tAnn\n")
    with path.open("rb") as stdin:
        assert open_source(path, stdin=stdin, delimiter="tab").delimiter == "\t"


def test_phone_column_can_be_chosen(tmp_path: Path) -> None:
    """--phone-column: that column (any case) is the number; it keeps its name for the text."""
    path = write(tmp_path, "Mobile;phone;name\n+12125550101;home;Ann\n+12125550102;x\n")
    src = CsvSource(path, phone_column="mobile")
    assert src.columns == ["Mobile", "phone", "name"]
    assert list(src.rows()) == [{"Mobile": "+12125550101", "phone": "+12125550101", "name": "Ann"}]
    assert src.bad[0].number == "+12125550102"
    with pytest.raises(CsvError, match="no 'cell' column; columns found: 'Mobile'"):
        CsvSource(path, phone_column="cell")


def test_stream_is_spooled_and_read_like_a_file(tmp_path: Path) -> None:
    """A stream (stdin) is read twice over (scan, rows) through its temporary copy."""
    data = "phone;name\n" + "".join(f"+1212555{n:04d};N{n}\n" for n in range(5000))
    with write(tmp_path, data).open("rb") as stream:
        src = open_source("-", stdin=stream)
    assert src.name == "<stdin>" and src.delimiter == ";"
    assert src.scan().rows == 5000
    rows = list(src.rows())
    assert len(rows) == 5000 and rows[-1] == {"phone": "+12125554999", "name": "N4999"}
    assert src.line_of(5000) == 5001
    src.close()


def test_stream_errors_name_stdin() -> None:
    """A stream that is not UTF-8 is refused with the same error, naming <stdin>."""
    with pytest.raises(CsvError, match="<stdin>: line 2 is not UTF-8"):
        CsvSource.from_stream(io.BytesIO(b"phone\n+1212555\xff\n")).scan()
