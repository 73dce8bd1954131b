"""Households, PINs, invite codes and links (agent.village.family) on a real database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.accounts import AccountStore
from agent.audit import AuditLog
from agent.errors import ValidationError
from agent.store.database import Database
from agent.village.family import (
    CODE_ALPHABET,
    CODE_LENGTH,
    ERROR_MESSAGES,
    AttemptsPausedError,
    FamilyService,
    HouseholdNotFoundError,
    check_pin,
    normalize_code,
)
from tests.fixtures.browser import FAST_HASHER, PASSWORD
from tests.fixtures.passwords import CountingHasher

KIOSK = "127.0.0.1"
PIN = "730519"


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Parts:
    database: Database
    audit: AuditLog
    accounts: AccountStore
    family: FamilyService
    clock: Clock
    hasher: CountingHasher

    def family_user(self, username: str) -> str:
        self.accounts.create_user(username, "family", PASSWORD)
        return username


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    database = Database(tmp_path / "kiosk.sqlite3")
    audit = AuditLog(database)
    accounts = AccountStore(database, hasher=FAST_HASHER, audit=audit)
    clock = Clock()
    hasher = CountingHasher()
    family = FamilyService(
        database,
        audit,
        accounts,
        camera_ids=["square", "zhang-yard", "li-door"],
        hasher=hasher,
        clock=clock,
    )
    yield Parts(database, audit, accounts, family, clock, hasher)
    database.close()


def _code(error: pytest.ExceptionInfo[ValidationError]) -> str:
    return error.value.message


def test_household_keeps_its_cameras_and_only_a_hash_of_the_pin(parts: Parts) -> None:
    household = parts.family.create_household(
        " 张家 ", PIN, ["zhang-yard", "square"], actor="zhao.admin"
    )
    assert (household.name, household.camera_ids, household.members) == (
        "张家",
        ("square", "zhang-yard"),
        (),
    )
    raw = parts.database.path.read_bytes()
    assert PIN.encode() not in raw
    with parts.database.read() as db:
        stored = db.execute("SELECT pin_hash FROM households").fetchone()[0]
    assert stored.startswith("$argon2id$") and PIN not in stored
    (entry,) = parts.audit.entries(action="family.household_add")
    assert (entry.actor, entry.subject) == ("zhao.admin", f"household:{household.id}")
    assert PIN not in entry.detail


@pytest.mark.parametrize(
    ("name", "pin", "cameras", "code"),
    [
        ("", PIN, [], "household.name_required"),
        ("张" * 51, PIN, [], "household.name_too_long"),
        ("张家", "12345", [], "pin.format"),
        ("张家", "12ab56", [], "pin.format"),
        ("张家", "123456789", [], "pin.format"),
        ("张家", "111111", [], "pin.too_simple"),
        ("张家", "234567", [], "pin.too_simple"),
        ("张家", "876543", [], "pin.too_simple"),
        ("张家", PIN, ["backyard"], "household.camera_unknown"),
    ],
)
def test_bad_household_input_is_refused_with_a_code(
    parts: Parts, name: str, pin: str, cameras: list[str], code: str
) -> None:
    with pytest.raises(ValidationError) as error:
        parts.family.create_household(name, pin, cameras, actor="zhao.admin")
    assert _code(error) == code
    assert code in ERROR_MESSAGES
    assert parts.family.list_households() == []


def test_household_names_are_unique_whatever_the_spacing(parts: Parts) -> None:
    parts.family.create_household("张家 老宅", PIN, [], actor="a")
    with pytest.raises(ValidationError) as error:
        parts.family.create_household("张家  老宅", "902714", [], actor="a")
    assert _code(error) == "household.name_taken"


def test_check_pin_accepts_ordinary_pins() -> None:
    for pin in ("730519", "2468024", "10293847"):
        check_pin(pin)


def test_invite_needs_the_right_pin_and_is_audited_without_the_code(parts: Parts) -> None:
    household = parts.family.create_household("张家", PIN, ["zhang-yard"], actor="a")
    with pytest.raises(ValidationError) as error:
        parts.family.create_invite(household.id, "000000", address=KIOSK, actor="anonymous")
    assert _code(error) == "pin.wrong"
    invite = parts.family.create_invite(household.id, PIN, address=KIOSK, actor="anonymous")
    assert len(invite.code) == CODE_LENGTH and set(invite.code) <= set(CODE_ALPHABET)
    assert invite.display_code == f"{invite.code[:4]}-{invite.code[4:]}"
    assert invite.expires_at == parts.clock.now + 600
    actions = [entry.action for entry in parts.audit.entries()]
    assert actions[:2] == ["family.invite", "family.pin_failed"]
    for entry in parts.audit.entries():
        assert invite.code not in entry.detail + entry.subject
    assert invite.code.encode() not in parts.database.path.read_bytes()


def test_wrong_pins_pause_that_household_for_that_address_only(parts: Parts) -> None:
    zhang = parts.family.create_household("张家", PIN, ["zhang-yard"], actor="a")
    li = parts.family.create_household("李家", "582913", ["li-door"], actor="a")
    for _ in range(4):
        with pytest.raises(ValidationError) as error:
            parts.family.create_invite(zhang.id, "999999", address=KIOSK, actor="anonymous")
        assert _code(error) == "pin.wrong"
    with pytest.raises(AttemptsPausedError) as paused:
        parts.family.create_invite(zhang.id, "999999", address=KIOSK, actor="anonymous")
    assert paused.value.retry_after_seconds > 0
    checks = len(parts.hasher.verified)
    # Paused: even the right PIN is refused, and not even checked.
    with pytest.raises(AttemptsPausedError):
        parts.family.create_invite(zhang.id, PIN, address=KIOSK, actor="anonymous")
    assert len(parts.hasher.verified) == checks
    assert parts.family.pin_paused(zhang.id, KIOSK) > 0
    # Another household, and the same household from elsewhere, are not held up.
    parts.family.create_invite(li.id, "582913", address=KIOSK, actor="anonymous")
    parts.family.create_invite(zhang.id, PIN, address="10.0.0.7", actor="anonymous")
    assert parts.audit.entries(action="family.pin_failed")[0].detail == "paused"
    # The pause ends by itself.
    parts.clock.now += 15 * 60 + 1
    parts.family.create_invite(zhang.id, PIN, address=KIOSK, actor="anonymous")


def test_parallel_wrong_pins_cannot_outrun_the_count(tmp_path: Path) -> None:
    database = Database(tmp_path / "kiosk.sqlite3")
    audit = AuditLog(database)
    accounts = AccountStore(database, hasher=FAST_HASHER, audit=audit)
    hasher = CountingHasher(delay=0.05)
    family = FamilyService(database, audit, accounts, camera_ids=[], hasher=hasher)
    household = family.create_household("张家", PIN, [], actor="a")
    hasher.verified.clear()
    barrier = threading.Barrier(12)

    def guess(pin: str) -> str:
        barrier.wait()
        try:
            family.create_invite(household.id, pin, address=KIOSK, actor="anonymous")
        except ValidationError as exc:
            return exc.message
        return "ok"

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(guess, [f"{90000 + i:06d}" for i in range(12)]))
    assert len(hasher.verified) <= 5, "only the counted attempts reach the hash"
    assert answers.count("pin.wrong") + answers.count("pin.paused") == 12
    database.close()


def test_a_new_pin_lifts_the_pause_and_cancels_live_invites(parts: Parts) -> None:
    household = parts.family.create_household("张家", PIN, [], actor="a")
    invite = parts.family.create_invite(household.id, PIN, address=KIOSK, actor="anonymous")
    for _ in range(5):
        with pytest.raises(ValidationError):
            parts.family.create_invite(household.id, "999999", address=KIOSK, actor="x")
    parts.family.set_pin(household.id, "482915", actor="zhao.admin")
    user = parts.family_user("zhang.san")
    with pytest.raises(ValidationError) as error:
        parts.family.redeem(invite.code, user, address="10.0.0.8")
    assert _code(error) == "code.invalid"
    parts.family.create_invite(household.id, "482915", address=KIOSK, actor="anonymous")
    assert parts.audit.entries(action="family.pin_set")[0].actor == "zhao.admin"


def test_a_code_links_a_family_account_once(parts: Parts) -> None:
    household = parts.family.create_household("张家", PIN, ["zhang-yard", "square"], actor="a")
    invite = parts.family.create_invite(household.id, PIN, address=KIOSK, actor="anonymous")
    son, daughter = parts.family_user("zhang.san"), parts.family_user("zhang.mei")
    typed = f" {invite.code[:4].lower()}-{invite.code[4:]} "
    preview = parts.family.preview_invite(typed, address="10.0.0.8")
    assert (preview.household_id, preview.household_name) == (household.id, "张家")
    linked = parts.family.redeem(typed, son, address="10.0.0.8", detail="new account")
    assert linked.members == (son,)
    with pytest.raises(ValidationError) as error:
        parts.family.redeem(invite.code, daughter, address="10.0.0.9")
    assert _code(error) == "code.invalid"
    assert parts.family.households_of(daughter) == []
    (entry,) = parts.audit.entries(action="family.link")
    assert (entry.actor, entry.subject, entry.detail) == (
        son,
        f"household:{household.id}",
        "new account",
    )


def test_codes_expire(parts: Parts) -> None:
    household = parts.family.create_household("张家", PIN, [], actor="a")
    invite = parts.family.create_invite(household.id, PIN, address=KIOSK, actor="anonymous")
    user = parts.family_user("zhang.san")
    parts.clock.now += 10 * 60
    with pytest.raises(ValidationError) as error:
        parts.family.redeem(invite.code, user, address="10.0.0.8")
    assert _code(error) == "code.invalid"
    assert parts.family.members_of(household.id) == []


def test_only_family_accounts_are_linked(parts: Parts) -> None:
    household = parts.family.create_household("张家", PIN, [], actor="a")
    invite = parts.family.create_invite(household.id, PIN, address=KIOSK, actor="anonymous")
    parts.accounts.create_user("li.police", "police", PASSWORD)
    for username in ("li.police", "nobody.here"):
        with pytest.raises(ValidationError) as error:
            parts.family.redeem(invite.code, username, address="10.0.0.8")
        assert _code(error) == "link.wrong_role"
    # The code was not used up by the refusals.
    parts.family.redeem(invite.code, parts.family_user("zhang.san"), address="10.0.0.8")


def test_a_member_cannot_redeem_twice_and_the_code_stays_usable(parts: Parts) -> None:
    household = parts.family.create_household("张家", PIN, [], actor="a")
    first = parts.family.create_invite(household.id, PIN, address=KIOSK, actor="anonymous")
    second = parts.family.create_invite(household.id, PIN, address=KIOSK, actor="anonymous")
    son = parts.family_user("zhang.san")
    parts.family.redeem(first.code, son, address="10.0.0.8")
    with pytest.raises(ValidationError) as error:
        parts.family.redeem(second.code, son, address="10.0.0.8")
    assert _code(error) == "link.already_member"
    parts.family.redeem(second.code, parts.family_user("zhang.mei"), address="10.0.0.8")


def test_at_most_three_live_invites_per_household(parts: Parts) -> None:
    household = parts.family.create_household("张家", PIN, [], actor="a")
    invites = [
        parts.family.create_invite(household.id, PIN, address=KIOSK, actor="anonymous")
        for _ in range(4)
    ]
    user = parts.family_user("zhang.san")
    with pytest.raises(ValidationError):
        parts.family.redeem(invites[0].code, user, address="10.0.0.8")
    parts.family.redeem(invites[3].code, user, address="10.0.0.8")


def test_wrong_codes_pause_the_address(parts: Parts) -> None:
    household = parts.family.create_household("张家", PIN, [], actor="a")
    invite = parts.family.create_invite(household.id, PIN, address=KIOSK, actor="anonymous")
    user = parts.family_user("zhang.san")
    wrong = "ABCDEFGH" if invite.code != "ABCDEFGH" else "HGFEDCBA"
    for _ in range(10):
        with pytest.raises(ValidationError) as error:
            parts.family.preview_invite(wrong, address="10.0.0.8")
        assert _code(error) == "code.invalid"
    with pytest.raises(AttemptsPausedError) as paused:
        parts.family.redeem(invite.code, user, address="10.0.0.8")
    assert _code(paused) == "code.paused"
    # Another address still redeems; the paused one may again after the pause.
    parts.family.preview_invite(invite.code, address="10.0.0.9")
    parts.clock.now += 15 * 60 + 1
    with pytest.raises(ValidationError) as error:
        parts.family.preview_invite(wrong, address="10.0.0.8")
    assert _code(error) == "code.invalid"


def test_right_codes_do_not_count_against_the_address(parts: Parts) -> None:
    household = parts.family.create_household("张家", PIN, [], actor="a")
    invite = parts.family.create_invite(household.id, PIN, address=KIOSK, actor="anonymous")
    for _ in range(25):
        parts.family.preview_invite(invite.code, address="10.0.0.8")


@pytest.mark.parametrize("typed", ["", "ABC", "ABCDEFGHJ", "ABCD0FGH", "ABCDIFGH", "ABCD EFG!"])
def test_malformed_codes_are_a_format_error(typed: str) -> None:
    with pytest.raises(ValidationError) as error:
        normalize_code(typed)
    assert _code(error) == "code.format"


def test_cameras_for_gives_each_family_account_its_households_cameras(parts: Parts) -> None:
    family = parts.family
    zhang = family.create_household("张家", PIN, ["zhang-yard", "square"], actor="a")
    li = family.create_household("李家", "582913", ["li-door"], actor="a")
    son, neighbour = parts.family_user("zhang.san"), parts.family_user("li.si")
    for household, pin, user in ((zhang, PIN, son), (li, "582913", neighbour)):
        invite = family.create_invite(household.id, pin, address=KIOSK, actor="anonymous")
        family.redeem(invite.code, user, address="10.0.0.8")
    assert family.cameras_for(son) == {"zhang-yard", "square"}
    assert family.cameras_for(neighbour) == {"li-door"}
    assert family.cameras_for("zhao.admin") == frozenset()
    assert [h.name for h in family.households_of(son)] == ["张家"]
    assert family.members_of(li.id) == [neighbour]
    family.update_household(zhang.id, "张家", ["zhang-yard"], actor="a")
    assert family.cameras_for(son) == {"zhang-yard"}


def test_a_camera_gone_from_the_config_is_not_watchable(tmp_path: Path, parts: Parts) -> None:
    household = parts.family.create_household("张家", PIN, ["zhang-yard"], actor="a")
    invite = parts.family.create_invite(household.id, PIN, address=KIOSK, actor="anonymous")
    son = parts.family_user("zhang.san")
    parts.family.redeem(invite.code, son, address="10.0.0.8")
    later = FamilyService(
        parts.database, parts.audit, parts.accounts, camera_ids=["square"], hasher=FAST_HASHER
    )
    assert later.cameras_for(son) == frozenset()
    # Editing the household keeps the unknown camera rather than refusing the whole edit.
    edited = later.update_household(household.id, "张家", ["square"], actor="a")
    assert edited.camera_ids == ("square", "zhang-yard")


def test_unlink_and_leave_are_audited(parts: Parts) -> None:
    household = parts.family.create_household("张家", PIN, ["square"], actor="a")
    son, daughter = parts.family_user("zhang.san"), parts.family_user("zhang.mei")
    for user in (son, daughter):
        invite = parts.family.create_invite(household.id, PIN, address=KIOSK, actor="anonymous")
        parts.family.redeem(invite.code, user, address="10.0.0.8")
    parts.family.unlink(household.id, son, actor="zhao.admin")
    parts.family.leave(household.id, daughter)
    assert parts.family.cameras_for(son) == frozenset()
    assert parts.family.cameras_for(daughter) == frozenset()
    with pytest.raises(ValidationError) as error:
        parts.family.leave(household.id, daughter)
    assert _code(error) == "link.not_member"
    unlink, leave = (
        parts.audit.entries(action="family.unlink")[0],
        parts.audit.entries(action="family.leave")[0],
    )
    assert (unlink.actor, unlink.detail) == ("zhao.admin", f"user:{son}")
    assert (leave.actor, leave.detail) == (daughter, f"user:{daughter}")


def test_deleting_an_account_or_a_household_removes_the_links(parts: Parts) -> None:
    household = parts.family.create_household("张家", PIN, ["square"], actor="a")
    other = parts.family.create_household("李家", "582913", ["li-door"], actor="a")
    son = parts.family_user("zhang.san")
    for hh, pin in ((household, PIN), (other, "582913")):
        invite = parts.family.create_invite(hh.id, pin, address=KIOSK, actor="anonymous")
        parts.family.redeem(invite.code, son, address="10.0.0.8")
    parts.family.delete_household(household.id, actor="zhao.admin")
    assert parts.family.cameras_for(son) == {"li-door"}
    with pytest.raises(HouseholdNotFoundError):
        parts.family.get_household(household.id)
    parts.accounts.delete_user(son)
    assert parts.family.members_of(other.id) == []
