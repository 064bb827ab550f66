"""Fixtures of the verification tests: tickets with messages, settings, a recording notifier."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.db import transaction, utcnow
from app.ingest.models import Message
from app.tickets.models import Ticket
from app.tickets.service import add_event
from app.verification.notifiers import DeliveryError, Notice
from app.verification.outbox import enqueue_notice

# Repeated in the test modules that assert on them (test modules do not import conftest).
PUBLIC_URL = "https://countersign.example"
KNOWN_PHONE = "+44 20 7946 0018"
ATTACKER_PHONE = "+44 7700 900461"


@pytest.fixture
def settings() -> Settings:
    """Settings for these tests (nothing read from the environment that matters here)."""
    return Settings(
        _env_file=None,
        env="test",
        public_url=PUBLIC_URL,
        token_ttl_hours=72,
        notify_max_attempts=5,
        body_retention_days=30,
    )


def build_ticket(
    session: Session, *, messages: int = 2, status: str = "open", **overrides: Any
) -> Ticket:
    """A payment-change ticket with contacts on file, email-supplied details and its messages."""
    now = utcnow()
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "intent": "payment_change",
        "status": status,
        "severity": "high",
        "risk": 0.93,
        "priority": 70,
        "request_key": uuid.uuid4().hex,
        "counterparty": "vendor:acme supplies",
        "counterparty_name": "Acme Supplies",
        "subject": "New bank details for your payments",
        "summary": "Confirm change of payment or bank details from Acme Supplies on a "
        "known-good channel.",
        "amount": Decimal("12500.00"),
        "currency": "EUR",
        "playbook": {
            "intent": "payment_change",
            "steps": ["Call the vendor on the known-good number on file below."],
            "known_good_contacts": [
                {
                    "who": "vendor contact",
                    "name": "Mark Ellis",
                    "phone": KNOWN_PHONE,
                    "email": "mark.ellis@acme-supplies.com",
                    "added_at": datetime(2024, 1, 15, 9, 0, tzinfo=UTC).isoformat(),
                    "added_by": "vendor-master import",
                    "on_file_before_email": True,
                }
            ],
            "note": "",
        },
        "supplied_by_email": {
            "accounts": ["iban ending 5555"],
            "phones": [ATTACKER_PHONE],
            "links": ["hxxps://acme-supp1ies[.]com/pay"],
            "note": "supplied by the email: do not use",
        },
        "due_at": now + timedelta(hours=12),
        "created_at": now,
        "updated_at": now,
    }
    values.update(overrides)
    ticket = Ticket(**values)
    session.add(ticket)
    session.flush()
    add_event(session, ticket, actor="system", kind="opened", to_status="open", reason="test")
    for i in range(messages):
        session.add(
            Message(
                source="gw",
                message_id=f"<{uuid.uuid4().hex}.{i}@acme-supplies.com>",
                sender_address="mark.ellis@acme-supplies.com",
                subject=ticket.subject,
                body="Please update our bank details.",
                ticket_id=ticket.id,
                ticket_relation="opened" if i == 0 else "attached",
            )
        )
    session.flush()
    return ticket


@pytest.fixture
def make_ticket() -> Callable[..., Ticket]:
    """Builder of a ticket (with messages) in a given session."""
    return build_ticket


@pytest.fixture
def queue_notices(
    committed: sessionmaker[Session],
) -> Callable[..., list[tuple[uuid.UUID, int]]]:
    """Commit `n` tickets with one outbox row each; returns (ticket id, outbox id) pairs."""

    def queue(n: int = 1, notifier: str = "webhook", **ticket: Any) -> list[tuple[uuid.UUID, int]]:
        out = []
        with transaction(committed) as session:
            for _ in range(n):
                t = build_ticket(session, messages=1, **ticket)
                (item,) = enqueue_notice(session, t, kind="ticket_opened", notifiers=[notifier])
                out.append((t.id, item.id))
        return out

    return queue


class RecordingNotifier:
    """A thread-safe fake notifier: records every notice, fails the first `fail_first` sends."""

    def __init__(self, name: str = "webhook", *, fail_first: int = 0, delay: float = 0.0) -> None:
        self.name = name
        self.fail_first = fail_first
        self.delay = delay
        self.lock = threading.Lock()
        self.calls = 0
        self.delivered: list[Notice] = []
        self.failed: list[Notice] = []
        self.threads: set[str] = set()

    def send(self, notice: Notice) -> None:
        """Record the notice; raise DeliveryError while still 'down'."""
        with self.lock:
            self.calls += 1
            call = self.calls
            self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        if call <= self.fail_first:
            with self.lock:
                self.failed.append(notice)
            raise DeliveryError("HTTP 503: receiver down")
        with self.lock:
            self.delivered.append(notice)


@pytest.fixture
def recorder() -> type[RecordingNotifier]:
    """The recording notifier class (build one per test with the behaviour wanted)."""
    return RecordingNotifier
