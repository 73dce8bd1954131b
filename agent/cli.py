"""The ``village-kiosk`` command (also ``python -m agent``)."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError as PydanticValidationError

from agent import __version__
from agent.config import AgentConfig, Resolution, load_config, with_overrides
from agent.errors import ConfigError, KioskError, ValidationError

log = logging.getLogger(__name__)


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
        return Path(args.password_file).read_text(encoding="utf-8").rstrip("\r\n")
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Repeat password: "):
            raise ValidationError("password", "the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def _cmd_user_add(args: argparse.Namespace) -> int:
    try:
        config = _load(args)
    except ConfigError as exc:
        return _report_config_error(args.config, exc)
    from agent.accounts import ERROR_MESSAGES, AccountStore
    from agent.store.database import Database
    from agent.store.media import database_path

    try:
        password = _read_password(args)
        database = Database(database_path(config.device.data_dir))
        try:
            AccountStore(database).create_user(args.username, args.role, password)
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
    print(f"user {args.username} added with role {args.role}")
    return 0


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
    add = user_commands.add_parser("add", help="create an account (password read from stdin)")
    add.add_argument("--config", required=True, help="TOML config file")
    add.add_argument("--data-dir", help="data directory (overrides device.data_dir)")
    add.add_argument("--username", required=True)
    add.add_argument("--role", required=True, choices=["admin", "police", "host", "family"])
    add.add_argument("--password-file", help="read the password from this file")
    add.set_defaults(handler=_cmd_user_add)

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
