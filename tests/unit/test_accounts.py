from __future__ import annotations

import threading
from pathlib import Path

import pytest
from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import VerifyMismatchError

from agent import accounts as accounts_module
from agent.accounts import (
    HASH_MEMORY_KIB,
    HASH_PARALLELISM,
    HASH_TIME_COST,
    MIGRATIONS,
    AccountStore,
    LoginRefusedError,
    Role,
    default_hasher,
)
from agent.audit import AuditLog
from agent.errors import ValidationError
from agent.store.database import Database
from tests.fixtures.passwords import CountingHasher

PASSWORD = "river-stone-42"
HERE, THERE = "192.0.2.10", "198.51.100.7"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def database(tmp_path: Path) -> Database:
    return Database(tmp_path / "kiosk.sqlite3")


@pytest.fixture
def store(database: Database, clock: FakeClock, hasher: CountingHasher) -> AccountStore:
    return AccountStore(
        database,
        login_max_failures=5,
        lockout_minutes=15,
        session_hours=2,
        idle_minutes=15,
        kiosk_session_minutes=10,
        hasher=hasher,
        clock=clock,
    )


def stored_hash(store: AccountStore, username: str) -> str:
    with store._database.read() as db:
        return str(
            db.execute("SELECT password_hash FROM users WHERE username = ?", [username]).fetchone()[
                0
            ]
        )


def refused(store: AccountStore, username: str, password: str, address: str = HERE) -> bool:
    try:
        store.authenticate(username, password, address=address)
    except LoginRefusedError:
        return True
    return False


def audit_rows(database: Database) -> list[tuple[str, str, str, str]]:
    return [(e.actor, e.action, e.subject, e.detail) for e in AuditLog(database).entries()][::-1]


# -- users and passwords --------------------------------------------------------------------


def test_password_is_stored_as_argon2id_hash_with_the_pi_parameters(tmp_path: Path) -> None:
    database = Database(tmp_path / "kiosk.sqlite3")
    AccountStore(database).create_user("zhang.wei", "host", PASSWORD)
    with database.read() as db:
        stored = db.execute("SELECT password_hash FROM users").fetchone()[0]
    assert stored.startswith("$argon2id$")
    assert f"m={HASH_MEMORY_KIB},t={HASH_TIME_COST},p={HASH_PARALLELISM}$" in stored
    assert (HASH_MEMORY_KIB, HASH_TIME_COST, HASH_PARALLELISM) == (19 * 1024, 2, 1)
    assert PASSWORD not in stored


def test_default_hasher_is_not_argon2_cffis_64_mib_default() -> None:
    hasher = default_hasher()
    assert hasher.memory_cost == 19 * 1024 < PasswordHasher().memory_cost


@pytest.mark.parametrize(
    ("username", "role", "password", "field", "code"),
    [
        ("Zhang Wei", "host", PASSWORD, "username", "username.format"),
        ("ab", "host", PASSWORD, "username", "username.format"),
        ("zhangwei", "mayor", PASSWORD, "role", "role.unknown"),
        ("zhangwei", "host", "short1", "password", "password.too_short"),
        ("zhangwei", "host", "aaaaabbbbbaaaa", "password", "password.too_simple"),
        ("zhangwei", "host", "zhangwei-2024", "password", "password.contains_username"),
    ],
)
def test_create_user_rejects_bad_input(
    store: AccountStore, username: str, role: str, password: str, field: str, code: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        store.create_user(username, role, password)
    assert (caught.value.field, caught.value.message) == (field, code)
    assert store.list_users() == []


def test_username_taken(store: AccountStore) -> None:
    store.create_user("li.na", "police", PASSWORD)
    with pytest.raises(ValidationError) as caught:
        store.create_user("li.na", "host", PASSWORD + "x")
    assert caught.value.message == "username.taken"
    assert store.get_user("li.na") is not None
    assert store.get_user("li.na").role is Role.POLICE  # type: ignore[union-attr]


def test_authenticate_right_and_wrong(store: AccountStore) -> None:
    store.create_user("li.na", "police", PASSWORD)
    assert store.authenticate("li.na", PASSWORD, address=HERE).role is Role.POLICE
    assert refused(store, "li.na", "not-the-password")
    assert refused(store, "nobody", PASSWORD)


def test_an_old_hash_is_replaced_at_the_next_sign_in(database: Database, clock: FakeClock) -> None:
    old = PasswordHasher(time_cost=1, memory_cost=2048, parallelism=2)
    AccountStore(database, hasher=old, clock=clock).create_user("li.na", "police", PASSWORD)
    current = CountingHasher(time_cost=2)
    store = AccountStore(database, hasher=current, clock=clock)
    before = stored_hash(store, "li.na")
    assert "m=2048,t=1,p=2" in before
    assert refused(store, "li.na", "wrong-password-1")
    assert stored_hash(store, "li.na") == before, "a wrong password must not touch the hash"
    store.authenticate("li.na", PASSWORD, address=HERE)
    after = stored_hash(store, "li.na")
    assert "m=1024,t=2,p=1" in after
    assert not current.check_needs_rehash(after)
    assert store.authenticate("li.na", PASSWORD, address=HERE).username == "li.na"


# -- back-off per (name, address) -------------------------------------------------------------


def test_fifth_wrong_password_pauses_only_that_address(
    store: AccountStore, clock: FakeClock
) -> None:
    store.create_user("li.na", "police", PASSWORD)
    for _ in range(5):
        assert refused(store, "li.na", "guess-guess-guess", HERE)
    assert store.paused_addresses("li.na") == 1
    # Paused here: even the right password is refused, with the same error ...
    assert refused(store, "li.na", PASSWORD, HERE)
    # ... but the officer elsewhere is not locked out by whoever guessed here.
    assert store.authenticate("li.na", PASSWORD, address=THERE).username == "li.na"
    clock.now += 15 * 60 + 1
    assert store.authenticate("li.na", PASSWORD, address=HERE).username == "li.na"


def test_guessing_every_fifteen_minutes_does_not_keep_the_owner_out(
    store: AccountStore, clock: FakeClock
) -> None:
    store.create_user("li.na", "police", PASSWORD)
    for _ in range(8):  # two hours of an attacker's five tries per pause
        for _ in range(5):
            assert refused(store, "li.na", "guess-guess-guess", HERE)
        assert store.authenticate("li.na", PASSWORD, address=THERE).username == "li.na"
        clock.now += 15 * 60 + 1


def test_success_resets_the_count_of_its_address(store: AccountStore) -> None:
    store.create_user("li.na", "police", PASSWORD)
    for _ in range(4):
        assert refused(store, "li.na", "guess-guess-guess")
    store.authenticate("li.na", PASSWORD, address=HERE)
    for _ in range(4):
        assert refused(store, "li.na", "guess-guess-guess")
    assert store.paused_addresses("li.na") == 0
    assert store.authenticate("li.na", PASSWORD, address=HERE).username == "li.na"


def test_wrong_tries_far_apart_do_not_add_up(store: AccountStore, clock: FakeClock) -> None:
    store.create_user("li.na", "police", PASSWORD)
    for _ in range(8):
        assert refused(store, "li.na", "guess-guess-guess")
        clock.now += 15 * 60 + 1
    assert store.authenticate("li.na", PASSWORD, address=HERE).username == "li.na"


def test_unknown_wrong_and_paused_get_the_same_error_and_one_verification_each(
    store: AccountStore, hasher: CountingHasher
) -> None:
    store.create_user("li.na", "police", PASSWORD)
    real = stored_hash(store, "li.na")
    errors: list[str] = []
    for username, password in [("li.na", "guess-guess-guess")] * 6 + [("nobody", PASSWORD)] * 6:
        hasher.verified.clear()
        with pytest.raises(LoginRefusedError) as caught:
            store.authenticate(username, password, address=HERE)
        errors.append(f"{type(caught.value).__name__}: {caught.value} {vars(caught.value)}")
        assert len(hasher.verified) == 1, "the same argon2 work whatever the case"
    assert len(set(errors)) == 1, errors
    # Paused, the real hash is not checked at all: a right guess could not even be noticed.
    hasher.verified.clear()
    assert refused(store, "li.na", PASSWORD)
    assert hasher.verified and real not in hasher.verified


def test_the_dummy_hash_costs_a_real_verification(store: AccountStore) -> None:
    store.create_user("li.na", "police", PASSWORD)
    dummy = store._dummy_hash
    assert extract_parameters(dummy) == extract_parameters(stored_hash(store, "li.na"))
    with pytest.raises(VerifyMismatchError):  # computed in full, not refused as malformed
        PasswordHasher().verify(dummy, PASSWORD)


def test_unknown_usernames_are_paused_like_real_ones(store: AccountStore) -> None:
    store.create_user("li.na", "police", PASSWORD)
    for username in ("li.na", "ghost"):
        for _ in range(5):
            assert refused(store, username, "guess-guess-guess")
    with store._database.read() as db:
        rows = db.execute("SELECT failures, paused_until FROM login_backoff").fetchall()
    assert len(rows) == 2
    assert rows[0] == rows[1], "an unknown name is counted and paused exactly like a real one"


def test_attempted_names_and_addresses_are_not_stored_in_clear(store: AccountStore) -> None:
    typed_password_as_name = "Secret-Typo-Pass-77"
    assert refused(store, typed_password_as_name, "x", "203.0.113.99")
    with store._database.read() as db:
        dumped = "\n".join(db.conn.iterdump())
    assert typed_password_as_name not in dumped
    assert "203.0.113.99" not in dumped


def test_back_off_rows_are_bounded_and_pruned(
    store: AccountStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(accounts_module, "MAX_BACKOFF_ROWS", 5)

    def rows() -> int:
        with store._database.read() as db:
            return int(db.execute("SELECT COUNT(*) FROM login_backoff").fetchone()[0])

    for number in range(12):
        assert refused(store, f"ghost{number}", "x", f"192.0.2.{number}")
    assert rows() == 5
    clock.now += 15 * 60 + 1
    assert refused(store, "ghost-late", "x")
    assert rows() == 1, "rows older than the pause are dropped"


def test_parallel_guesses_are_counted_before_any_is_checked(
    database: Database, clock: FakeClock
) -> None:
    """24 wrong passwords and the right one at once: at most five reach the real hash."""
    hasher = CountingHasher(delay=0.05)
    store = AccountStore(database, login_max_failures=5, hasher=hasher, clock=clock)
    store.create_user("li.na", "police", PASSWORD)
    real = stored_hash(store, "li.na")
    passwords = ["guess-guess-guess"] * 24 + [PASSWORD]
    start = threading.Barrier(len(passwords))
    outcomes: list[bool] = []

    def attempt(password: str) -> None:
        start.wait()
        outcomes.append(not refused(store, "li.na", password))

    threads = [threading.Thread(target=attempt, args=(p,)) for p in passwords]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 25
    assert hasher.verified.count(real) <= 5
    assert len(hasher.verified) == 25, "every attempt, checked or not, costs one verification"
    if not any(outcomes):
        # The right one was not among the five checked: the pause holds.
        assert refused(store, "li.na", PASSWORD)


def test_parallel_wrong_guesses_pause_after_exactly_the_limit(
    database: Database, clock: FakeClock
) -> None:
    hasher = CountingHasher(delay=0.05)
    store = AccountStore(database, login_max_failures=5, hasher=hasher, clock=clock)
    store.create_user("li.na", "police", PASSWORD)
    real = stored_hash(store, "li.na")
    start = threading.Barrier(25)

    def attempt() -> None:
        start.wait()
        refused(store, "li.na", "guess-guess-guess")

    threads = [threading.Thread(target=attempt) for _ in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert hasher.verified.count(real) == 5
    assert store.paused_addresses("li.na") == 1


def test_from_config_takes_back_off_and_session_lengths(tmp_path: Path) -> None:
    from agent.config import WebConfig

    web = WebConfig(login_max_failures=1, lockout_minutes=1, session_hours=1)
    store = AccountStore.from_config(Database(tmp_path / "kiosk.sqlite3"), web)
    store._hasher = CountingHasher()
    store.create_user("li.na", "police", PASSWORD)
    assert refused(store, "li.na", "guess-guess-guess")
    assert refused(store, "li.na", PASSWORD), "one wrong try pauses with login_max_failures=1"


# -- audit --------------------------------------------------------------------------------------


def test_sign_ins_are_audited_for_real_accounts_only(
    store: AccountStore, database: Database
) -> None:
    store.create_user("li.na", "police", PASSWORD)
    store.authenticate("li.na", PASSWORD, address=HERE)
    for _ in range(6):
        assert refused(store, "li.na", "guess-guess-guess")
    assert refused(store, "Mistyped-Password-9", "x")
    rows = audit_rows(database)
    assert rows == [
        ("cli", "user.add", "user:li.na", "police"),
        ("li.na", "auth.login", "user:li.na", ""),
        *[("li.na", "auth.login_failed", "user:li.na", "")] * 5,
        ("li.na", "auth.login_failed", "user:li.na", "paused"),
    ]
    text = repr(rows)
    assert "guess-guess-guess" not in text and PASSWORD not in text
    assert "Mistyped" not in text


# -- account lifecycle --------------------------------------------------------------------------


def test_set_password_ends_sessions_and_lifts_pauses(
    store: AccountStore, database: Database
) -> None:
    store.create_user("wang.fang", "host", PASSWORD)
    grant = store.start_session(store.authenticate("wang.fang", PASSWORD, address=HERE))
    for _ in range(5):
        assert refused(store, "wang.fang", "guess-guess-guess")
    assert store.set_password("wang.fang", "new-bamboo-77") == 1
    assert store.session(grant.token) is None
    assert refused(store, "wang.fang", PASSWORD, THERE)
    assert store.authenticate("wang.fang", "new-bamboo-77", address=HERE).role is Role.HOST
    assert ("cli", "user.password", "user:wang.fang", "1 sessions ended") in audit_rows(database)


def test_change_password_checks_the_current_one_and_keeps_this_session(
    store: AccountStore, database: Database
) -> None:
    store.create_user("wang.fang", "host", PASSWORD)
    here = store.start_session(store.authenticate("wang.fang", PASSWORD, address=HERE))
    elsewhere = store.start_session(store.authenticate("wang.fang", PASSWORD, address=THERE))
    with pytest.raises(ValidationError) as weak:
        store.change_password("wang.fang", PASSWORD, "short", address=HERE, keep_session=here.token)
    assert weak.value.message == "password.too_short"
    with pytest.raises(LoginRefusedError):
        store.change_password(
            "wang.fang", "not-it-at-all", "new-bamboo-77", address=HERE, keep_session=here.token
        )
    ended = store.change_password(
        "wang.fang", PASSWORD, "new-bamboo-77", address=HERE, keep_session=here.token
    )
    assert ended == 1
    assert store.session(here.token) is not None
    assert store.session(elsewhere.token) is None
    assert store.authenticate("wang.fang", "new-bamboo-77", address=HERE).username == "wang.fang"
    rows = audit_rows(database)
    assert ("wang.fang", "user.password_refused", "user:wang.fang", "") in rows
    assert ("wang.fang", "user.password", "user:wang.fang", "1 other sessions ended") in rows
    assert "new-bamboo-77" not in repr(rows)


def test_guessing_the_current_password_pauses_like_a_sign_in(store: AccountStore) -> None:
    store.create_user("wang.fang", "host", PASSWORD)
    grant = store.start_session(store.authenticate("wang.fang", PASSWORD, address=HERE))
    for _ in range(5):
        with pytest.raises(LoginRefusedError):
            store.change_password(
                "wang.fang", "guess-guess-1", "new-bamboo-77", address=HERE,
                keep_session=grant.token,
            )  # fmt: skip
    with pytest.raises(LoginRefusedError):
        store.change_password(
            "wang.fang", PASSWORD, "new-bamboo-77", address=HERE, keep_session=grant.token
        )
    assert store.authenticate("wang.fang", PASSWORD, address=THERE).username == "wang.fang"


def test_unlock_lifts_every_pause_of_an_account(store: AccountStore, database: Database) -> None:
    store.create_user("li.na", "police", PASSWORD)
    for address in (HERE, THERE):
        for _ in range(5):
            assert refused(store, "li.na", "guess-guess-guess", address)
    assert store.paused_addresses("li.na") == 2
    assert store.unlock("li.na") == 2
    assert store.paused_addresses("li.na") == 0
    assert store.authenticate("li.na", PASSWORD, address=HERE).username == "li.na"
    assert ("cli", "user.unlock", "user:li.na", "2 paused addresses") in audit_rows(database)
    with pytest.raises(ValidationError) as unknown:
        store.unlock("nobody")
    assert unknown.value.message == "username.unknown"


def test_revoke_ends_every_session_of_one_account(store: AccountStore, database: Database) -> None:
    store.create_user("li.na", "police", PASSWORD)
    store.create_user("wang.fang", "host", PASSWORD)
    tokens = [store.start_session(store.authenticate("li.na", PASSWORD)).token for _ in range(3)]
    other = store.start_session(store.authenticate("wang.fang", PASSWORD)).token
    assert store.revoke("li.na") == 3
    assert all(store.session(token) is None for token in tokens)
    assert store.session(other) is not None
    assert ("cli", "user.revoke", "user:li.na", "3 sessions ended") in audit_rows(database)
    with pytest.raises(ValidationError):
        store.revoke("nobody")


def test_delete_user(store: AccountStore, database: Database) -> None:
    store.create_user("li.na", "police", PASSWORD)
    token = store.start_session(store.authenticate("li.na", PASSWORD)).token
    store.delete_user("li.na")
    assert store.get_user("li.na") is None
    assert store.session(token) is None
    assert refused(store, "li.na", PASSWORD)
    assert ("cli", "user.delete", "user:li.na", "") in audit_rows(database)
    with pytest.raises(ValidationError) as unknown:
        store.delete_user("li.na")
    assert unknown.value.message == "username.unknown"


def test_summaries_list_sessions_and_pauses(store: AccountStore, database: Database) -> None:
    store.create_user("li.na", "police", PASSWORD)
    store.create_user("wang.fang", "host", PASSWORD)
    store.start_session(store.authenticate("li.na", PASSWORD))
    for _ in range(5):
        assert refused(store, "wang.fang", "guess-guess-guess")
    summary = {s.account.username: (s.sessions, s.paused_addresses) for s in store.summaries()}
    assert summary == {"li.na": (1, 0), "wang.fang": (0, 1)}
    assert ("cli", "user.list", "users", "2 accounts") in audit_rows(database)


# -- sessions -----------------------------------------------------------------------------------


def test_sessions_end_after_the_idle_timeout(store: AccountStore, clock: FakeClock) -> None:
    store.create_user("wang.fang", "host", PASSWORD)
    grant = store.start_session(store.authenticate("wang.fang", PASSWORD))
    for _ in range(6):  # used every 14 minutes: stays
        clock.now += 14 * 60
        assert store.session(grant.token) is not None
    clock.now += 15 * 60
    assert store.session(grant.token) is None


def test_an_idle_session_stays_ended(store: AccountStore, clock: FakeClock) -> None:
    store.create_user("wang.fang", "host", PASSWORD)
    grant = store.start_session(store.authenticate("wang.fang", PASSWORD))
    clock.now += 15 * 60 + 1
    assert store.session(grant.token) is None
    clock.now += 1
    assert store.session(grant.token) is None


def test_sessions_end_at_their_absolute_lifetime_however_busy(
    store: AccountStore, clock: FakeClock
) -> None:
    store.create_user("wang.fang", "host", PASSWORD)
    grant = store.start_session(store.authenticate("wang.fang", PASSWORD))
    assert grant.session.expires_at == clock.now + 2 * 3600
    started = clock.now
    while clock.now + 60 < started + 2 * 3600:
        clock.now += 60
        assert store.session(grant.token) is not None
    clock.now = started + 2 * 3600
    assert store.session(grant.token) is None


def test_kiosk_screen_sessions_are_short(store: AccountStore, clock: FakeClock) -> None:
    store.create_user("li.na", "police", PASSWORD)
    grant = store.start_session(store.authenticate("li.na", PASSWORD), kiosk=True)
    assert grant.session.kiosk
    clock.now += 9 * 60
    session = store.session(grant.token)
    assert session is not None and session.kiosk
    clock.now += 60
    assert store.session(grant.token) is None


def test_last_seen_is_written_at_most_every_thirty_seconds(
    store: AccountStore, clock: FakeClock
) -> None:
    store.create_user("wang.fang", "host", PASSWORD)
    grant = store.start_session(store.authenticate("wang.fang", PASSWORD))

    def last_seen() -> float:
        with store._database.read() as db:
            return float(db.execute("SELECT last_seen FROM sessions").fetchone()[0])

    started = last_seen()
    clock.now += 10
    assert store.session(grant.token) is not None
    assert last_seen() == started
    clock.now += 25
    assert store.session(grant.token) is not None
    assert last_seen() == clock.now


def test_sessions_expire_and_end(store: AccountStore, clock: FakeClock) -> None:
    store.create_user("wang.fang", "host", PASSWORD)
    grant = store.start_session(store.authenticate("wang.fang", PASSWORD))
    session = store.session(grant.token)
    assert session is not None
    assert (session.username, session.role) == ("wang.fang", Role.HOST)
    assert session.csrf_token and session.csrf_token != grant.token
    assert store.session(grant.token + "x") is None

    again = store.start_session(store.authenticate("wang.fang", PASSWORD))
    store.end_session(again.token)
    assert store.session(again.token) is None


def test_sign_out_is_audited(store: AccountStore, database: Database) -> None:
    store.create_user("wang.fang", "host", PASSWORD)
    grant = store.start_session(store.authenticate("wang.fang", PASSWORD))
    store.end_session(grant.token)
    store.end_session(grant.token)  # a second sign-out of the same token is not an event
    logouts = [row for row in audit_rows(database) if row[1] == "auth.logout"]
    assert logouts == [("wang.fang", "auth.logout", "user:wang.fang", "")]


def test_session_token_is_not_stored_in_clear(store: AccountStore) -> None:
    store.create_user("wang.fang", "host", PASSWORD)
    grant = store.start_session(store.authenticate("wang.fang", PASSWORD))
    with store._database.read() as db:
        rows = db.execute("SELECT * FROM sessions").fetchall()
    assert rows and all(grant.token not in map(str, row) for row in rows)


def test_upgrade_from_the_account_wide_lock(tmp_path: Path, clock: FakeClock) -> None:
    """A database of the previous version: its lock no longer applies, its sessions end."""
    database = Database(tmp_path / "kiosk.sqlite3")
    database.migrate("accounts", MIGRATIONS[:1])
    old = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with database.write() as db:
        db.execute(
            "INSERT INTO users (username, role, password_hash, failed_logins, locked_until,"
            " created_at) VALUES ('li.na', 'police', ?, 4, ?, 0)",
            [old.hash(PASSWORD), clock.now + 3600],
        )
        db.execute(
            "INSERT INTO sessions VALUES ('digest', 'li.na', 'csrf', 0, ?)", [clock.now + 3600]
        )
    store = AccountStore(database, hasher=CountingHasher(), clock=clock)
    with database.read() as db:
        assert db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
    assert store.authenticate("li.na", PASSWORD, address=HERE).username == "li.na"
