"""Large messages are parsed a few at a time per process; a burst gets 503 + Retry-After, and
the retry is stored once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.errors import ServiceUnavailable
from app.ingest import limits
from app.ingest.limits import LARGE_BODY_BYTES, LARGE_SLOTS, large_message_slot
from app.ingest.models import Message
from app.main import create_app
from tests.ingest.test_webhook import _settings, signed


def test_small_messages_never_take_a_slot() -> None:
    held = [large_message_slot(LARGE_BODY_BYTES) for _ in range(LARGE_SLOTS)]
    for slot in held:
        slot.__enter__()
    try:
        with large_message_slot(LARGE_BODY_BYTES - 1, wait=0):
            pass  # does not wait although every slot is taken
    finally:
        for slot in held:
            slot.__exit__(None, None, None)


def test_no_more_than_the_slots_run_at_once() -> None:
    running = 0
    most = 0
    lock = threading.Lock()

    def work(_: int) -> None:
        nonlocal running, most
        with large_message_slot(LARGE_BODY_BYTES, wait=10):
            with lock:
                running += 1
                most = max(most, running)
            time.sleep(0.02)
            with lock:
                running -= 1

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, range(24)))
    assert most == LARGE_SLOTS


def test_a_large_message_that_cannot_get_a_slot_is_refused_for_retry() -> None:
    held = [large_message_slot(LARGE_BODY_BYTES) for _ in range(LARGE_SLOTS)]
    for slot in held:
        slot.__enter__()
    try:
        with pytest.raises(ServiceUnavailable), large_message_slot(LARGE_BODY_BYTES, wait=0.05):
            pass
    finally:
        for slot in held:
            slot.__exit__(None, None, None)
    with large_message_slot(LARGE_BODY_BYTES, wait=0):
        pass  # the slots were all given back


@pytest.fixture
def client(committed: sessionmaker[Session], database_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(database_url))) as c:
        yield c


def test_the_webhook_answers_503_while_busy_and_stores_the_retry_once(
    client: TestClient,
    committed: sessionmaker[Session],
    lunch_json: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    email = lunch_json()
    email["text"] = "See you at noon.\n" + ("Agenda and minutes attached below. " * 40_000)
    body = json.dumps(email).encode()
    assert len(body) > LARGE_BODY_BYTES
    monkeypatch.setattr(limits, "LARGE_WAIT_SECONDS", 0.05)
    held = [large_message_slot(LARGE_BODY_BYTES) for _ in range(LARGE_SLOTS)]
    for slot in held:
        slot.__enter__()
    try:
        busy = client.post("/v1/messages", content=body, headers=signed(body))
    finally:
        for slot in held:
            slot.__exit__(None, None, None)
    assert busy.status_code == 503
    assert busy.headers["Retry-After"]
    assert busy.json()["error"] == "busy"
    with committed() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 0
    retry = client.post("/v1/messages", content=body, headers=signed(body))
    assert retry.status_code == 200, retry.text
    with committed() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 1
