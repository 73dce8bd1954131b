from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher

from agent.accounts import AccountStore, LoginRefusedError, Role
from agent.errors import ValidationError
from agent.store.database import Database

PASSWORD = "river-stone-42"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> AccountStore:
    return AccountStore(
        Database(tmp_path / "kiosk.sqlite3"),
        login_max_failures=5,
        lockout_minutes=15,
        session_hours=2,
        hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
        clock=clock,
    )


def test_password_is_stored_as_argon2id_hash_only(tmp_path: Path) -> None:
    database = Database(tmp_path / "kiosk.sqlite3")
    AccountStore(database).create_user("zhang.wei", "host", PASSWORD)
    with database.read() as db:
        stored = db.execute("SELECT password_hash FROM users").fetchone()[0]
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


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
    assert store.authenticate("li.na", PASSWORD).role is Role.POLICE
    with pytest.raises(LoginRefusedError) as wrong:
        store.authenticate("li.na", "not-the-password")
    assert wrong.value.locked_until is None
    with pytest.raises(LoginRefusedError):
        store.authenticate("nobody", PASSWORD)


def test_fifth_wrong_password_locks_for_a_while(store: AccountStore, clock: FakeClock) -> None:
    store.create_user("li.na", "police", PASSWORD)
    for _ in range(4):
        with pytest.raises(LoginRefusedError) as refused:
            store.authenticate("li.na", "guess-guess-guess")
        assert refused.value.locked_until is None
    with pytest.raises(LoginRefusedError) as fifth:
        store.authenticate("li.na", "guess-guess-guess")
    assert fifth.value.locked_until == clock.now + 15 * 60
    # Locked: even the right password is refused ...
    with pytest.raises(LoginRefusedError) as locked:
        store.authenticate("li.na", PASSWORD)
    assert locked.value.locked_until is not None
    # ... until the lockout has passed.
    clock.now += 15 * 60 + 1
    assert store.authenticate("li.na", PASSWORD).username == "li.na"


def test_success_resets_failure_count(store: AccountStore) -> None:
    store.create_user("li.na", "police", PASSWORD)
    for _ in range(4):
        with pytest.raises(LoginRefusedError):
            store.authenticate("li.na", "guess-guess-guess")
    store.authenticate("li.na", PASSWORD)
    for _ in range(4):
        with pytest.raises(LoginRefusedError) as refused:
            store.authenticate("li.na", "guess-guess-guess")
        assert refused.value.locked_until is None


def test_sessions_expire_and_end(store: AccountStore, clock: FakeClock) -> None:
    store.create_user("wang.fang", "host", PASSWORD)
    grant = store.start_session(store.authenticate("wang.fang", PASSWORD))
    session = store.session(grant.token)
    assert session is not None
    assert (session.username, session.role) == ("wang.fang", Role.HOST)
    assert session.csrf_token and session.csrf_token != grant.token
    assert store.session(grant.token + "x") is None
    clock.now += 2 * 3600 + 1
    assert store.session(grant.token) is None

    again = store.start_session(store.authenticate("wang.fang", PASSWORD))
    store.end_session(again.token)
    assert store.session(again.token) is None


def test_session_token_is_not_stored_in_clear(store: AccountStore) -> None:
    store.create_user("wang.fang", "host", PASSWORD)
    grant = store.start_session(store.authenticate("wang.fang", PASSWORD))
    with store._database.read() as db:
        rows = db.execute("SELECT * FROM sessions").fetchall()
    assert rows and all(grant.token not in map(str, row) for row in rows)


def test_set_password_ends_sessions(store: AccountStore) -> None:
    store.create_user("wang.fang", "host", PASSWORD)
    grant = store.start_session(store.authenticate("wang.fang", PASSWORD))
    store.set_password("wang.fang", "new-bamboo-77")
    assert store.session(grant.token) is None
    with pytest.raises(LoginRefusedError):
        store.authenticate("wang.fang", PASSWORD)
    assert store.authenticate("wang.fang", "new-bamboo-77").role is Role.HOST


def test_from_config_takes_lockout_and_session_length(tmp_path: Path) -> None:
    from agent.config import WebConfig

    web = WebConfig(login_max_failures=1, lockout_minutes=1, session_hours=1)
    store = AccountStore.from_config(Database(tmp_path / "kiosk.sqlite3"), web)
    store.create_user("li.na", "police", PASSWORD)
    with pytest.raises(LoginRefusedError) as first:
        store.authenticate("li.na", "guess-guess-guess")
    assert first.value.locked_until is not None
