"""A per-process cache of the directory snapshot, refreshed every few seconds."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from app.detect.directory import Directory
from app.directory.service import load_snapshot

log = logging.getLogger("countersign.directory")


class DirectoryCache:
    """The snapshot detection uses: at most `ttl` seconds old, or fresh after `invalidate`."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        ttl: float = 30.0,
        fallback: Directory | None = None,
    ) -> None:
        self._sessions = sessions
        self._ttl = ttl
        self._lock = threading.Lock()
        self._snapshot = fallback or Directory()
        self._loaded_at = float("-inf")

    def get(self) -> Directory:
        """The current snapshot (the last good one while the database is unreachable)."""
        if time.monotonic() - self._loaded_at < self._ttl:
            return self._snapshot
        with self._lock:
            if time.monotonic() - self._loaded_at < self._ttl:
                return self._snapshot
            try:
                with self._sessions() as session:
                    snapshot = load_snapshot(session)
                if snapshot.org_domains or snapshot.people or snapshot.vendors:
                    self._snapshot = snapshot
                self._loaded_at = time.monotonic()
            except DBAPIError as exc:
                log.warning("directory not refreshed: %s", type(exc).__name__)
        return self._snapshot

    def invalidate(self) -> None:
        """Reload on the next `get` (after a directory change)."""
        self._loaded_at = float("-inf")
