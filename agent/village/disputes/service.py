"""The dispute service: filing at the kiosk, mediation by village staff, statistics.

Who may do what is decided here, never in a route:
- anyone at the kiosk screen files a dispute (the web layer says where the request came from);
- staff and administrators take a recorded dispute (recorded -> mediating): the taker becomes
  its mediator;
- after that only its mediator, or an administrator, changes its state, and only along
  ``records.TRANSITIONS``;
- police read lists, records and statistics with every name and phone number masked.

Every change is one write transaction holding the dispute's new state, a history row, an audit
entry and a ``dispute`` report for the county (reference, category, states and times: no names,
phones, description or notes), so none of them exists without the others.

Retention: a closed dispute (resolved, judicial, transferred) is kept ``retention_days``
(default three years, the span a mediation agreement can be revisited in) after it closed,
then deleted with its parties and history. Open disputes are never purged.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlite_utils
from pydantic import BaseModel, ConfigDict, Field

from agent.accounts import Role
from agent.audit import AuditLog
from agent.errors import NotAllowedError, RecordNotFoundError, ValidationError
from agent.privacy import Vault, mask_name, mask_phone
from agent.store.database import Database
from agent.village.disputes.records import (
    MAX_DEPARTMENT,
    MAX_NOTE,
    MAX_PERIOD_DAYS,
    OUTCOMES,
    TERMINAL,
    Actor,
    Category,
    Change,
    Dispute,
    DisputeInput,
    Party,
    Period,
    State,
    Statistics,
    check_transition,
)
from agent.village.disputes.schema import AREA, MIGRATIONS
from agent.village.service import ReportSink, ServiceParts

log = logging.getLogger(__name__)

REPORT_KIND = "dispute"
KIOSK_ACTOR = "kiosk"
SYSTEM_ACTOR = "system"
# No look-alikes (0/O, 1/I/L): a villager reads the reference out over the phone.
REFERENCE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
REFERENCE_LENGTH = 6
REFERENCE_PREFIX = "JF-"
MEDIATORS = frozenset({Role.STAFF, Role.ADMIN})
READERS = frozenset({Role.STAFF, Role.ADMIN, Role.POLICE})
LIST_LIMIT = 500


class DisputeSettings(BaseModel):
    """``[services.disputes]`` in the kiosk's config."""

    model_config = ConfigDict(extra="forbid")

    retention_days: int = Field(default=1095, ge=30, le=36500)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _local_midnight(day: date) -> datetime:
    """The start of ``day`` on the kiosk's clock, as an aware time."""
    return datetime.combine(day, time.min).astimezone()


class DisputeService:
    def __init__(
        self,
        database: Database,
        vault: Vault,
        audit: AuditLog,
        report: ReportSink,
        *,
        settings: DisputeSettings | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._database = database
        self._vault = vault
        self._audit = audit
        self._report = report
        self._settings = settings or DisputeSettings()
        self._clock = clock

    # -- the runtime's side --------------------------------------------------------------------

    def migrate(self) -> None:
        self._database.migrate(AREA, MIGRATIONS)

    def tick(self) -> None:
        """Mediation has no deadline the kiosk enforces."""

    def purge_expired(self) -> int:
        cutoff = _stamp(self._clock() - timedelta(days=self._settings.retention_days))
        with self._database.write() as db:
            ids = [
                int(row[0])
                for row in db.execute(
                    "SELECT id FROM disputes WHERE closed_at IS NOT NULL AND closed_at <= ?",
                    [cutoff],
                ).fetchall()
            ]
            for dispute_id in ids:
                db.execute("DELETE FROM dispute_parties WHERE dispute_id = ?", [dispute_id])
                db.execute("DELETE FROM dispute_changes WHERE dispute_id = ?", [dispute_id])
                db.execute("DELETE FROM disputes WHERE id = ?", [dispute_id])
            if ids:
                self._audit.record(
                    SYSTEM_ACTOR, "dispute.purge", "disputes", f"rows={len(ids)}", db=db
                )
        if ids:
            log.info("purged %d closed disputes past retention", len(ids))
        return len(ids)

    # -- filing (the kiosk screen) -------------------------------------------------------------

    def file(self, dispute: DisputeInput) -> Dispute:
        """Record a dispute typed at the kiosk; returns it with its new reference."""
        checked = dispute.checked()
        now = self._clock()
        with self._database.write() as db:
            reference = self._new_reference(db)
            inserted = (
                db.table("disputes")
                .insert(
                    {
                        "reference": reference,
                        "category": checked.category,
                        "description": checked.description,
                        "state": State.RECORDED.value,
                        "mediator": "",
                        "department": "",
                        "created_at": _stamp(now),
                        "updated_at": _stamp(now),
                        "closed_at": None,
                    }
                )
                .last_rowid
            )
            assert inserted is not None
            dispute_id = int(inserted)
            for position, party in enumerate(checked.parties):
                db.table("dispute_parties").insert(
                    {
                        "dispute_id": dispute_id,
                        "position": position,
                        "sealed": self._vault.encrypt(
                            json.dumps(
                                {"name": party.name, "phone": party.phone}, ensure_ascii=False
                            )
                        ),
                        "name_masked": mask_name(party.name),
                        "phone_masked": mask_phone(party.phone) if party.phone else "",
                    }
                )
            self._change(db, dispute_id, None, State.RECORDED, KIOSK_ACTOR, now, "", "")
            self._audit.record(KIOSK_ACTOR, "dispute.file", f"dispute:{dispute_id}", db=db)
            record = self._load(db, dispute_id, full_names=False)
            self._report(db, REPORT_KIND, self._payload(record, None, now))
        log.info("dispute %s recorded", reference)
        return record

    # -- mediation -----------------------------------------------------------------------------

    def change_state(
        self,
        dispute_id: int,
        wanted: State,
        *,
        actor: Actor,
        department: str = "",
        note: str = "",
    ) -> Dispute:
        """Move a dispute along the state machine.

        recorded -> mediating is taking the dispute: any staff member or administrator may,
        and becomes its mediator. Every other change is for its mediator or an administrator.
        Raises NotAllowedError for anyone else, ValidationError for an illegal change or bad
        input; nothing changes then.
        """
        if actor.role not in MEDIATORS:
            raise NotAllowedError("disputes.not_staff")
        department = " ".join(department.split())
        note = note.strip()
        if wanted is State.TRANSFERRED and not department:
            raise ValidationError("department", "disputes.department_required")
        if len(department) > MAX_DEPARTMENT:
            raise ValidationError("department", "disputes.department_too_long")
        if len(note) > MAX_NOTE:
            raise ValidationError("note", "disputes.note_too_long")
        if wanted is not State.TRANSFERRED:
            department = ""
        now = self._clock()
        with self._database.write() as db:
            row = db.execute(
                "SELECT state, mediator FROM disputes WHERE id = ?", [dispute_id]
            ).fetchone()
            if row is None:
                raise RecordNotFoundError("dispute_id", "disputes.not_found")
            current, mediator = State(row[0]), str(row[1])
            taking = current is State.RECORDED
            if not taking and actor.role is not Role.ADMIN and actor.username != mediator:
                raise NotAllowedError("disputes.not_mediator")
            check_transition(current, wanted)
            if taking:
                mediator = actor.username
            closed_at = _stamp(now) if wanted in TERMINAL else None
            db.execute(
                "UPDATE disputes SET state = ?, mediator = ?, department = ?, updated_at = ?,"
                " closed_at = ? WHERE id = ? AND state = ?",
                [wanted.value, mediator, department, _stamp(now), closed_at, dispute_id,
                 current.value],
            )  # fmt: skip
            self._change(db, dispute_id, current, wanted, actor.username, now, department, note)
            self._audit.record(
                actor.username,
                "dispute.take" if taking else "dispute.state",
                f"dispute:{dispute_id}",
                f"{current.value}->{wanted.value}",
                db=db,
            )
            record = self._load(db, dispute_id, full_names=False)
            self._report(db, REPORT_KIND, self._payload(record, current, now))
        log.info("dispute %d: %s -> %s", dispute_id, current.value, wanted.value)
        return record

    # -- reading -------------------------------------------------------------------------------

    def list(
        self, *, actor: Actor, state: State | None = None, category: Category | None = None
    ) -> list[Dispute]:
        """Newest first, names and phones masked (a list is for finding, not reading)."""
        self._require_reader(actor)
        sql = "SELECT id FROM disputes"
        where, params = [], []
        if state is not None:
            where.append("state = ?")
            params.append(state.value)
        if category is not None:
            where.append("category = ?")
            params.append(category.value)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY id DESC LIMIT {LIST_LIMIT}"
        with self._database.read() as db:
            ids = [int(row[0]) for row in db.execute(sql, params).fetchall()]
            return [self._load(db, dispute_id, full_names=False) for dispute_id in ids]

    def get(self, dispute_id: int, *, actor: Actor) -> Dispute:
        """One dispute with its history. Staff and administrators (who mediate) read the
        parties' names in full, which is audited; police read them masked. Phone numbers are
        always masked on screen."""
        self._require_reader(actor)
        full = actor.role in MEDIATORS
        if not full:
            with self._database.read() as db:
                return self._load(db, dispute_id, full_names=False)
        with self._database.write() as db:
            record = self._load(db, dispute_id, full_names=True)
            self._audit.record(actor.username, "dispute.view", f"dispute:{dispute_id}", db=db)
        return record

    def statistics(self, start: date, end: date, *, actor: Actor) -> Statistics:
        """Counts of the period ``start``..``end`` (kiosk dates, both included).

        A dispute counts under the last outcome (resolved, continuing, judicial,
        transferred) recorded for it inside the period, once; 化解率 is resolved divided by
        the disputes counted. ``filed`` is the disputes recorded in the period.
        """
        self._require_reader(actor)
        if end < start:
            raise ValidationError("date_to", "disputes.range_reversed")
        if (end - start).days > MAX_PERIOD_DAYS:
            raise ValidationError("date_to", "disputes.range_too_long")
        low = _stamp(_local_midnight(start))
        high = _stamp(_local_midnight(end + timedelta(days=1)))
        outcomes = tuple(s.value for s in OUTCOMES)
        with self._database.read() as db:
            filed = int(
                db.execute(
                    "SELECT COUNT(*) FROM disputes WHERE created_at >= ? AND created_at < ?",
                    [low, high],
                ).fetchone()[0]
            )
            rows = db.execute(
                "SELECT c.to_state, COUNT(*) FROM dispute_changes c"
                " JOIN (SELECT dispute_id, MAX(id) AS last FROM dispute_changes"
                "  WHERE at >= ? AND at < ? AND to_state IN (?, ?, ?, ?) GROUP BY dispute_id) l"
                " ON c.id = l.last GROUP BY c.to_state",
                [low, high, *outcomes],
            ).fetchall()
        counts = {state: 0 for state in OUTCOMES}
        for state, count in rows:
            counts[State(state)] = int(count)
        return Statistics(Period(start, end), filed, counts)

    # -- internals -----------------------------------------------------------------------------

    @staticmethod
    def _require_reader(actor: Actor) -> None:
        if actor.role not in READERS:
            raise NotAllowedError("disputes.not_staff")

    @staticmethod
    def _new_reference(db: sqlite_utils.Database) -> str:
        while True:
            code = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))
            reference = REFERENCE_PREFIX + code
            if db.execute("SELECT 1 FROM disputes WHERE reference = ?", [reference]).fetchone():
                continue
            return reference

    @staticmethod
    def _change(
        db: sqlite_utils.Database,
        dispute_id: int,
        from_state: State | None,
        to_state: State,
        actor: str,
        at: datetime,
        department: str,
        note: str,
    ) -> None:
        db.table("dispute_changes").insert(
            {
                "dispute_id": dispute_id,
                "from_state": from_state.value if from_state else None,
                "to_state": to_state.value,
                "actor": actor,
                "at": _stamp(at),
                "department": department,
                "note": note,
            }
        )

    def _load(self, db: sqlite_utils.Database, dispute_id: int, *, full_names: bool) -> Dispute:
        row = db.execute(
            "SELECT id, reference, category, description, state, mediator, department,"
            " created_at, updated_at, closed_at FROM disputes WHERE id = ?",
            [dispute_id],
        ).fetchone()
        if row is None:
            raise RecordNotFoundError("dispute_id", "disputes.not_found")
        parties = []
        for sealed, name_masked, phone_masked in db.execute(
            "SELECT sealed, name_masked, phone_masked FROM dispute_parties"
            " WHERE dispute_id = ? ORDER BY position",
            [dispute_id],
        ).fetchall():
            name = str(name_masked)
            if full_names:
                name = str(json.loads(self._vault.decrypt(str(sealed)))["name"])
            parties.append(Party(name, str(phone_masked)))
        history = tuple(
            Change(
                State(from_state) if from_state else None,
                State(to_state),
                str(actor),
                datetime.fromisoformat(str(at)),
                str(department),
                str(note),
            )
            for from_state, to_state, actor, at, department, note in db.execute(
                "SELECT from_state, to_state, actor, at, department, note FROM dispute_changes"
                " WHERE dispute_id = ? ORDER BY id",
                [dispute_id],
            ).fetchall()
        )
        created = _moment(row[7])
        updated = _moment(row[8])
        assert created is not None and updated is not None
        return Dispute(
            id=int(row[0]),
            reference=str(row[1]),
            category=Category(row[2]),
            description=str(row[3]),
            state=State(row[4]),
            mediator=str(row[5]),
            department=str(row[6]),
            created_at=created,
            updated_at=updated,
            closed_at=_moment(row[9]),
            parties=tuple(parties),
            history=history,
            full_names=full_names,
        )

    @staticmethod
    def _payload(record: Dispute, from_state: State | None, at: datetime) -> dict[str, Any]:
        """What the county learns: no names, phones, description or notes."""
        return {
            "reference": record.reference,
            "category": record.category.value,
            "state": record.state.value,
            "from_state": from_state.value if from_state else None,
            "department": record.department,
            "changed_at": _stamp(at),
            "created_at": _stamp(record.created_at),
            "closed_at": _stamp(record.closed_at) if record.closed_at else None,
        }


def build(parts: ServiceParts) -> DisputeService:
    return DisputeService(
        parts.database,
        parts.vault,
        parts.audit,
        parts.report,
        settings=parts.settings(AREA, DisputeSettings),
        clock=parts.clock,
    )
