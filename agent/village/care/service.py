"""The care service (留守人员关爱): people in care, daily check-ins, missed check-in alerts.

Who may do what:
- Staff and admin register a person (the role guard is the web's), choosing a guardian (a
  family account: the migrant worker) and a carer (a staff account); the service checks both
  accounts' roles. Any staff member may record a visit: carers stand in for each other.
- A guardian sees only the people whose guardian they are; any other person is "not found".
- The check-in itself needs the person's PIN at the kiosk; wrong PINs are counted per person
  *before* the PIN is checked, and the ``pin_max_failures``-th pauses that person's check-in
  for ``pause_minutes`` (a right PIN while paused is refused too, so guessing gains nothing).

What is kept: the name only in a vault token, the PIN only as an argon2id hash with the
account passwords' parameters, a visit's note only in a vault token; none of them reaches a
log line, an audit row or a report. A care alert report carries the person's opaque reference,
the kind (elder/child), the day and the deadline: the county centre calls the village for a
name, so the broker and anyone reading the outbox learn nothing about who lives alone.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlite_utils
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from agent.accounts import AccountStore, Role, default_hasher
from agent.audit import AuditLog
from agent.errors import RecordNotFoundError, ValidationError
from agent.privacy import Vault
from agent.store.database import Database
from agent.village.care.records import (
    Alert,
    CheckIn,
    DayState,
    History,
    Kind,
    Person,
    PersonInput,
    Source,
    Today,
    check_kind,
    check_name,
    check_note,
    check_pin,
    parse_deadline,
)
from agent.village.care.schedule import CareSettings, deadline_at, is_due, local, local_day
from agent.village.care.schema import MIGRATIONS
from agent.village.family import AttemptsPausedError
from agent.village.service import ReportSink, utc_now

log = logging.getLogger(__name__)

AREA = "care"
REPORT_KIND = "care_alert"
KIOSK_ACTOR = "kiosk"
# A tick also looks at yesterday, so a kiosk that was off at a deadline still raises it.
CATCH_UP_DAYS = 1
MAX_PEOPLE = 1000
MAX_HISTORY_ROWS = 400

_PERSON_COLUMNS = "id, ref, personal, kind, guardian, carer, deadline, created_at"


def _ts(moment: datetime) -> str:
    # One fixed UTC format for stored times, so text comparison orders them.
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


class CareService:
    """People in care, their check-ins and the alerts for missed ones."""

    def __init__(
        self,
        database: Database,
        vault: Vault,
        audit: AuditLog,
        accounts: AccountStore,
        report: ReportSink,
        *,
        settings: CareSettings | None = None,
        clock: Callable[[], datetime] = utc_now,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self._database = database
        self._vault = vault
        self._audit = audit
        self._accounts = accounts
        self._report = report
        self.settings = settings or CareSettings()
        self._zone = self.settings.zone()
        self._clock = clock
        self._hasher = hasher or default_hasher()
        self._pause = timedelta(minutes=self.settings.pause_minutes)

    # -- the service protocol ------------------------------------------------------------------

    def migrate(self) -> None:
        self._database.migrate(AREA, MIGRATIONS)

    def tick(self) -> None:
        """Raise a care alert for every person whose deadline passed today (or yesterday, if
        the kiosk was off) without a check-in: once per person and day, the alert row and its
        report in one transaction."""
        now = self._clock()
        today = local_day(now, self._zone)
        raised = 0
        with self._database.write() as db:
            people = [self._person(row) for row in db.execute(
                f"SELECT {_PERSON_COLUMNS} FROM care_people ORDER BY id"  # noqa: S608
            ).fetchall()]  # fmt: skip
            for offset in range(CATCH_UP_DAYS, -1, -1):
                day = today - timedelta(days=offset)
                for person in people:
                    if self._raise_if_missed(db, person, day, now):
                        raised += 1
        if raised:
            log.warning("%d missed care check-ins raised", raised)

    def purge_expired(self) -> int:
        """Check-ins and alerts older than ``history_days``. The daily times an elder or child
        taps the kiosk are a map of when a home stands empty; the guardian and the carer look
        back weeks, not years, and each alert has reached the county already."""
        cutoff = (
            local_day(self._clock(), self._zone) - timedelta(days=self.settings.history_days)
        ).isoformat()
        with self._database.write() as db:
            checkins = db.execute("DELETE FROM care_checkins WHERE day < ?", [cutoff]).rowcount
            alerts = db.execute("DELETE FROM care_alerts WHERE day < ?", [cutoff]).rowcount
        return int(checkins) + int(alerts)

    # -- people (staff) ------------------------------------------------------------------------

    def register(self, data: PersonInput, *, actor: str) -> Person:
        name = check_name(data.name)
        kind = check_kind(data.kind)
        guardian = self._check_account(data.guardian, Role.FAMILY, "guardian")
        carer = self._check_account(data.carer, Role.STAFF, "carer")
        deadline = parse_deadline(data.deadline) if data.deadline.strip() else self.default_deadline
        check_pin(data.pin)
        pin_hash = self._hasher.hash(data.pin)
        now = self._clock()
        with self._database.write() as db:
            count = db.execute("SELECT COUNT(*) FROM care_people").fetchone()[0]
            if count >= MAX_PEOPLE:
                raise ValidationError("name", "care.too_many")
            cursor = db.execute(
                "INSERT INTO care_people (ref, personal, kind, guardian, carer, deadline,"
                " pin_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    "cp-" + secrets.token_hex(8),
                    self._vault.encrypt(json.dumps({"name": name}, ensure_ascii=False)),
                    kind.value,
                    guardian,
                    carer,
                    deadline.strftime("%H:%M"),
                    pin_hash,
                    _ts(now),
                ],
            )
            person_id = int(cursor.lastrowid or 0)
            self._audit.record(
                actor,
                "care.register",
                f"care_person:{person_id}",
                f"kind={kind.value} guardian={guardian} carer={carer}",
                db=db,
            )
            person = self._person_in(db, person_id)
        log.info("person %d taken into care", person_id)
        return person

    def set_pin(self, person_id: int, pin: str, *, actor: str) -> None:
        """A new PIN (an elder forgot theirs); lifts a pause."""
        check_pin(pin)
        pin_hash = self._hasher.hash(pin)
        with self._database.write() as db:
            self._person_in(db, person_id)
            db.execute("UPDATE care_people SET pin_hash = ? WHERE id = ?", [pin_hash, person_id])
            db.execute("DELETE FROM care_pin_backoff WHERE person_id = ?", [person_id])
            self._audit.record(actor, "care.pin_set", f"care_person:{person_id}", db=db)

    def remove(self, person_id: int, *, actor: str) -> None:
        """The person leaves care; their check-ins and alerts go with them."""
        with self._database.write() as db:
            self._person_in(db, person_id)
            db.execute("DELETE FROM care_people WHERE id = ?", [person_id])
            self._audit.record(actor, "care.remove", f"care_person:{person_id}", db=db)
        log.info("person %d left care", person_id)

    @property
    def default_deadline(self) -> time:
        return self.settings.default_deadline

    def people(self) -> list[Person]:
        """Everyone in care, by name (the kiosk's tiles)."""
        with self._database.read() as db:
            rows = db.execute(
                f"SELECT {_PERSON_COLUMNS} FROM care_people"  # noqa: S608
            ).fetchall()
        return sorted((self._person(row) for row in rows), key=lambda p: (p.name, p.id))

    def person(self, person_id: int) -> Person:
        with self._database.read() as db:
            return self._person_in(db, person_id)

    def today(self) -> list[Today]:
        """The carer's list: everyone's state today, missed first."""
        now = self._clock()
        with self._database.read() as db:
            rows = db.execute(
                f"SELECT {_PERSON_COLUMNS} FROM care_people"  # noqa: S608
            ).fetchall()
            lines = [self._today(db, self._person(row), now) for row in rows]
        order = {DayState.MISSED: 0, DayState.DUE: 1, DayState.NOT_DUE: 2, DayState.CHECKED_IN: 3}
        return sorted(lines, key=lambda line: (order[line.state], line.person.name))

    def history(self, person_id: int) -> History:
        """A person's recent check-ins and alerts (staff)."""
        with self._database.read() as db:
            return self._history(db, self._person_in(db, person_id))

    # -- guardians (family) --------------------------------------------------------------------

    def guarded_by(self, username: str) -> list[Today]:
        """The people whose guardian is ``username``, with their state today."""
        now = self._clock()
        with self._database.read() as db:
            rows = db.execute(
                f"SELECT {_PERSON_COLUMNS} FROM care_people"  # noqa: S608
                " WHERE guardian = ? ORDER BY id",
                [username],
            ).fetchall()
            return [self._today(db, self._person(row), now) for row in rows]

    def guardian_history(self, username: str, person_id: int) -> History:
        """One of ``username``'s people; any other person is not found (no hint it exists)."""
        with self._database.read() as db:
            person = self._person_in(db, person_id)
            if person.guardian is None or person.guardian != username:
                raise RecordNotFoundError("person_id", "care.person_not_found")
            return self._history(db, person)

    # -- check-ins -----------------------------------------------------------------------------

    def pin_paused(self, person_id: int) -> int:
        """Seconds until the person's PIN may be tried again; 0 when it may now."""
        with self._database.read() as db:
            return self._paused_for(db, person_id, self._clock())

    def check_in(self, person_id: int, pin: str, *, actor: str = KIOSK_ACTOR) -> CheckIn:
        """ "I am fine" at the kiosk. Raises RecordNotFoundError, AttemptsPausedError
        (``care.pin_paused``) or ValidationError (``care.pin_wrong``)."""
        with self._database.write() as db:
            self._person_in(db, person_id)
            pin_hash = str(
                db.execute("SELECT pin_hash FROM care_people WHERE id = ?", [person_id]).fetchone()[
                    0
                ]
            )
            self._count_attempt(db, person_id, self._clock())
        # The slow hash check runs outside the write lock.
        if not self._verify(pin_hash, pin):
            with self._database.write() as db:
                paused = self._paused_for(db, person_id, self._clock())
                self._audit.record(
                    actor,
                    "care.pin_failed",
                    f"care_person:{person_id}",
                    "paused" if paused else "",
                    db=db,
                )
            if paused:
                log.warning("check-in of person %d paused after wrong PINs", person_id)
                raise AttemptsPausedError("pin", "care.pin_paused", paused)
            raise ValidationError("pin", "care.pin_wrong")
        with self._database.write() as db:
            person = self._person_in(db, person_id)  # still there after the slow check
            db.execute("DELETE FROM care_pin_backoff WHERE person_id = ?", [person_id])
            return self._record_check_in(db, person, Source.KIOSK, actor, "")

    def record_visit(self, person_id: int, note: str, *, actor: str) -> CheckIn:
        """A carer's visit: it counts as the day's check-in."""
        note = check_note(note)
        with self._database.write() as db:
            person = self._person_in(db, person_id)
            check_in = self._record_check_in(db, person, Source.VISIT, actor, note)
            self._audit.record(actor, "care.visit", f"care_person:{person_id}", db=db)
        return check_in

    # -- internals -----------------------------------------------------------------------------

    def _record_check_in(
        self, db: sqlite_utils.Database, person: Person, source: Source, actor: str, note: str
    ) -> CheckIn:
        now = self._clock()
        day = local_day(now, self._zone)
        if source is Source.KIOSK:
            # Repeated taps the same day add nothing: the first check-in answers the day.
            row = db.execute(
                "SELECT day, at, source, actor, note FROM care_checkins"
                " WHERE person_id = ? AND day = ? AND source = ? ORDER BY at LIMIT 1",
                [person.id, day.isoformat(), source.value],
            ).fetchone()
            if row is not None:
                return self._check_in(row, person)
        db.execute(
            "INSERT INTO care_checkins (person_id, day, at, source, actor, note)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                person.id,
                day.isoformat(),
                _ts(now),
                source.value,
                actor,
                self._vault.encrypt(note) if note else "",
            ],
        )
        log.info("person %d checked in (%s)", person.id, source.value)
        return CheckIn(
            day, local(now, self._zone), source, actor, note, now > self._deadline(person, day)
        )

    def _raise_if_missed(
        self, db: sqlite_utils.Database, person: Person, day: date, now: datetime
    ) -> bool:
        deadline = self._deadline(person, day)
        if now < deadline or not is_due(person.created_at, day, person.deadline, self._zone):
            return False
        # Any check-in of the day, a late one too, says the person is fine: no alarm then.
        checked = db.execute(
            "SELECT 1 FROM care_checkins WHERE person_id = ? AND day = ? LIMIT 1",
            [person.id, day.isoformat()],
        ).fetchone()
        if checked is not None:
            return False
        cursor = db.execute(
            "INSERT OR IGNORE INTO care_alerts (person_id, day, deadline_at, raised_at)"
            " VALUES (?, ?, ?, ?)",
            [person.id, day.isoformat(), _ts(deadline), _ts(now)],
        )
        if cursor.rowcount != 1:
            return False  # raised already
        self._report(db, REPORT_KIND, self._alert_payload(person, day, deadline, now))
        return True

    def _alert_payload(
        self, person: Person, day: date, deadline: datetime, now: datetime
    ) -> dict[str, Any]:
        """No name, no account names, no PIN: see the module's docstring."""
        return {
            "person_ref": person.ref,
            "kind": person.kind.value,
            "date": day.isoformat(),
            "deadline": local(deadline, self._zone).isoformat(timespec="minutes"),
            "raised_at": _ts(now),
        }

    def _deadline(self, person: Person, day: date) -> datetime:
        return deadline_at(day, person.deadline, self._zone)

    def _today(self, db: sqlite_utils.Database, person: Person, now: datetime) -> Today:
        day = local_day(now, self._zone)
        deadline = self._deadline(person, day)
        row = db.execute(
            "SELECT MIN(at) FROM care_checkins WHERE person_id = ? AND day = ?",
            [person.id, day.isoformat()],
        ).fetchone()
        checked_at = _parse_ts(row[0]) if row and row[0] else None
        alerted = (
            db.execute(
                "SELECT 1 FROM care_alerts WHERE person_id = ? AND day = ?",
                [person.id, day.isoformat()],
            ).fetchone()
            is not None
        )
        if checked_at is not None:
            # A check-in after the deadline answers the day; the alert stays in the history.
            state = DayState.CHECKED_IN
        elif not is_due(person.created_at, day, person.deadline, self._zone):
            state = DayState.NOT_DUE
        elif now >= deadline:
            state = DayState.MISSED
        else:
            state = DayState.DUE
        return Today(
            person=person,
            day=day,
            deadline_at=local(deadline, self._zone),
            state=state,
            checked_in_at=local(checked_at, self._zone) if checked_at else None,
            alerted=alerted,
        )

    def _history(self, db: sqlite_utils.Database, person: Person) -> History:
        check_ins = tuple(
            self._check_in(row, person)
            for row in db.execute(
                "SELECT day, at, source, actor, note FROM care_checkins WHERE person_id = ?"
                " ORDER BY at DESC, id DESC LIMIT ?",
                [person.id, MAX_HISTORY_ROWS],
            ).fetchall()
        )
        alerts = tuple(
            Alert(
                day=date.fromisoformat(day),
                deadline_at=local(_parse_ts(deadline), self._zone),
                raised_at=local(_parse_ts(raised), self._zone),
            )
            for day, deadline, raised in db.execute(
                "SELECT day, deadline_at, raised_at FROM care_alerts WHERE person_id = ?"
                " ORDER BY day DESC LIMIT ?",
                [person.id, MAX_HISTORY_ROWS],
            ).fetchall()
        )
        return History(person, self._today(db, person, self._clock()), check_ins, alerts)

    def _check_in(self, row: Sequence[Any], person: Person) -> CheckIn:
        day_text, at_text, source, actor, note = row
        day = date.fromisoformat(day_text)
        at = _parse_ts(at_text)
        return CheckIn(
            day=day,
            at=local(at, self._zone),
            source=Source(source),
            actor=actor,
            note=self._vault.decrypt(note) if note else "",
            late=at > self._deadline(person, day),
        )

    def _count_attempt(self, db: sqlite_utils.Database, person_id: int, now: datetime) -> None:
        """Count one PIN attempt before the PIN is checked; raises AttemptsPausedError while
        the person's check-in is paused."""
        row = db.execute(
            "SELECT failures, last_attempt, paused_until FROM care_pin_backoff WHERE person_id = ?",
            [person_id],
        ).fetchone()
        if row is not None and row[2] is not None and _parse_ts(row[2]) > now:
            raise AttemptsPausedError("pin", "care.pin_paused", _seconds(_parse_ts(row[2]), now))
        # A pause that ended, or failures long ago, start the count afresh.
        fresh = row is None or row[2] is not None or _parse_ts(row[1]) <= now - self._pause
        failures = 1 if fresh else int(row[0]) + 1
        paused_until = (
            _ts(now + self._pause) if failures >= self.settings.pin_max_failures else None
        )
        db.execute(
            "INSERT INTO care_pin_backoff (person_id, failures, last_attempt, paused_until)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (person_id) DO UPDATE SET"
            " failures = excluded.failures, last_attempt = excluded.last_attempt,"
            " paused_until = excluded.paused_until",
            [person_id, failures, _ts(now), paused_until],
        )

    @staticmethod
    def _paused_for(db: sqlite_utils.Database, person_id: int, now: datetime) -> int:
        row = db.execute(
            "SELECT paused_until FROM care_pin_backoff WHERE person_id = ?", [person_id]
        ).fetchone()
        if row is None or row[0] is None or _parse_ts(row[0]) <= now:
            return 0
        return _seconds(_parse_ts(row[0]), now)

    def _verify(self, pin_hash: str, pin: str) -> bool:
        try:
            return self._hasher.verify(pin_hash, pin)
        except VerifyMismatchError:
            return False
        except (VerificationError, InvalidHashError):
            log.warning("a stored care PIN hash could not be checked")
            return False

    def _check_account(self, username: str, role: Role, field: str) -> str:
        name = username.strip().lower()
        account = self._accounts.get_user(name) if name else None
        if account is None or account.role is not role:
            raise ValidationError(field, f"care.{field}_invalid")
        return name

    def _person_in(self, db: sqlite_utils.Database, person_id: int) -> Person:
        row = db.execute(
            f"SELECT {_PERSON_COLUMNS} FROM care_people WHERE id = ?",  # noqa: S608
            [person_id],
        ).fetchone()
        if row is None:
            raise RecordNotFoundError("person_id", "care.person_not_found")
        return self._person(row)

    def _person(self, row: Sequence[Any]) -> Person:
        person_id, ref, personal, kind, guardian, carer, deadline, created_at = row
        opened = json.loads(self._vault.decrypt(personal))
        return Person(
            id=int(person_id),
            ref=str(ref),
            name=str(opened["name"]),
            kind=Kind(kind),
            guardian=guardian,
            carer=carer,
            deadline=time.fromisoformat(deadline),
            created_at=_parse_ts(created_at),
        )


def _seconds(until: datetime, now: datetime) -> int:
    return max(1, int((until - now).total_seconds()) + 1)
