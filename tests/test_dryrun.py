"""The dry run judges a file's rows exactly as ``send_campaign`` does, and prices them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from smsqueue import constants as c
from smsqueue.intake.csvfile import CsvSource
from smsqueue.intake.dryrun import dry_run
from smsqueue.intake.producer import SmsQueue
from smsqueue.intake.verdicts import judged
from smsqueue.settings import Settings


def test_judged_accepts_the_first_of_each_number() -> None:
    """A rejected row stays rejected; the first valid row with a number wins over later ones."""
    outcomes = [
        (1, ["+12125550101", "a"], "+12125550101", ""),
        (2, None, "12", "invalid number"),
        (3, ["+12125550101", "b"], "+1 212 555 0101", ""),
        (4, ["+12125550102", "c"], "+12125550102", ""),
    ]
    verdicts = [(verdict, outcome[0]) for verdict, outcome in judged(outcomes)]
    assert verdicts == [("accepted", 1), ("rejected", 2), ("duplicate", 3), ("accepted", 4)]


def _file(path: Path, rows: int) -> Path:
    """``rows`` rows with a duplicate every 7th, an invalid number every 11th, a bad row."""
    lines = ["phone,name"]
    for i in range(rows):
        if i % 11 == 5:
            lines.append(f"+1000{i},Bad")
        elif i % 7 == 6:
            lines.append(f"+1 (212) 555-{i - 1:04d},Again")  # the row before's number
        else:
            lines.append(f"+1212555{i:04d},N{i}")
    lines.insert(3, "+12125559999,too,many")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("rows", [40, 2600])  # one batch in process; then helper processes
def test_dry_run_agrees_with_send_campaign(settings: Settings, tmp_path: Path, rows: int) -> None:
    """Accepted, duplicate and rejected rows (by line) are the same as the real campaign's."""
    settings = settings.model_copy(update={"validation_processes": 2})
    path = _file(tmp_path / "people.csv", rows)
    report = dry_run(CsvSource(path), "Hi {name}", provider=c.VOIP, settings=settings)
    source = CsvSource(path)
    q = SmsQueue(settings=settings)
    rc = q.send_campaign(source.rows(), text="Hi {name}", provider=c.VOIP)
    q.close()
    real_rejected = sorted(
        [r.line for r in source.bad] + [source.line_of(r.row) for r in rc.rejected]
    )
    assert (report.accepted, report.duplicates) == (rc.accepted, rc.duplicates)
    assert [r.line for r in report.rejected] == real_rejected
    assert report.duplicates > 0 and len(report.rejected) > 1
    assert report.rows == rows + 1
    assert report.parts == report.accepted
    assert report.cost == report.accepted * settings.voip_price


def test_dry_run_prices_with_the_providers_part_price(tmp_path: Path) -> None:
    """A two-part text costs two parts at the provider's price, per accepted message."""
    settings = Settings(wooxy_price=Decimal("0.05"), voip_price=Decimal("0.01"))
    path = tmp_path / "p.csv"
    path.write_text("phone\n+12125550101\n+12125550102\n")
    report = dry_run(CsvSource(path), "A" * 161, provider=c.WOOXY, settings=settings)
    assert (report.parts, report.parts_min, report.parts_max) == (4, 2, 2)
    assert report.cost == Decimal("0.20")
    assert report.encoding == "GSM-7"
