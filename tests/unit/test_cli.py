"""The village-kiosk command's smaller subcommands."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.accounts import AccountStore
from agent.audit import AuditLog
from agent.cli import main
from agent.store.database import Database
from agent.store.media import database_path

PASSWORD = "a long village passphrase"
ADDRESS = "192.0.2.44"


def test_motion_eval_scores_a_synthetic_scene(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["motion-eval", "--scene", "car", "--size", "160x120", "--frames", "60"]) == 0
    out = capsys.readouterr().out
    assert "scene car" in out
    assert "pixel F1" in out
    assert "false events" in out


def test_motion_eval_needs_exactly_one_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["motion-eval"]) == 2
    assert "either PATH or --scene" in capsys.readouterr().err
    assert main(["motion-eval", str(tmp_path / "nothing"), "--scene", "car"]) == 2
    capsys.readouterr()
    assert main(["motion-eval", str(tmp_path / "nothing")]) == 2
    captured = capsys.readouterr()
    assert "neither a CDnet folder nor a video file" in captured.out + captured.err


class Kiosk:
    """A config and data directory for the ``user`` subcommands."""

    def __init__(self, tmp_path: Path) -> None:
        self.config = tmp_path / "kiosk.toml"
        self.config.write_text('[device]\nid = "k1"\n')
        self.data_dir = tmp_path / "data"
        self.tmp_path = tmp_path

    def args(self, command: str, *extra: str) -> list[str]:
        return [
            "user", command, "--config", str(self.config), "--data-dir", str(self.data_dir),
            *extra,
        ]  # fmt: skip

    def password_file(self, text: str, name: str = "password") -> str:
        path = self.tmp_path / name
        path.write_text(text + "\n")
        return str(path)

    def add(self, username: str, role: str = "police") -> None:
        password = self.password_file(PASSWORD)
        assert main(self.args("add", "--username", username, "--role", role,
                              "--password-file", password)) == 0  # fmt: skip

    def store(self) -> tuple[Database, AccountStore]:
        database = Database(database_path(self.data_dir))
        return database, AccountStore(database)

    def audit(self) -> list[tuple[str, str, str]]:
        database = Database(database_path(self.data_dir))
        try:
            return [(e.actor, e.action, e.subject) for e in AuditLog(database).entries()][::-1]
        finally:
            database.close()


@pytest.fixture
def kiosk(tmp_path: Path) -> Kiosk:
    return Kiosk(tmp_path)


def test_user_add_refuses_a_weak_password_and_creates_a_good_one(
    kiosk: Kiosk, capsys: pytest.CaptureFixture[str]
) -> None:
    weak = kiosk.password_file("123", "weak")
    add = kiosk.args("add", "--username", "li.police", "--role", "police")
    assert main([*add, "--password-file", weak]) == 2
    assert "password: at least 10 characters" in capsys.readouterr().err
    assert main([*add, "--password-file", kiosk.password_file(PASSWORD)]) == 0
    assert "added with role police" in capsys.readouterr().out
    assert kiosk.audit() == [("cli", "user.add", "user:li.police")]


def test_user_list_shows_accounts_sessions_and_pauses(
    kiosk: Kiosk, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(kiosk.args("list")) == 0
    assert "no accounts yet" in capsys.readouterr().out
    kiosk.add("li.police")
    kiosk.add("wang.host", "host")
    database, store = kiosk.store()
    store.start_session(store.authenticate("li.police", PASSWORD, address=ADDRESS))
    for _ in range(5):
        with pytest.raises(Exception, match="wrong username or password"):
            store.authenticate("wang.host", "guess-guess-guess", address=ADDRESS)
    database.close()
    capsys.readouterr()
    assert main(kiosk.args("list")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["username", "role", "created", "sessions", "paused"]
    police = lines[1].split()
    host = lines[2].split()
    assert (police[0], police[1], police[-2], police[-1]) == ("li.police", "police", "1", "0")
    assert (host[0], host[1], host[-2], host[-1]) == ("wang.host", "host", "0", "1")
    assert kiosk.audit()[-1] == ("cli", "user.list", "users")


def test_user_passwd_sets_a_new_password_and_ends_sessions(
    kiosk: Kiosk, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    kiosk.add("li.police")
    database, store = kiosk.store()
    token = store.start_session(store.authenticate("li.police", PASSWORD, address=ADDRESS)).token
    database.close()
    monkeypatch.setattr("sys.stdin", io.StringIO("another village passphrase\n"))
    assert main(kiosk.args("passwd", "--username", "li.police")) == 0
    assert "1 sessions ended" in capsys.readouterr().out
    database, store = kiosk.store()
    assert store.session(token) is None
    assert store.authenticate("li.police", "another village passphrase").username == "li.police"
    database.close()
    assert ("cli", "user.password", "user:li.police") in kiosk.audit()
    out_and_err = capsys.readouterr()
    assert "another village passphrase" not in out_and_err.out + out_and_err.err


@pytest.mark.parametrize(
    ("command", "stdin", "message"),
    [
        ("passwd", "short\n", "password: at least 10 characters"),
        ("passwd", "a fine new passphrase\n", "username: no account has this username"),
        ("delete", "", "username: no account has this username"),
        ("unlock", "", "username: no account has this username"),
        ("revoke", "", "username: no account has this username"),
    ],
)
def test_user_commands_refuse_bad_input_with_exit_code_2(
    kiosk: Kiosk,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    stdin: str,
    message: str,
) -> None:
    import io

    kiosk.add("li.police")
    capsys.readouterr()
    username = "li.police" if "short" in stdin else "ghost"
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(kiosk.args(command, "--username", username)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err


def test_user_password_file_must_exist(kiosk: Kiosk, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(kiosk.tmp_path / "nope")
    args = kiosk.args("add", "--username", "li.police", "--role", "police")
    assert main([*args, "--password-file", missing]) == 2
    assert "No such file" in capsys.readouterr().err


def test_user_delete_unlock_and_revoke(kiosk: Kiosk, capsys: pytest.CaptureFixture[str]) -> None:
    kiosk.add("li.police")
    kiosk.add("wang.host", "host")
    database, store = kiosk.store()
    tokens = [
        store.start_session(store.authenticate("li.police", PASSWORD, address=ADDRESS)).token
        for _ in range(2)
    ]
    for _ in range(5):
        with pytest.raises(Exception, match="wrong username or password"):
            store.authenticate("li.police", "guess-guess-guess", address=ADDRESS)
    database.close()
    capsys.readouterr()

    assert main(kiosk.args("unlock", "--username", "li.police")) == 0
    assert "1 addresses were paused" in capsys.readouterr().out
    assert main(kiosk.args("revoke", "--username", "li.police")) == 0
    assert "2 sessions of li.police ended" in capsys.readouterr().out
    database, store = kiosk.store()
    assert all(store.session(token) is None for token in tokens)
    assert store.authenticate("li.police", PASSWORD, address=ADDRESS).username == "li.police"
    database.close()

    assert main(kiosk.args("delete", "--username", "wang.host")) == 0
    assert "user wang.host deleted" in capsys.readouterr().out
    database, store = kiosk.store()
    assert [account.username for account in store.list_users()] == ["li.police"]
    database.close()
    actions = [(actor, action) for actor, action, _ in kiosk.audit()]
    for action in ("user.unlock", "user.revoke", "user.delete"):
        assert ("cli", action) in actions


def test_the_cli_offers_every_role_of_the_accounts() -> None:
    from agent.accounts import Role
    from agent.cli import ROLE_NAMES

    assert set(ROLE_NAMES) == {role.value for role in Role}
