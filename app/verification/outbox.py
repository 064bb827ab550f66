"""Writing notices to the transactional outbox (the worker delivers them)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.tickets.models import Ticket
from app.verification.models import OutboxItem


def ticket_notice_payload(ticket: Ticket) -> dict[str, Any]:
    """What a verifier needs to know, without email content beyond the subject and evidence."""
    contacts = ticket.playbook.get("known_good_contacts", []) if ticket.playbook else []
    return {
        "ticket_id": str(ticket.id),
        "number": ticket.number,
        "intent": ticket.intent,
        "severity": ticket.severity,
        "summary": ticket.summary,
        "subject": ticket.subject,
        "counterparty": ticket.counterparty_name or ticket.counterparty,
        "due_at": ticket.due_at.isoformat(),
        "known_good_contacts": contacts,
        "supplied_by_email": ticket.supplied_by_email,
    }


def enqueue_notice(
    session: Session, ticket: Ticket, *, kind: str, notifiers: list[str]
) -> list[OutboxItem]:
    """One outbox row per configured notifier, in the caller's transaction."""
    items = [
        OutboxItem(
            ticket_id=ticket.id, notifier=name, kind=kind, payload=ticket_notice_payload(ticket)
        )
        for name in notifiers
    ]
    session.add_all(items)
    session.flush()
    return items
