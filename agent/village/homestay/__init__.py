"""Homestays and their guest registrations (民宿登记), reported to the police through the outbox.

Storage of personal data:
- A guest's name, ID number, phone number, home address and birth date (and a companion's name,
  ID number and birth date) are stored only inside one vault token per person (``personal``
  column). The name is encrypted too: name plus check-in dates is enough to track a person.
- Search on ID number and on name goes through blind-index columns (keyed HMAC), so no row is
  decrypted to search (see ``service`` for what a partial name search can and cannot find). A
  search by name or ID number from the web is audited with the blind index as subject and
  limited per account and hour (``search_audited``): a match is an oracle for whether
  somebody stayed here.
- Masked forms (``张*丰``, ``33****************``, ``138****5678``, the province of the
  address) are stored beside the token, so lists and searches never decrypt anything. Only
  ``get_guest(unmasked=True)`` and ``export_csv`` decrypt, and both write an audit entry in the
  same transaction.
- Sex, ethnicity, an age band at check-in (``30-39``), nationality, document type, room and
  dates of stay stay in the clear for filtering and counts. What the masks and these columns
  leave of an ID number is worked out in ``agent.privacy``: at least 10^6 candidates per person
  even for someone who knows the area code (tests/village/homestay/test_id_reconstruction.py).
- Retention counts from the later of the end of the stay and the day the record was made, and
  a check-in may be dated at most ``CHECK_IN_LATE`` back, so a back-dated registration cannot
  slip out of the records (or the police's view) at the next purge.

Every check-in and check-out hands a ``registration`` report to the outbox inside the same write
transaction, so a registration and its report exist together or not at all.

Modules: ``inputs`` (the guest form and its checks), ``records`` (what the service returns),
``schema`` (tables and migrations), ``service`` (the rules), ``export`` (the police's CSV).
"""

from __future__ import annotations

from agent.village.homestay.inputs import (
    ERROR_MESSAGES,
    MAX_COMPANIONS,
    CompanionInput,
    GuestInput,
)
from agent.village.homestay.records import (
    CompanionRecord,
    GuestQuery,
    GuestRecord,
    Homestay,
)
from agent.village.homestay.schema import AREA, MIGRATIONS
from agent.village.homestay.service import HomestayService, SearchLimitError
from agent.village.service import ServiceParts, ServiceSpec


def build(parts: ServiceParts) -> HomestayService:
    return HomestayService(
        parts.database,
        parts.vault,
        parts.audit,
        parts.report,
        guest_retention_days=parts.config.storage.guest_retention_days,
        clock=parts.clock,
        accounts=parts.accounts,
    )


SERVICE = ServiceSpec(AREA, build, ERROR_MESSAGES)

__all__ = [
    "AREA",
    "ERROR_MESSAGES",
    "MAX_COMPANIONS",
    "MIGRATIONS",
    "SERVICE",
    "CompanionInput",
    "CompanionRecord",
    "GuestInput",
    "GuestQuery",
    "GuestRecord",
    "Homestay",
    "HomestayService",
    "SearchLimitError",
]
