"""`countersign user ...`: create, list, disable, enable and unlock dashboard users."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@contextmanager
def _unit_of_work() -> Iterator[Session]:
    """One transaction on the configured database (DATABASE_URL, else the embedded one)."""
    from app.core.config import Settings
    from app.core.db import transaction
    from app.core.runtime import open_database

    engine, sessions = open_database(Settings())
    try:
        with transaction(sessions) as session:
            yield session
    finally:
        engine.dispose()


def _read_password(args: argparse.Namespace) -> str | None:
    """The new password from stdin (one line) or typed twice at a prompt; None on a mismatch."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        print("countersign: no terminal to prompt on: use --password-stdin", file=sys.stderr)
        return None
    first = getpass.getpass("Password: ")
    second = getpass.getpass("Password again: ")
    if first != second:
        print("countersign: the passwords do not match", file=sys.stderr)
        return None
    return first


def _run(action: Callable[[Session], str]) -> int:
    """Run `action` in a transaction and print its message; user errors exit with status 1."""
    from app.core.errors import AppError

    try:
        with _unit_of_work() as session:
            message = action(session)
    except AppError as exc:
        print(f"countersign: {exc.detail}", file=sys.stderr)
        return 1
    print(message)
    return 0


def cmd_user_create(args: argparse.Namespace) -> int:
    """Create a user with a password read from stdin or the terminal."""
    from app.users import service

    password = _read_password(args)
    if password is None:
        return 2

    def create(session: Session) -> str:
        user = service.create_user(session, name=args.name, password=password, role=args.role)
        return f"created {user.role} {user.name}"

    return _run(create)


def cmd_user_list(args: argparse.Namespace) -> int:
    """Print every user with role, state and last sign-in."""
    from app.core.db import utcnow
    from app.users import service

    def listing(session: Session) -> str:
        now = utcnow()
        rows = [("NAME", "ROLE", "STATE", "LAST SIGN-IN")]
        for user in service.list_users(session):
            if user.disabled:
                state = "disabled"
            elif service.is_locked(user, now):
                assert user.locked_until is not None
                state = f"locked until {user.locked_until:%Y-%m-%d %H:%M} UTC"
            else:
                state = "active"
            last = f"{user.last_login_at:%Y-%m-%d %H:%M} UTC" if user.last_login_at else "never"
            rows.append((user.name, user.role, state, last))
        if len(rows) == 1:
            return "no users yet: create one with `countersign user create NAME --role admin`"
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join(
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r[:3])) + "  " + r[3]
            for r in rows
        )

    return _run(listing)


def cmd_user_disable(args: argparse.Namespace) -> int:
    """Disable a user and end their sessions."""
    from app.users import service

    def disable(session: Session) -> str:
        user = service.set_user_disabled(session, name=args.name, disabled=True)
        return f"disabled {user.name} (signed out everywhere)"

    return _run(disable)


def cmd_user_enable(args: argparse.Namespace) -> int:
    """Enable a disabled user."""
    from app.users import service

    def enable(session: Session) -> str:
        user = service.set_user_disabled(session, name=args.name, disabled=False)
        return f"enabled {user.name}"

    return _run(enable)


def cmd_user_unlock(args: argparse.Namespace) -> int:
    """Lift a lockout after failed sign-ins."""
    from app.users import service

    def unlock(session: Session) -> str:
        user = service.unlock_user(session, name=args.name)
        return f"unlocked {user.name}"

    return _run(unlock)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `user` command and its subcommands to the `countersign` parser."""
    from app.users.models import UserRole

    parser = subparsers.add_parser("user", help="manage dashboard users")
    sub = parser.add_subparsers(dest="user_command", required=True)

    p = sub.add_parser("create", help="create a user (password prompted twice, or from stdin)")
    p.add_argument("name")
    p.add_argument("--role", choices=[r.value for r in UserRole], default=UserRole.ANALYST.value)
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from the first stdin line"
    )
    p.set_defaults(func=cmd_user_create)

    p = sub.add_parser("list", help="list users")
    p.set_defaults(func=cmd_user_list)

    p = sub.add_parser("disable", help="disable a user and end their sessions")
    p.add_argument("name")
    p.set_defaults(func=cmd_user_disable)

    p = sub.add_parser("enable", help="enable a disabled user")
    p.add_argument("name")
    p.set_defaults(func=cmd_user_enable)

    p = sub.add_parser("unlock", help="lift a lockout after failed sign-ins")
    p.add_argument("name")
    p.set_defaults(func=cmd_user_unlock)
