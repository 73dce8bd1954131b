"""The ``village-kiosk`` command (also ``python -m agent``)."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError as PydanticValidationError

from agent import __version__
from agent.config import AgentConfig, Resolution, load_config, with_overrides
from agent.errors import ConfigError, KioskError, ValidationError

if TYPE_CHECKING:
    from agent.accounts import AccountStore

log = logging.getLogger(__name__)
# agent.accounts (argon2) is imported only by the commands that use it; its role names are these.
ROLE_NAMES = ("admin", "police", "host", "family", "staff")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _load(args: argparse.Namespace) -> AgentConfig:
    config = load_config(Path(args.config))
    return with_overrides(
        config,
        port=getattr(args, "port", None),
        data_dir=Path(args.data_dir) if getattr(args, "data_dir", None) else None,
    )


def _report_config_error(path: str, error: ConfigError) -> int:
    print(f"{path}: invalid configuration", file=sys.stderr)
    for problem in error.problems:
        print(f"  {problem}", file=sys.stderr)
    return 2


def _cmd_run(args: argparse.Namespace) -> int:
    try:
        config = _load(args)
    except ConfigError as exc:
        return _report_config_error(args.config, exc)
    from agent.runtime import run_agent  # heavy imports only for the command that needs them

    return run_agent(config)


def _cmd_check_config(args: argparse.Namespace) -> int:
    try:
        config = load_config(Path(args.config))
    except ConfigError as exc:
        return _report_config_error(args.config, exc)
    cameras = ", ".join(camera.id for camera in config.cameras) or "none"
    print(f"{args.config}: OK (device {config.device.id}, cameras: {cameras})")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_file:
        try:
            return Path(args.password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise ValidationError("password", "the password file is not UTF-8 text") from exc
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Repeat password: "):
            raise ValidationError("password", "the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _user_command(
    args: argparse.Namespace, action: Callable[[AccountStore], str], *, password: bool = False
) -> int:
    """Open the kiosk database, run ``action`` on its accounts, print what it returns.

    Every account change is written to the audit log by the store, with ``cli`` as actor.
    """
    try:
        config = _load(args)
    except ConfigError as exc:
        return _report_config_error(args.config, exc)
    from agent.accounts import ERROR_MESSAGES, AccountStore
    from agent.store.database import Database
    from agent.store.media import database_path

    try:
        if password:
            args.password = _read_password(args)
        database = Database(database_path(config.device.data_dir))
        try:
            accounts = AccountStore(database)
            accounts.apply_policy(config.web)
            message = action(accounts)
        finally:
            database.close()
    except ValidationError as exc:
        print(
            f"error: {exc.field}: {ERROR_MESSAGES.get(exc.message, exc.message)}", file=sys.stderr
        )
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if message:
        print(message)
    return 0


def _cmd_user_add(args: argparse.Namespace) -> int:
    def add(accounts: AccountStore) -> str:
        accounts.create_user(args.username, args.role, args.password)
        return f"user {args.username} added with role {args.role}"

    return _user_command(args, add, password=True)


def _cmd_user_list(args: argparse.Namespace) -> int:
    def listing(accounts: AccountStore) -> str:
        summaries = accounts.summaries()
        if not summaries:
            return "no accounts yet: add one with 'village-kiosk user add'"
        lines = [f"{'username':<32} {'role':<7} {'created':<16} {'sessions':>8} {'paused':>6}"]
        for summary in summaries:
            account = summary.account
            created = datetime.fromtimestamp(account.created_at).strftime("%Y-%m-%d %H:%M")
            lines.append(
                f"{account.username:<32} {account.role.value:<7} {created:<16}"
                f" {summary.sessions:>8} {summary.paused_addresses:>6}"
            )
        return "\n".join(lines)

    return _user_command(args, listing)


def _cmd_user_passwd(args: argparse.Namespace) -> int:
    def passwd(accounts: AccountStore) -> str:
        ended = accounts.set_password(args.username, args.password)
        return f"password of {args.username} changed; {ended} sessions ended"

    return _user_command(args, passwd, password=True)


def _cmd_user_delete(args: argparse.Namespace) -> int:
    def delete(accounts: AccountStore) -> str:
        accounts.delete_user(args.username)
        return f"user {args.username} deleted"

    return _user_command(args, delete)


def _cmd_user_unlock(args: argparse.Namespace) -> int:
    def unlock(accounts: AccountStore) -> str:
        lifted = accounts.unlock(args.username)
        return f"sign-in of {args.username} unpaused ({lifted} addresses were paused)"

    return _user_command(args, unlock)


def _cmd_user_revoke(args: argparse.Namespace) -> int:
    def revoke(accounts: AccountStore) -> str:
        ended = accounts.revoke(args.username)
        return f"{ended} sessions of {args.username} ended"

    return _user_command(args, revoke)


def _cmd_motion_eval(args: argparse.Namespace) -> int:
    from agent.motion import MotionConfig
    from agent.motion_eval import run_motion_eval

    if (args.path is None) == (args.scene is None):
        print("error: give either PATH or --scene NAME", file=sys.stderr)
        return 2
    return run_motion_eval(
        Path(args.path) if args.path else None,
        MotionConfig(),
        sys.stdout,
        scene=args.scene,
        seed=args.seed,
        size=(args.size.width, args.size.height),
        frames=args.frames,
        fps=args.fps,
    )


def _size(text: str) -> Resolution:
    try:
        return Resolution.model_validate(text)
    except PydanticValidationError as exc:
        raise argparse.ArgumentTypeError("must look like 640x480") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="village-kiosk", description="Village video-patrol kiosk agent"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the agent")
    run.add_argument("--config", required=True, help="TOML config file")
    run.add_argument("--port", type=int, help="web UI port (overrides web.port)")
    run.add_argument("--data-dir", help="data directory (overrides device.data_dir)")
    run.set_defaults(handler=_cmd_run)

    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("config", help="TOML config file")
    check.set_defaults(handler=_cmd_check_config)

    user = commands.add_parser("user", help="manage web UI accounts")
    user_commands = user.add_subparsers(dest="user_command", required=True)

    def user_command(
        name: str, help_text: str, handler: Callable[[argparse.Namespace], int]
    ) -> Any:
        command = user_commands.add_parser(name, help=help_text)
        command.add_argument("--config", required=True, help="TOML config file")
        command.add_argument("--data-dir", help="data directory (overrides device.data_dir)")
        command.set_defaults(handler=handler)
        return command

    add = user_command("add", "create an account (password read from stdin)", _cmd_user_add)
    add.add_argument("--username", required=True)
    add.add_argument("--role", required=True, choices=ROLE_NAMES)
    add.add_argument("--password-file", help="read the password from this file")
    user_command("list", "list accounts with their sessions and sign-in pauses", _cmd_user_list)
    passwd = user_command(
        "passwd", "set a new password (read from stdin); ends the user's sessions", _cmd_user_passwd
    )
    passwd.add_argument("--username", required=True)
    passwd.add_argument("--password-file", help="read the password from this file")
    delete = user_command("delete", "delete an account and end its sessions", _cmd_user_delete)
    delete.add_argument("--username", required=True)
    unlock = user_command(
        "unlock", "lift the sign-in pauses wrong passwords put on an account", _cmd_user_unlock
    )
    unlock.add_argument("--username", required=True)
    revoke = user_command("revoke", "end every session of an account", _cmd_user_revoke)
    revoke.add_argument("--username", required=True)

    evaluate = commands.add_parser(
        "motion-eval", help="score the motion detector on a video or a CDnet-2014 folder"
    )
    evaluate.add_argument("path", nargs="?", help="video file or CDnet-format folder")
    evaluate.add_argument("--scene", help="score a synthetic scene instead (e.g. walking_person)")
    evaluate.add_argument("--seed", type=int, default=0, help="scene seed")
    evaluate.add_argument("--size", type=_size, default="640x480", help="scene size")
    evaluate.add_argument("--frames", type=int, help="frames to score (default: the scene's)")
    evaluate.add_argument("--fps", type=float, help="frame rate for event timing")
    evaluate.set_defaults(handler=_cmd_motion_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        return int(args.handler(args))
    except KioskError as exc:
        # An expected failure (camera, store, link): one clear line, no traceback.
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
