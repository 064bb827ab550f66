"""`countersign demo`: fill an empty database with a week of realistic traffic, then point the
reader at the dashboard.

Database and model modules are imported when the command runs, so registering it does not slow
down `countersign classify`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from app.core.config import Settings
    from app.demo.service import DemoResult

DEFAULT_SEED = 7
DEFAULT_MESSAGES = 300
MIN_MESSAGES = 40
MAX_MESSAGES = 5000
EXAMPLE_DIRECTORY = Path(__file__).resolve().parents[2] / "examples" / "directory.yaml"
STATUS_LABELS = {
    "open": "Open",
    "in_progress": "In progress",
    "verified_legitimate": "Verified legitimate",
    "confirmed_fraud": "Confirmed fraud",
    "expired": "Expired",
    "false_positive": "False positive",
}


def _fail(message: str) -> int:
    print(f"countersign: {message}", file=sys.stderr)
    return 2


def print_summary(result: DemoResult, *, seed: int, url: str, seconds: float, out: TextIO) -> None:
    """What the demo made, the sign-in details and where to look."""
    p = out.write
    p(
        f"Countersign demo (seed {seed}): {result.inbound} inbound and {result.outbound} outbound "
        f"emails over the last 7 days, in {seconds:.1f} s\n"
    )
    p(f"{result.tickets} tickets opened ({result.attached} more emails joined an open ticket):\n")
    for status, count in result.statuses.items():
        extra = ""
        if status == "verified_legitimate" and result.false_positives:
            extra = f" (of which {result.false_positives} false positives)"
        p(f"  {STATUS_LABELS.get(status, status):<20} {count}{extra}\n")
    if result.overdue:
        p(f"  {result.overdue} active tickets are overdue (`countersign worker` expires them)\n")
    p("Stories to look at:\n")
    for story, number, status in result.stories:
        where = f"#{number} ({STATUS_LABELS.get(status, status).lower()})" if number else status
        p(f"  {where:<28} {story}\n")
    p("Users:\n")
    for user in result.users:
        secret = f"password: {user.password}" if user.password else "exists, password unchanged"
        p(f"  {user.name:<10} {user.role:<8} {secret}\n")
    p(f"Dashboard: {url.rstrip('/')}/dashboard  (start it with `countersign serve`)\n")


def cmd_demo(args: argparse.Namespace, settings: Settings | None = None) -> int:
    """Fill the database (DATABASE_URL, else the embedded one) with the demo week."""
    from sqlalchemy.exc import OperationalError

    from app.core.config import Settings
    from app.core.db import transaction
    from app.core.errors import AppError
    from app.core.runtime import open_database
    from app.demo.service import run_demo
    from app.detect.engine import Detector
    from app.detect.model import ModelIntegrityError
    from app.directory.service import parse_directory_file

    if not MIN_MESSAGES <= args.messages <= MAX_MESSAGES:
        return _fail(f"--messages must be between {MIN_MESSAGES} and {MAX_MESSAGES}")
    settings = settings or Settings()
    path = Path(args.directory)
    try:
        data = parse_directory_file(path.name, path.read_bytes())
    except OSError as exc:
        return _fail(f"cannot read {path}: {exc.strerror or exc}")
    except AppError as exc:
        return _fail(exc.detail)
    key = settings.fingerprint_key.get_secret_value().encode()
    try:
        detector = Detector.from_dir(settings.model_dir, fingerprint_key=key)
    except ModelIntegrityError as exc:
        return _fail(str(exc))
    started = time.monotonic()
    try:
        engine, sessions = open_database(settings, migrate=True)
    except OperationalError as exc:
        return _fail(f"database unavailable: {str(exc.orig or exc).strip()[:200]}")
    try:
        with transaction(sessions) as session:
            result = run_demo(
                session,
                directory_data=data,
                key=key,
                detector=detector,
                seed=args.seed,
                messages=args.messages,
                reset=args.reset,
                admin_password=args.admin_password,
                analyst_password=args.analyst_password,
                public_url=settings.public_url,
                store_bodies=settings.store_bodies,
            )
    except AppError as exc:
        return _fail(exc.detail)
    except OperationalError as exc:
        return _fail(f"database unavailable: {str(exc.orig or exc).strip()[:200]}")
    finally:
        engine.dispose()
    print_summary(
        result,
        seed=args.seed,
        url=settings.public_url,
        seconds=time.monotonic() - started,
        out=sys.stdout,
    )
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `demo` command to the `countersign` parser."""
    p = subparsers.add_parser(
        "demo",
        help="fill an empty database with a week of demo email, tickets and outcomes",
        description=(
            "Import the sample directory, create an admin and an analyst (if absent) and ingest "
            "a week of email through the real detector, then work the tickets: some open, some "
            "overdue, in progress, verified, fraud, false positives and expired."
        ),
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="same seed, same week")
    p.add_argument(
        "--reset",
        action="store_true",
        help="first empty every data table (messages, tickets, directory); users are kept",
    )
    p.add_argument(
        "--messages",
        type=int,
        default=DEFAULT_MESSAGES,
        help=f"emails in the week (default {DEFAULT_MESSAGES})",
    )
    p.add_argument("--admin-password", help="password of the `admin` user if it is created")
    p.add_argument("--analyst-password", help="password of the `analyst` user if it is created")
    p.add_argument(
        "--directory",
        type=Path,
        default=EXAMPLE_DIRECTORY,
        help="directory file to import (default: examples/directory.yaml)",
    )
    p.set_defaults(func=cmd_demo)
