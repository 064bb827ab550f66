"""Ingest service on real Postgres: stored once, tickets opened or attached, history learned."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.detect.directory import Directory
from app.detect.engine import Detector
from app.ingest.models import Message, SenderHistory
from app.ingest.service import IngestOptions, history_of, ingest_message
from app.mail.parse import email_from_json
from app.tickets.models import Ticket, TicketEvent
from app.tickets.service import verify_chain
from app.verification.models import OutboxItem

OPTIONS = IngestOptions(notifiers=("webhook",))


def _ingest(db: Session, detector: Detector, data: dict[str, Any], source: str = "gw") -> dict:
    email = email_from_json(data)
    verdict = detector.classify(email, history=history_of(db, email))
    response, _ = ingest_message(
        db, source=source, email=email, verdict=verdict, directory=Directory(), options=OPTIONS
    )
    return response


def test_risky_email_opens_a_ticket_with_an_outbox_notice(
    db: Session, detector: Detector, bank_change_json: Callable[..., dict[str, Any]]
) -> None:
    response = _ingest(db, detector, bank_change_json())
    assert response["needs_verification"] is True
    assert response["ticket"]["relation"] == "opened"
    ticket = db.scalars(select(Ticket)).one()
    assert ticket.intent == "payment_change"
    assert ticket.status == "open"
    assert db.scalar(select(func.count()).select_from(OutboxItem)) == 1
    assert verify_chain(db, ticket.id) == (True, None)


def test_stored_body_masks_the_account_number(
    db: Session, detector: Detector, bank_change_json: Callable[..., dict[str, Any]]
) -> None:
    _ingest(db, detector, bank_change_json())
    message = db.scalars(select(Message)).one()
    assert message.body is not None
    assert "1555 5555 55" not in message.body
    assert "ending 5555" in message.body
    assert message.artifacts["accounts"][0]["last4"] == "5555"
    ticket = db.scalars(select(Ticket)).one()
    stored = json.dumps([message.verdict, ticket.evidence, ticket.supplied_by_email])
    assert "1555 5555" not in stored
    assert "15555555" not in stored


def test_same_message_twice_is_stored_once_with_the_same_response(
    db: Session, detector: Detector, bank_change_json: Callable[..., dict[str, Any]]
) -> None:
    first = _ingest(db, detector, bank_change_json())
    second = _ingest(db, detector, bank_change_json())
    assert second == first
    assert db.scalar(select(func.count()).select_from(Message)) == 1
    assert db.scalar(select(func.count()).select_from(Ticket)) == 1


def test_second_email_with_same_details_attaches_to_the_open_ticket(
    db: Session, detector: Detector, bank_change_json: Callable[..., dict[str, Any]]
) -> None:
    first = _ingest(db, detector, bank_change_json())
    second = _ingest(
        db, detector, bank_change_json(message_id="<chase@acme-supplies.com>", subject="Reminder")
    )
    assert second["ticket"]["relation"] == "attached"
    assert second["ticket"]["id"] == first["ticket"]["id"]
    kinds = list(db.scalars(select(TicketEvent.kind).order_by(TicketEvent.seq)))
    assert kinds == ["opened", "message_attached"]


def test_different_details_open_a_new_ticket_that_says_so(
    db: Session, detector: Detector, bank_change_json: Callable[..., dict[str, Any]]
) -> None:
    _ingest(db, detector, bank_change_json())
    other = bank_change_json(
        message_id="<other@acme-supplies.com>",
        text=bank_change_json()["text"].replace(
            "GB33 BUKB 2020 1555 5555 55", "GB94 BARC 1020 1530 0934 59"
        ),
    )
    response = _ingest(db, detector, other)
    assert response["ticket"]["relation"] == "opened"
    tickets = list(db.scalars(select(Ticket).order_by(Ticket.number)))
    assert len(tickets) == 2
    assert tickets[1].supersedes_id == tickets[0].id
    kinds = set(db.scalars(select(TicketEvent.kind)))
    assert "different_details" in kinds


def test_benign_email_is_stored_without_a_ticket(
    db: Session, detector: Detector, lunch_json: Callable[..., dict[str, Any]]
) -> None:
    response = _ingest(db, detector, lunch_json())
    assert response["ticket"] is None
    assert db.scalar(select(func.count()).select_from(Ticket)) == 0
    assert db.scalar(select(func.count()).select_from(Message)) == 1


def test_outbound_mail_teaches_sender_history(
    db: Session, detector: Detector, lunch_json: Callable[..., dict[str, Any]]
) -> None:
    _ingest(
        db,
        detector,
        lunch_json(
            message_id="<out@northgate.com>",
            to=["Dana <dana@newpartner.example>"],
            direction="outbound",
        ),
    )
    row = db.get(SenderHistory, "dana@newpartner.example")
    assert row is not None
    assert row.outbound_count == 1
    email = email_from_json(lunch_json(**{"from": "Dana <dana@newpartner.example>"}))
    history = history_of(db, email)
    assert history is not None
    assert history.written_to is True


def test_lookalike_vendor_domain_gets_the_real_vendors_contacts_in_its_playbook(
    db: Session, detector: Detector, bank_change_json: Callable[..., dict[str, Any]]
) -> None:
    from app.directory import service as directory

    directory.upsert_vendor(
        db,
        name="Acme Supplies",
        domains=["acme-supplies.com"],
        contacts=[{"name": "Accounts receivable", "phone": "+44 20 7946 0111"}],
        key=b"k",
        actor="test",
    )
    email = email_from_json(bank_change_json(**{"from": "Mark <mark@acme-suppiies.com>"}))
    snapshot = directory.load_snapshot(db)
    verdict = detector.classify(email, history=history_of(db, email), directory=snapshot)
    ingest_message(
        db, source="gw", email=email, verdict=verdict, directory=snapshot, options=OPTIONS
    )
    playbook = db.scalars(select(Ticket)).one().playbook
    phones = [c["phone"] for c in playbook["known_good_contacts"]]
    assert "+442079460111" in phones
    assert "imitates acme-supplies.com" in playbook["note"]


def test_tickets_in_progress_do_not_expire_but_unanswered_ones_do(
    db: Session, detector: Detector, bank_change_json: Callable[..., dict[str, Any]]
) -> None:
    from datetime import timedelta

    from app.core.db import utcnow
    from app.tickets.service import expire_overdue, transition_ticket

    _ingest(db, detector, bank_change_json())
    _ingest(
        db,
        detector,
        bank_change_json(
            message_id="<other@b.example>", **{"from": "Ann <ann@other-vendor.example>"}
        ),
    )
    first, second = db.scalars(select(Ticket).order_by(Ticket.number)).all()
    transition_ticket(db, first, to="in_progress", actor="test")
    assert expire_overdue(db, now=utcnow() + timedelta(days=3)) == 1
    assert first.status == "in_progress"
    assert second.status == "expired"
