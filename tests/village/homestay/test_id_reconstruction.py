"""An attacker tries to rebuild guests' ID numbers from what is kept or shown masked.

Nothing stored in clear and nothing returned masked may narrow any guest's or companion's ID
number below ``BOUND`` candidates. The attacker here is generous to itself: it knows the full
6-digit area code (or the province and nationality code of a foreigner's card), the sex, the
document type and the letters of a document's type prefix; it takes every date it finds near a
person as a guess at the birth date, and its count is the smallest of its guesses that still
holds the true number. Counting is analytic (dates as numpy arrays, check characters by residue
classes), never by listing numbers.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient

from agent.village.identity import check_character
from tests.fixtures.browser import WebParts, build_web_context
from web_ui.app import create_app
from web_ui.security import CSRF_HEADER, SESSION_COOKIE

BOUND = 10**6
EARLIEST = date(1900, 1, 1)
HOST, POLICE = "wang.host", "li.police"
# A fixed vault key makes the blind indexes (hex) the same on every run, so a chance digit run
# inside one can never make the byte scan flaky.
FIXED_KEY = bytes(range(32))
_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_CHECKS = "10X98765432"
_EIGHTEEN = {"resident_id", "foreign_permanent_id"}
_DATE_PATTERNS = (
    re.compile(r"(?<!\d)(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})(?!\d)"),
    re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)"),
    re.compile(r"(?<!\d)(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})(?!\d)"),
)


def eighteen(head6: str, birth: date, sequence: str) -> str:
    body = head6 + birth.strftime("%Y%m%d") + sequence
    return body + check_character(body)


@dataclass(frozen=True)
class Person:
    """The truth about one guest or companion, which the attacker is scored against."""

    name: str
    id_type: str
    number: str
    birth: date
    nationality: str = "CHN"
    sex: str | None = None  # companions have none on record
    ethnicity: str = ""
    address: str = ""


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def party_dates() -> tuple[str, date]:
    """A check-in yesterday (kiosk time): registrations may be entered a few days late."""
    check_in = (datetime.now() - timedelta(days=1)).replace(second=0, microsecond=0)
    return check_in.isoformat(timespec="minutes"), check_in.date()


CHECK_IN, CHECK_IN_DATE = party_dates()
# Turns 18 on the day of check-in: the edge of two age bands.
EIGHTEEN_TODAY = _years_before(CHECK_IN_DATE, 18)

PARTIES: list[tuple[Person, list[Person]]] = [
    (
        Person("张三丰", "resident_id", eighteen("330106", date(1990, 3, 7), "123"),
               date(1990, 3, 7), sex="male", ethnicity="汉族",
               address="浙江省杭州市西湖区文三路100号"),
        [
            Person("张小宝", "resident_id", eighteen("330106", date(2015, 6, 1), "456"),
                   date(2015, 6, 1)),
            Person("王奶奶", "resident_id", eighteen("330106", date(1942, 2, 28), "208"),
                   date(1942, 2, 28)),
        ],
    ),
    (
        Person("Anna Smith", "foreign_permanent_id",
               eighteen("911840", date(1985, 11, 20), "042"), date(1985, 11, 20),
               nationality="USA", sex="female", address="上海市浦东新区世纪大道1号"),
        [Person("John Smith", "foreign_permanent_id", "USA123456789012", date(1988, 1, 2),
                nationality="USA")],
    ),
    (
        Person("陈美玲", "hk_macao_permit", "H12345678", date(1970, 1, 15), sex="female",
               address="香港特别行政区九龙弥敦道1号"),
        [Person("林志明", "taiwan_permit", "12345678", date(1999, 9, 9))],
    ),
    (
        Person("李四", "passport", "E12345678", date(1951, 5, 5), sex="male", ethnicity="汉",
               address="北京市朝阳区幸福路1号"),
        [Person("Maria Lopez", "passport", "PAB123987", date(1979, 5, 5), nationality="ESP")],
    ),
    (
        Person("赵小龙", "resident_id", eighteen("110105", EIGHTEEN_TODAY, "017"),
               EIGHTEEN_TODAY, sex="male", ethnicity="回族", address="溪头村12号"),
        [],
    ),
]  # fmt: skip


def registration_body(guest: Person, companions: list[Person]) -> dict[str, Any]:
    check_out = (CHECK_IN_DATE + timedelta(days=2)).isoformat()
    return {
        "name": guest.name,
        "sex": guest.sex,
        "ethnicity": guest.ethnicity,
        "birth_date": guest.birth.isoformat(),
        "id_type": guest.id_type,
        "id_number": guest.number,
        "phone": "13912345678",
        "address": guest.address,
        "room": "201",
        "check_in": CHECK_IN,
        "expected_check_out": check_out,
        "nationality": guest.nationality,
        "companions": [
            {
                "name": c.name,
                "id_type": c.id_type,
                "id_number": c.number,
                "birth_date": c.birth.isoformat(),
                "nationality": c.nationality,
            }
            for c in companions
        ],
    }


# -- the attacker ----------------------------------------------------------------------------


def _date_array(first: date, last: date) -> npt.NDArray[np.datetime64]:
    if last < first:
        return np.array([], dtype="datetime64[D]")
    return np.arange(np.datetime64(first), np.datetime64(last + timedelta(days=1)))


def _date_digits(dates: npt.NDArray[np.datetime64]) -> npt.NDArray[np.int64]:
    """Eight digit columns YYYYMMDD per date."""
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    text = years * 10000 + months * 100 + days
    return np.stack([(text // 10 ** (7 - i)) % 10 for i in range(8)], axis=1)


def age_band_dates(band: str, check_in: date) -> tuple[date, date]:
    """The birth dates whose age on ``check_in`` falls in a band such as ``30-39`` or ``70+``."""
    low_text, _, high_text = band.replace("+", "-").partition("-")
    low = int(low_text)
    last = _years_before(check_in, low)
    if high_text:
        first = _years_before(check_in, int(high_text) + 1) + timedelta(days=1)
    else:
        first = EARLIEST
    return max(first, EARLIEST), last


@dataclass
class Seen:
    """What the attacker saw of one person in one place."""

    where: str
    person: Person
    masked: str
    check_in: date | None
    age_band: str | None = None
    dates: set[date] = field(default_factory=set)


def _date_hypotheses(seen: Seen) -> Iterator[tuple[date, date]]:
    latest = (seen.check_in or date.today()) + timedelta(days=2)
    yield EARLIEST, latest
    for found in seen.dates:
        yield found, found
    if seen.age_band and seen.check_in:
        # The band was computed on the kiosk's local date of check-in; a UTC time shown may
        # be a day off, so each neighbouring day is a guess of its own.
        for shift in (-1, 0, 1):
            yield age_band_dates(seen.age_band, seen.check_in + timedelta(days=shift))


def _count_eighteen(seen: Seen) -> int:
    truth, masked = seen.person.number, seen.masked
    assert len(masked) == 18, seen
    known = {i: ch for i, ch in enumerate(masked) if ch != "*"}
    for i, ch in known.items():
        assert truth[i] == ch, f"{seen.where}: the mask shows a wrong character"
    # Worst case: the area code (or province and nationality code) is known in full.
    known.update({i: truth[i] for i in range(6)})
    sequences = np.arange(1000)
    sequence_digits = np.stack([sequences // 100, sequences // 10 % 10, sequences % 10], axis=1)
    keep = sequence_digits[:, 2] % 2 == int(truth[16]) % 2  # the sex is known
    for offset in range(3):
        if 14 + offset in known:
            keep &= sequence_digits[:, offset] == int(known[14 + offset])
    sequence_digits = sequence_digits[keep]
    head = sum(int(truth[i]) * int(_WEIGHTS[i]) for i in range(6))
    best: int | None = None
    for first, last in _date_hypotheses(seen):
        if not first <= seen.person.birth <= last:
            continue
        digits = _date_digits(_date_array(first, last))
        keep_dates = np.ones(len(digits), dtype=bool)
        for offset in range(8):
            if 6 + offset in known:
                keep_dates &= digits[:, offset] == int(known[6 + offset])
        digits = digits[keep_dates]
        if 17 in known:
            target = _CHECKS.index(known[17])
            date_res = np.bincount((digits @ _WEIGHTS[6:14]) % 11, minlength=11)
            seq_res = np.bincount((sequence_digits @ _WEIGHTS[14:17]) % 11, minlength=11)
            count = sum(
                int(date_res[a]) * int(seq_res[b])
                for a in range(11)
                for b in range(11)
                if (head + a + b) % 11 == target
            )
        else:
            count = len(digits) * len(sequence_digits)
        best = count if best is None else min(best, count)
    assert best is not None
    return best


def _count_other(seen: Seen) -> int:
    truth, masked = seen.person.number, seen.masked
    assert len(masked) == len(truth), seen
    # Worst case: the letters a document number starts with (its type or nationality) are known.
    lead = len(truth) - len(truth.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    count = 1
    for i, ch in enumerate(masked):
        if ch != "*":
            assert truth[i] == ch, f"{seen.where}: the mask shows a wrong character"
        elif i >= lead:
            count *= 10 if truth[i].isdigit() else 26
    return count


def candidates(seen: Seen) -> int:
    if seen.person.id_type in _EIGHTEEN and len(seen.person.number) == 18:
        return _count_eighteen(seen)
    return _count_other(seen)


def dates_in(text: str) -> set[date]:
    found: set[date] = set()
    for pattern in _DATE_PATTERNS:
        for match in pattern.finditer(text):
            a, b, c = (int(part) for part in match.groups())
            year, month, day = (c, b, a) if c > 31 else (a, b, c)
            for y, m, d in {(year, month, day), (year, day, month)}:
                with contextlib.suppress(ValueError):
                    found.add(date(y, m, d))
    return found


def _texts(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def assert_above_bound(views: Iterable[Seen]) -> int:
    counted = [(candidates(seen), seen) for seen in views]
    assert counted, "the attacker saw nobody: the test looked in the wrong place"
    weak = [f"{s.where}: {s.person.name} ({s.person.id_type}) {n}" for n, s in counted if n < BOUND]
    assert weak == [], "ID numbers narrowed below 10^6 candidates:\n" + "\n".join(weak)
    return min(n for n, _ in counted)


# -- the kiosk under attack ------------------------------------------------------------------


@dataclass
class Kiosk:
    parts: WebParts
    host: TestClient
    police: TestClient
    guests: dict[int, tuple[Person, list[Person]]]
    responses: list[dict[str, Any]]

    @property
    def db_path(self) -> Path:
        return self.parts.context.database.path


def _signed_in(app: Any, parts: WebParts, username: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    accounts = parts.context.accounts
    grant = accounts.start_session(accounts.get_user(username))
    client.cookies.set(SESSION_COOKIE, grant.token)
    client.headers[CSRF_HEADER] = grant.session.csrf_token
    return client


@pytest.fixture
def kiosk(tmp_path: Path) -> Iterator[Kiosk]:
    key = tmp_path / "secrets" / "personal-data.key"
    key.parent.mkdir(mode=0o700)
    key.write_bytes(base64.b64encode(FIXED_KEY) + b"\n")
    key.chmod(0o600)
    parts = build_web_context(tmp_path)
    parts.add_user(HOST, "host")
    parts.add_user(POLICE, "police")
    homestay = parts.context.homestays.create_homestay("竹林民宿", "竹林村 3 组", 5, HOST)
    app = create_app(parts.context)
    host, police = _signed_in(app, parts, HOST), _signed_in(app, parts, POLICE)
    guests: dict[int, tuple[Person, list[Person]]] = {}
    responses: list[dict[str, Any]] = []
    for guest, companions in PARTIES:
        response = host.post(
            f"/api/homestays/{homestay.id}/guests", json=registration_body(guest, companions)
        )
        assert response.status_code == 201, response.text
        guests[response.json()["id"]] = (guest, companions)
        responses.append(response.json())
    checked_out = host.post(f"/api/guests/{next(iter(guests))}/checkout")
    assert checked_out.status_code == 200, checked_out.text
    responses.append(checked_out.json())
    yield Kiosk(parts, host, police, guests, responses)
    parts.context.database.close()


def _people(kiosk: Kiosk) -> Iterator[tuple[int, int | None, Person]]:
    for guest_id, (guest, companions) in kiosk.guests.items():
        yield guest_id, None, guest
        for position, companion in enumerate(companions):
            yield guest_id, position, companion


def _hidden_runs(person: Person, masked_by: str, length: int = 8) -> set[str]:
    hidden = "".join(ch if masked_by[i] == "*" else "\x00" for i, ch in enumerate(person.number))
    return {
        hidden[i : i + length]
        for i in range(len(hidden) - length + 1)
        if "\x00" not in hidden[i : i + length]
    }


def _birth_date_spellings(day: date) -> set[str]:
    return {
        day.isoformat(),
        day.strftime("%Y%m%d"),
        day.strftime("%Y/%m/%d"),
        day.strftime("%Y.%m.%d"),
        day.strftime("%d/%m/%Y"),
        day.strftime("%m/%d/%Y"),
        f"{day.year}/{day.month}/{day.day}",
        f"{day.year}-{day.month}-{day.day}",
        f"{day.year}年{day.month}月{day.day}日",
        day.strftime("%Y年%m月%d日"),
    }


# -- (a) the database file -------------------------------------------------------------------


def _clear_rows(kiosk: Kiosk, table: str) -> list[dict[str, Any]]:
    """Every column of a table except sealed vault tokens and keyed blind indexes."""
    with kiosk.parts.context.database.read() as db:
        rows = [dict(row) for row in db.query(f"SELECT * FROM {table} ORDER BY id")]
    for row in rows:
        for column in [c for c in row if c == "personal" or c.endswith("_index")]:
            del row[column]
    return rows


def _database_views(kiosk: Kiosk) -> Iterator[tuple[Person, dict[str, Any], dict[str, Any]]]:
    guests = {row["id"]: row for row in _clear_rows(kiosk, "guests")}
    companions: dict[tuple[int, int], dict[str, Any]] = {
        (row["guest_id"], row["position"]): row for row in _clear_rows(kiosk, "guest_companions")
    }
    for guest_id, position, person in _people(kiosk):
        guest_row = guests[guest_id]
        yield person, guest_row, guest_row if position is None else companions[(guest_id, position)]


def _raw_database(kiosk: Kiosk) -> bytes:
    path = kiosk.db_path
    return b"".join(
        p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists()
    )


def test_the_database_file_holds_no_birth_date_nor_hidden_digits(kiosk: Kiosk) -> None:
    raw = _raw_database(kiosk)
    assert "张*丰".encode() in raw, "the scan reads the bytes the registrations are in"
    for person, _, row in _database_views(kiosk):
        for spelling in _birth_date_spellings(person.birth):
            assert spelling.encode() not in raw, f"{person.name}: birth date {spelling} in clear"
        for run in _hidden_runs(person, str(row["id_number_masked"])):
            assert run.encode() not in raw, f"{person.name}: hidden digits {run} in the file"


def test_the_clear_columns_do_not_give_the_numbers_away(kiosk: Kiosk) -> None:
    views: list[Seen] = []
    for person, guest_row, row in _database_views(kiosk):
        text = " ".join(str(value) for value in row.values())
        views.append(
            Seen(
                where=f"database {'guests' if row is guest_row else 'guest_companions'}",
                person=person,
                masked=str(row["id_number_masked"]),
                check_in=date.fromisoformat(guest_row["check_in_date"]),
                age_band=row.get("age_band"),
                dates=dates_in(text),
            )
        )
    assert_above_bound(views)


# -- (b) masked outputs ----------------------------------------------------------------------


def _json_views(kiosk: Kiosk, where: str, records: list[dict[str, Any]]) -> Iterator[Seen]:
    for record in records:
        assert record["masked"] is True, where
        guest, companions = kiosk.guests[record["id"]]
        check_in = datetime.fromisoformat(record["check_in"].replace("Z", "+00:00")).date()
        shared = {k: v for k, v in record.items() if k != "companions"}
        yield Seen(
            where, guest, record["id_number"], check_in, record.get("age_band"),
            dates_in(" ".join(_texts(shared))),
        )  # fmt: skip
        for companion, shown in zip(companions, record["companions"], strict=True):
            yield Seen(
                f"{where} companion", companion, shown["id_number"], check_in,
                shown.get("age_band"), dates_in(" ".join(_texts(shown))),
            )  # fmt: skip


def test_masked_api_answers_do_not_give_the_numbers_away(kiosk: Kiosk) -> None:
    views = list(_json_views(kiosk, "check-in/check-out answers", kiosk.responses))
    for client, name in ((kiosk.police, "police"), (kiosk.host, "host")):
        listed = client.get("/api/guests")
        assert listed.status_code == 200, listed.text
        assert len(listed.json()) == len(kiosk.guests)
        views += _json_views(kiosk, f"GET /api/guests as {name}", listed.json())
    assert_above_bound(views)


def test_search_results_do_not_give_the_numbers_away(kiosk: Kiosk) -> None:
    views: list[Seen] = []
    for guest, _ in kiosk.guests.values():
        found = kiosk.police.post("/api/guests/search", json={"id_number": guest.number})
        assert found.status_code == 200, found.text
        assert len(found.json()) == 1
        views += _json_views(kiosk, "POST /api/guests/search", found.json())
    assert_above_bound(views)


_ROW = re.compile(r'<tr data-guest="(\d+)">(.*?)</tr>', re.S)
_MASKED_NUMBER = re.compile(r"[0-9A-Z*]*\*[0-9A-Z*]*")


def _page_views(kiosk: Kiosk, where: str, page: str) -> Iterator[Seen]:
    rows = _ROW.findall(page)
    assert rows, f"{where} lists no guest"
    for guest_id, row in rows:
        guest, _ = kiosk.guests[int(guest_id)]
        text = html.unescape(re.sub(r"<[^>]+>", " ", row))
        shown = [m for m in _MASKED_NUMBER.findall(text) if len(m) == len(guest.number)]
        masked = shown[0] if shown else "*" * len(guest.number)
        yield Seen(where, guest, masked, CHECK_IN_DATE, None, dates_in(text))


def test_masked_pages_do_not_give_the_numbers_away(kiosk: Kiosk) -> None:
    views = list(_page_views(kiosk, "police list", kiosk.police.get("/police/registrations").text))
    host_page = kiosk.host.get("/host/homestays").text
    views += _page_views(kiosk, "host homestays", host_page)
    for guest, _ in kiosk.guests.values():
        posted = kiosk.police.post(
            "/police/registrations/search",
            data={"csrf_token": kiosk.police.headers[CSRF_HEADER], "id_number": guest.number},
        )
        assert posted.status_code == 303, posted.text
        results = kiosk.police.get(posted.headers["location"]).text
        views += _page_views(kiosk, "police search results", results)
    assert_above_bound(views)


def test_the_attacker_recovers_numbers_when_the_birth_date_and_the_tail_show() -> None:
    """The attacker works: under the old mask (first 3 and last 4 shown) with the birth date
    in clear, it gets down to the one true number."""
    guest = PARTIES[0][0]
    old_mask = guest.number[:3] + "*" * 11 + guest.number[14:]
    seen = Seen("old format", guest, old_mask, CHECK_IN_DATE, None, {guest.birth})
    assert candidates(seen) == 1
    # The tail alone (no birth date) still leaves only a few thousand.
    assert candidates(Seen("old list", guest, old_mask, CHECK_IN_DATE)) < 10_000


def test_json_is_parsed_for_dates() -> None:
    assert date(1990, 3, 7) in dates_in(json.dumps({"b": "1990-03-07"}))
    assert date(1990, 3, 7) in dates_in("出生 1990年3月7日")
    assert date(1990, 3, 7) in dates_in("19900307")
