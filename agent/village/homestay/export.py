"""The police's CSV export of registrations."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

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
