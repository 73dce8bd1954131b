"""The police's CSV export of registrations.

Two forms: the plain one (English column keys, codes, UTC times: for programs reading the
JSON API's export) and, with :class:`CsvLabels`, the one a person opens in a spreadsheet:
headers and values in the reader's language, the kiosk's local times, and ID and phone numbers
written as ``="..."`` so a spreadsheet keeps them as text (an 18-digit number would otherwise
become 5.3E+17 and lose its last digits). Both start with a UTF-8 byte-order mark, which
spreadsheet programs need to read Chinese.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from agent.village.homestay.records import GuestRecord, iso_day, timestamp

_CSV_HEADER = (
    "record_id", "role", "homestay", "room", "name", "sex", "ethnicity", "birth_date", "id_type",
    "id_number", "nationality", "foreign", "phone", "address", "check_in", "expected_check_out",
    "checked_out_at",
)  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    """Free text that a spreadsheet would run as a formula is quoted (CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


COLUMNS = _CSV_HEADER


@dataclass(frozen=True)
class CsvLabels:
    """The words of a spreadsheet export: ``headers`` by column key; ``value`` names a code
    (``sex.male``, ``id_type.passport``, ``role.guest``, ``yes``, ``no``); ``country`` names
    a nationality code."""

    headers: Mapping[str, str]
    value: Callable[[str], str]
    country: Callable[[str], str]


def _local(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else ""


def _day(day: date | None) -> str:
    return day.isoformat() if day else ""


def _text(value: str) -> str:
    """A number a spreadsheet must keep as written (no rounding, no leading zero lost)."""
    return f'="{value}"' if value else ""


def to_spreadsheet_csv(records: Sequence[GuestRecord], labels: CsvLabels) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([labels.headers.get(column, column) for column in COLUMNS])
    yes, no = labels.value("yes"), labels.value("no")
    for r in records:
        stay = (_local(r.check_in), _day(r.expected_check_out), _local(r.checked_out_at))
        writer.writerow(
            [
                r.id, labels.value("role.guest"), _cell(r.homestay_name), _cell(r.room),
                _cell(r.name), labels.value(f"sex.{r.sex}"), _cell(r.ethnicity),
                _day(r.birth_date), labels.value(f"id_type.{r.id_type}"), _text(r.id_number),
                labels.country(r.nationality), yes if r.foreign else no, _text(r.phone),
                _cell(r.address), *stay,
            ]
        )  # fmt: skip
        for c in r.companions:
            writer.writerow(
                [
                    r.id, labels.value("role.companion"), _cell(r.homestay_name), _cell(r.room),
                    _cell(c.name), "", "", _day(c.birth_date),
                    labels.value(f"id_type.{c.id_type}"), _text(c.id_number),
                    labels.country(c.nationality), yes if c.foreign else no, "", "", *stay,
                ]
            )  # fmt: skip
    return buffer.getvalue()


def to_csv(records: Sequence[GuestRecord]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(_CSV_HEADER)
    for r in records:
        stay = (
            timestamp(r.check_in),
            r.expected_check_out.isoformat(),
            timestamp(r.checked_out_at) if r.checked_out_at else "",
        )
        writer.writerow(
            [
                r.id, "guest", _cell(r.homestay_name), _cell(r.room), _cell(r.name), r.sex,
                _cell(r.ethnicity), iso_day(r.birth_date), r.id_type, r.id_number,
                r.nationality, int(r.foreign), r.phone, _cell(r.address), *stay,
            ]
        )  # fmt: skip
        for c in r.companions:
            writer.writerow(
                [
                    r.id, "companion", _cell(r.homestay_name), _cell(r.room), _cell(c.name), "",
                    "", iso_day(c.birth_date), c.id_type, c.id_number, c.nationality,
                    int(c.foreign), "", "", *stay,
                ]
            )  # fmt: skip
    return buffer.getvalue()
