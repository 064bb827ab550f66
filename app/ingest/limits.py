"""A bound on how many large messages one API process parses and classifies at a time.

Parsing a message costs memory in proportion to its size (a 5 MB single-line or base64-heavy
message peaks at 50-60 MB while it is decoded and converted to text). The webhook runs in a
thread pool of dozens of threads, so a burst of large messages could multiply that peak. Messages
over LARGE_BODY_BYTES take one of LARGE_SLOTS slots; when none frees up within
LARGE_WAIT_SECONDS the request is answered 503 with Retry-After, and the gateway retries it later.
Small messages (nearly all mail) never wait.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from app.core.errors import ServiceUnavailable

LARGE_BODY_BYTES = 1 << 20
LARGE_SLOTS = 2
LARGE_WAIT_SECONDS = 20.0

_slots = threading.BoundedSemaphore(LARGE_SLOTS)


@contextmanager
def large_message_slot(size: int, *, wait: float | None = None) -> Iterator[None]:
    """Hold a large-message slot for the duration of the block when `size` calls for one."""
    if size < LARGE_BODY_BYTES:
        yield
        return
    if not _slots.acquire(timeout=LARGE_WAIT_SECONDS if wait is None else wait):
        raise ServiceUnavailable(
            "too many large messages in progress on this server, retry later",
            code="busy",
        )
    try:
        yield
    finally:
        _slots.release()
