"""Admin commands: `countersign directory ...` and `countersign apikey ...`.

Each command opens the database (migrated to head), runs in one transaction and closes it.
Database and directory modules are imported when a command runs, so registering these commands
does not slow down `countersign classify`.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.core.config import Settings


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def cli_actor() -> str:
    """Who the command acts as, for provenance and the audit log."""
    return f"cli:{_os_user()}"[:200]


@contextmanager
def _unit_of_work(settings: Settings | None) -> Iterator[Session]:
    """One transaction on a freshly opened (and migrated) database."""
    from app.core.config import Settings
    from app.core.db import transaction
    from app.core.runtime import open_database

    engine, sessions = open_database(settings or Settings(), migrate=True)
    try:
        with transaction(sessions) as session:
            yield session
    finally:
        engine.dispose()


def _fail(message: str) -> int:
    print(f"countersign: {message}", file=sys.stderr)
    return 2


class Command(Protocol):
    """A command function: parsed arguments, and settings (from the environment when None)."""

    def __call__(self, args: argparse.Namespace, settings: Settings | None = None) -> int: ...


def _reports_errors(command: Command) -> Command:
    """Bad input and an unreachable database end the command with a message and status 2."""

    @functools.wraps(command)
    def run(args: argparse.Namespace, settings: Settings | None = None) -> int:
        from sqlalchemy.exc import OperationalError

        from app.core.errors import AppError

        try:
            return command(args, settings)
        except AppError as exc:
            return _fail(exc.detail)
        except OperationalError as exc:
            return _fail(f"database unavailable: {str(exc.orig or exc).strip()[:200]}")

    return run


@_reports_errors
def cmd_directory_import(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Import a directory file (CSV, JSON or YAML) and print the counts as JSON."""
    from app.core.config import Settings
    from app.core.errors import AppError
    from app.directory import service

    path = Path(args.file)
    try:
        content = path.read_bytes()
    except OSError as exc:
        return _fail(f"cannot read {path}: {exc.strerror or exc}")
    settings = settings or Settings()
    key = settings.fingerprint_key.get_secret_value().encode()
    try:
        data = service.parse_directory_file(path.name, content)
        with _unit_of_work(settings) as session:
            counts = service.import_directory(session, data, key=key, actor=cli_actor())
    except AppError as exc:
        return _fail(f"{path}: {exc.detail}")
    print(json.dumps(counts, indent=2))
    return 0


@_reports_errors
def cmd_directory_show(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Print the directory as JSON, with provenance and masked bank accounts."""
    from app.core.models import AuditLog
    from app.directory import service

    with _unit_of_work(settings) as session:
        listing = service.read_directory(session)
        session.add(AuditLog(actor=cli_actor(), action="directory.view", target="all"))
    print(listing.model_dump_json(indent=2))
    return 0


@_reports_errors
def cmd_directory_clear(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Remove every directory entry (asks for --yes)."""
    if not args.yes:
        return _fail("this removes every directory entry; run again with --yes to confirm")
    from app.directory import service

    with _unit_of_work(settings) as session:
        service.clear_directory(session, actor=cli_actor())
    print("directory cleared", file=sys.stderr)
    return 0


@_reports_errors
def cmd_apikey_create(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Create a named API key and print it (the only time it is shown)."""
    from app.core.models import AuditLog
    from app.core.security import create_api_key

    with _unit_of_work(settings) as session:
        key = create_api_key(session, name=args.name)
        session.add(AuditLog(actor=cli_actor(), action="apikey.create", target=args.name))
    print(key)
    print("store this key now: it is not shown again", file=sys.stderr)
    return 0


@_reports_errors
def cmd_apikey_revoke(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Revoke a named API key."""
    from app.core.models import AuditLog
    from app.core.security import revoke_api_key

    with _unit_of_work(settings) as session:
        revoked = revoke_api_key(session, name=args.name)
        if revoked:
            session.add(AuditLog(actor=cli_actor(), action="apikey.revoke", target=args.name))
    if not revoked:
        return _fail(f"no active API key named {args.name!r}")
    print(f"revoked {args.name}", file=sys.stderr)
    return 0


def _when(at: datetime | None, default: str) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else default


@_reports_errors
def cmd_apikey_list(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """List API keys: name, prefix, created, last used, revoked (never the key)."""
    from sqlalchemy import select

    from app.core.models import ApiKey

    with _unit_of_work(settings) as session:
        keys = list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))
    rows: list[dict[str, Any]] = [
        {
            "name": k.name,
            "prefix": k.prefix,
            "created_at": k.created_at.isoformat(),
            "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
            "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
        }
        for k in keys
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max([len("NAME"), *(len(k.name) for k in keys)])
    print(f"{'NAME':<{width}}  {'PREFIX':<8}  {'CREATED':<20}  {'LAST USED':<20}  REVOKED")
    for k in keys:
        print(
            f"{k.name:<{width}}  {k.prefix:<8}  {_when(k.created_at, ''):<20}  "
            f"{_when(k.last_used_at, 'never'):<20}  {_when(k.revoked_at, '-')}"
        )
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `directory` and `apikey` commands to the `countersign` parser."""
    directory = subparsers.add_parser("directory", help="manage the organisation's directory")
    dsub = directory.add_subparsers(dest="directory_command", required=True)
    p = dsub.add_parser("import", help="add or update entries from a CSV, JSON or YAML file")
    p.add_argument("file", type=Path, help="directory file (.csv, .json, .yaml or .yml)")
    p.set_defaults(func=cmd_directory_import)
    p = dsub.add_parser("show", help="print the directory as JSON")
    p.set_defaults(func=cmd_directory_show)
    p = dsub.add_parser("clear", help="remove every directory entry")
    p.add_argument("--yes", action="store_true", help="confirm")
    p.set_defaults(func=cmd_directory_clear)

    apikey = subparsers.add_parser("apikey", help="manage API keys of machine clients")
    asub = apikey.add_subparsers(dest="apikey_command", required=True)
    p = asub.add_parser("create", help="create a key and print it once")
    p.add_argument("name")
    p.set_defaults(func=cmd_apikey_create)
    p = asub.add_parser("revoke", help="revoke a key by name")
    p.add_argument("name")
    p.set_defaults(func=cmd_apikey_revoke)
    p = asub.add_parser("list", help="list keys (name, prefix, created, last used, revoked)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_apikey_list)
