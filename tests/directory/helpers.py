"""Constants and helpers shared by the directory tests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.directory.models import Vendor

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_YAML = EXAMPLES / "directory.yaml"
EXAMPLE_CSV = EXAMPLES / "directory.csv"
KEY = b"countersign-dev-fingerprint-key"  # the development key Settings() and Detector default to
ADMIN = "api-key:directory-admin"

# Every bank number in the example files, as typed there.
EXAMPLE_ACCOUNTS = [
    "GB29 NWBK 6016 1331 9268 19",
    "GB15 BARC 2004 1538 2900 16",
    "IE29 AIBK 9311 5212 3456 78",
    "DE89 3704 0044 0532 0130 00",
    "GB82 WEST 1234 5698 7654 32",
    "FR14 2004 1010 0505 0001 3M02 606",
    "4432 1098 77",
]


def compact(number: str) -> str:
    """A bank number without spaces, upper case."""
    return "".join(number.split()).upper()


class RecordingCache:
    """Stands in for DirectoryCache: on each invalidation, records the vendors a fresh session
    sees, which shows whether the change had been committed by then."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self.seen: list[set[str]] = []

    def invalidate(self) -> None:
        with self._sessions() as session:
            self.seen.append(set(session.scalars(select(Vendor.name))))
