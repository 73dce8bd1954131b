"""The notice rules: who publishes, what the kiosk screen shows, acknowledgement, expiry.

Police, admin and village staff publish from the web UI; the county command centre publishes
with the ``notice`` remote command. Every publication is audited in the same transaction as
the notice. An urgent notice takes over the kiosk screen until someone there acknowledges it;
the acknowledgement goes to the county as a ``notice_ack`` report in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, BinaryIO

import sqlite_utils

from agent.audit import AuditLog
from agent.errors import NotAllowedError, RecordNotFoundError, StoreError, ValidationError
from agent.store.database import Database
from agent.village.notices.records import (
    AREA,
    COMMAND_ACTOR,
    KEPT_AFTER_EXPIRY,
    MAX_LIFETIME,
    SOURCE_COMMAND,
    SOURCE_WEB,
    Notice,
    NoticeInput,
    Urgency,
)
from agent.village.notices.schema import MIGRATIONS
from agent.village.photos import PhotoStore
from agent.village.service import ReportSink, utc_now

log = logging.getLogger(__name__)

ACK_REPORT = "notice_ack"
SYSTEM_ACTOR = "system"
# The board never lists more than this many notices (the newest).
MAX_ACTIVE = 50


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _aware(moment: datetime) -> datetime:
    """A naive time is the kiosk's local time."""
    return moment.astimezone(UTC)


def _notice(row: dict[str, Any]) -> Notice:
    acknowledged = row["acknowledged_at"]
    return Notice(
        id=int(row["id"]),
        title=str(row["title"]),
        text=str(row["text"]),
        urgency=Urgency(row["urgency"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        expires_at=datetime.fromisoformat(row["expires_at"]),
        created_by=str(row["created_by"]),
        source=str(row["source"]),
        acknowledged_at=datetime.fromisoformat(acknowledged) if acknowledged else None,
        acknowledged_by=row["acknowledged_by"],
        photo_id=row.get("photo_id"),
    )


def _rows(
    db: sqlite_utils.Database,
    where: str | None,
    params: list[Any],
    *,
    order_by: str,
    limit: int,
) -> list[Notice]:
    rows = db.table("notices").rows_where(where, params, order_by=order_by, limit=limit)
    return [_notice(row) for row in rows]


class NoticeService:
    def __init__(
        self,
        database: Database,
        audit: AuditLog,
        report: ReportSink,
        *,
        photos: PhotoStore | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._database = database
        self._audit = audit
        self._report = report
        self._photos = photos
        self._clock = clock

    def migrate(self) -> None:
        self._database.migrate(AREA, MIGRATIONS)
        if self._photos is not None:
            self._photos.migrate()

    def tick(self) -> None:
        """Nothing is scheduled: an expired notice simply stops being listed."""

    def _now(self) -> datetime:
        return _aware(self._clock())

    # -- publishing ----------------------------------------------------------------------------

    def publish(
        self,
        notice: NoticeInput,
        *,
        actor: str,
        source: str = SOURCE_WEB,
        request_id: str | None = None,
        photo: BinaryIO | bytes | None = None,
    ) -> Notice:
        """Store and audit a notice; from the next poll on, the kiosk screen shows it.

        The expiry must lie ahead, at most ``MAX_LIFETIME`` away. A ``request_id`` seen before
        returns the notice that request made, unchanged. A ``photo`` (JPEG, PNG or WebP) is
        checked and re-encoded without its metadata before anything is stored.
        """
        now = self._now()
        expires = _aware(notice.expires_at)
        if expires <= now:
            raise ValidationError("expires_at", "notices.expires_at_past")
        if expires > now + MAX_LIFETIME:
            raise ValidationError("expires_at", "notices.expires_at_too_far")
        prepared = None
        if photo is not None:
            if self._photos is None:
                raise ValidationError("photo", "notices.photo.not_image")
            prepared = self._photos.prepare(photo)  # CPU work, before the write lock
        with self._database.write() as db:
            if request_id is not None:
                earlier = _rows(db, "request_id = ?", [request_id], order_by="id", limit=1)
                if earlier:
                    return earlier[0]
            photo_id = None
            if prepared is not None and self._photos is not None:
                photo_id = self._photos.add(db, prepared, owner=actor).id
            row = {
                "title": notice.title,
                "text": notice.text,
                "urgency": str(notice.urgency),
                "created_at": _stamp(now),
                "expires_at": _stamp(expires),
                "created_by": actor,
                "source": source,
                "request_id": request_id,
                "photo_id": photo_id,
            }
            inserted = db.table("notices").insert(row).last_rowid
            if inserted is None:
                raise StoreError("the notice was not stored")
            notice_id = int(inserted)
            detail = f"urgency={notice.urgency}; expires={_stamp(expires)}; source={source}"
            if prepared is not None:
                detail += "; with photo"
            if request_id is not None:
                detail += f"; request {request_id}"
            self._audit.record(actor, "notice.publish", f"notice:{notice_id}", detail, db=db)
            return self._load(db, notice_id)

    def command(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The ``notice`` remote command: ``{"id", "title", "text", "urgency", "expires_at"}``;
        the reply's result names the notice."""
        fields = {key: value for key, value in request.items() if key != "id"}
        request_id = request.get("id")
        notice = self.publish(
            NoticeInput.model_validate(fields),
            actor=COMMAND_ACTOR,
            source=SOURCE_COMMAND,
            request_id=str(request_id) if request_id is not None else None,
        )
        return {
            "notice": notice.id,
            "urgency": str(notice.urgency),
            "expires_at": notice.expires_at.isoformat(),
        }

    # -- reading -------------------------------------------------------------------------------

    def active(self, *, limit: int = MAX_ACTIVE) -> list[Notice]:
        """The notices the board shows: not expired, urgent first, newest first."""
        with self._database.read() as db:
            return _rows(
                db,
                "expires_at > ?",
                [_stamp(self._now())],
                order_by="urgency = 'urgent' DESC, created_at DESC, id DESC",
                limit=limit,
            )

    def recent(self, *, limit: int = 100) -> list[Notice]:
        """Every kept notice, newest first (the management list)."""
        with self._database.read() as db:
            return _rows(db, None, [], order_by="created_at DESC, id DESC", limit=limit)

    def pending_urgent(self) -> Notice | None:
        """The urgent notice that holds the kiosk screen: the oldest one not expired and not
        acknowledged (the next takes over once it is acknowledged)."""
        with self._database.read() as db:
            pending = _rows(
                db,
                "urgency = 'urgent' AND acknowledged_at IS NULL AND expires_at > ?",
                [_stamp(self._now())],
                order_by="created_at, id",
                limit=1,
            )
        return pending[0] if pending else None

    def photo(self, notice_id: int) -> bytes:
        """The JPEG of a notice still shown (an expired notice's picture is not served)."""
        with self._database.read() as db:
            notice = self._load(db, notice_id)
        if notice.expired(self._now()) or notice.photo_id is None or self._photos is None:
            raise RecordNotFoundError("notice", "notices.not_found")
        return self._photos.read(notice.photo_id)

    def get(self, notice_id: int) -> Notice:
        with self._database.read() as db:
            return self._load(db, notice_id)

    # -- acknowledgement -----------------------------------------------------------------------

    def acknowledge(self, notice_id: int, *, actor: str) -> Notice:
        """Someone at the kiosk read an urgent notice: recorded, audited and reported to the
        county in one transaction. Acknowledging again changes and reports nothing."""
        now = self._now()
        with self._database.write() as db:
            notice = self._load(db, notice_id)
            if notice.expired(now):
                raise RecordNotFoundError("notice", "notices.not_found")
            if not notice.urgent:
                raise NotAllowedError("notices.not_urgent")
            if notice.acknowledged_at is not None:
                return notice
            db.execute(
                "UPDATE notices SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ?",
                [_stamp(now), actor, notice_id],
            )
            self._audit.record(actor, "notice.acknowledge", f"notice:{notice_id}", db=db)
            self._report(db, ACK_REPORT, {"notice": notice_id, "acknowledged_at": _stamp(now)})
            return self._load(db, notice_id)

    # -- retention -----------------------------------------------------------------------------

    def purge_expired(self) -> int:
        """Delete notices expired more than ``KEPT_AFTER_EXPIRY`` ago (30 days): what the screen
        said is kept a month for questions, then it is old news. The audit entries stay."""
        cutoff = self._now() - KEPT_AFTER_EXPIRY
        with self._database.write() as db:
            where = [_stamp(cutoff)]
            if self._photos is not None:
                going = db.table("notices").rows_where(
                    "expires_at < ? AND photo_id IS NOT NULL", where, select="photo_id"
                )
                for photo_id in [row["photo_id"] for row in going]:
                    self._photos.remove(db, photo_id)
            cursor = db.execute("DELETE FROM notices WHERE expires_at < ?", where)
            purged = max(0, cursor.rowcount)
            if purged:
                self._audit.record(SYSTEM_ACTOR, "notice.purge", "notices", f"rows={purged}", db=db)
        if self._photos is not None:
            self._photos.purge_orphans()
        return purged

    @staticmethod
    def _load(db: sqlite_utils.Database, notice_id: int) -> Notice:
        found = _rows(db, "id = ?", [notice_id], order_by="id", limit=1)
        if not found:
            raise RecordNotFoundError("notice", "notices.not_found")
        return found[0]
