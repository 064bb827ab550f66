"""Verification use cases: show a link's request, record its outcome, manage the outbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.core.errors import AppError, InvalidInput, NotFound
from app.core.models import AuditLog
from app.detect.intents import DESCRIPTIONS
from app.ingest.models import Message
from app.tickets import service as tickets
from app.tickets.models import Ticket, TicketStatus
from app.verification.models import FeedbackLabel, OutboxItem, OutboxStatus, VerificationToken
from app.verification.outbox import enqueue_notice
from app.verification.tokens import consume_token, find_valid_token

OUTCOMES = ("legitimate", "fraudulent", "could_not_reach")
OUTCOME_STATUS = {
    "legitimate": TicketStatus.VERIFIED_LEGITIMATE,
    "fraudulent": TicketStatus.CONFIRMED_FRAUD,
}
OUTCOME_WORDS = {
    "legitimate": "the request is legitimate",
    "fraudulent": "the request is fraudulent",
    "could_not_reach": "the contact could not be reached",
}
STATUS_WORDS: dict[str, str] = {
    TicketStatus.OPEN: "open",
    TicketStatus.IN_PROGRESS: "in progress",
    TicketStatus.VERIFIED_LEGITIMATE: "verified as legitimate",
    TicketStatus.CONFIRMED_FRAUD: "confirmed as fraud",
    TicketStatus.EXPIRED: "expired",
}
MAX_VERIFIER = 120
MAX_CHANNEL = 100
MAX_NOTE = 5000
LABEL_SOURCE = "verify_link"


class NoticeRefused(AppError):
    """A new notice cannot be sent for this ticket (closed, or no notifier configured)."""

    status_code = 409
    code = "notice_refused"


class OutboxConflict(AppError):
    """The outbox item is not in a state that allows the requested change."""

    status_code = 409
    code = "outbox_conflict"


# --- showing a link -----------------------------------------------------------------------------


@dataclass(slots=True)
class ContactView:
    """A known-good contact with its provenance, as the verifier sees it."""

    who: str
    name: str
    phone: str
    email: str
    on_file_since: str
    added_by: str
    on_file_before_email: bool


@dataclass(slots=True)
class VerificationView:
    """Everything the /verify page shows; email-derived strings are escaped by the template."""

    ticket_number: int
    intent: str
    intent_label: str
    status: str
    status_label: str
    closed: bool
    summary: str
    subject: str
    counterparty: str
    amount: str
    steps: list[str]
    playbook_note: str
    contacts: list[ContactView]
    supplied: list[tuple[str, list[str]]]
    due_at: datetime
    expires_at: datetime


def _date_of(value: Any) -> str:
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d")
    except ValueError:
        return str(value or "unknown")


def _contacts(ticket: Ticket) -> list[ContactView]:
    out = []
    for c in (ticket.playbook or {}).get("known_good_contacts", []) or []:
        if not isinstance(c, dict):
            continue
        out.append(
            ContactView(
                who=str(c.get("who") or ""),
                name=str(c.get("name") or ""),
                phone=str(c.get("phone") or ""),
                email=str(c.get("email") or ""),
                on_file_since=_date_of(c.get("added_at")),
                added_by=str(c.get("added_by") or ""),
                on_file_before_email=bool(c.get("on_file_before_email")),
            )
        )
    return out


def _supplied(ticket: Ticket) -> list[tuple[str, list[str]]]:
    data = ticket.supplied_by_email or {}
    out = []
    for key, label in (("accounts", "Accounts"), ("phones", "Phone numbers"), ("links", "Links")):
        values = [str(v) for v in data.get(key) or [] if v]
        if values:
            out.append((label, values[:20]))
    return out


def _amount(ticket: Ticket) -> str:
    if ticket.amount is None:
        return ""
    amount = Decimal(ticket.amount)
    return f"{ticket.currency or ''} {amount:,.2f}".strip()


def view_of(ticket: Ticket, token: VerificationToken) -> VerificationView:
    """The page model for a ticket and the token that opened it."""
    playbook = ticket.playbook or {}
    return VerificationView(
        ticket_number=ticket.number,
        intent=ticket.intent,
        intent_label=DESCRIPTIONS.get(ticket.intent, ticket.intent),
        status=ticket.status,
        status_label=STATUS_WORDS.get(ticket.status, ticket.status),
        closed=ticket.status in tickets.CLOSED,
        summary=ticket.summary,
        subject=ticket.subject,
        counterparty=ticket.counterparty_name or ticket.counterparty,
        amount=_amount(ticket),
        steps=[str(s) for s in playbook.get("steps", []) or []],
        playbook_note=str(playbook.get("note") or ""),
        contacts=_contacts(ticket),
        supplied=_supplied(ticket),
        due_at=ticket.due_at,
        expires_at=token.expires_at,
    )


def view_verification(
    session: Session, *, token: str, now: datetime | None = None
) -> VerificationView | None:
    """What a valid link shows, or None for an unknown, used or expired one; changes nothing."""
    row = find_valid_token(session, token, now=now)
    if row is None:
        return None
    ticket = session.get(Ticket, row.ticket_id)
    if ticket is None:
        return None
    return view_of(ticket, row)


# --- recording an outcome -----------------------------------------------------------------------


@dataclass(slots=True)
class ConfirmResult:
    """What recording an outcome did."""

    ticket_id: uuid.UUID
    ticket_number: int
    outcome: str
    status: str
    status_changed: bool
    message: str
    labels: int = 0


@dataclass(slots=True)
class OutcomeFields:
    """The verifier's input, checked and cleaned."""

    outcome: str
    verifier: str
    channel: str
    note: str
    errors: dict[str, str] = field(default_factory=dict)


def _one_line(value: str) -> str:
    return " ".join(value.split())


def clean_outcome_fields(outcome: str, verifier: str, channel: str, note: str) -> OutcomeFields:
    """Validate the form; problems are collected per field rather than raised."""
    fields = OutcomeFields(
        outcome=(outcome or "").strip(),
        verifier=_one_line(verifier or ""),
        channel=_one_line(channel or ""),
        note=(note or "").strip().replace("\r\n", "\n"),
    )
    if fields.outcome not in OUTCOMES:
        fields.errors["outcome"] = "Choose one of the outcomes."
    if not fields.verifier:
        fields.errors["verifier"] = "Enter your name."
    elif len(fields.verifier) > MAX_VERIFIER:
        fields.errors["verifier"] = f"At most {MAX_VERIFIER} characters."
    if not fields.channel:
        fields.errors["channel"] = (
            "Say how you verified (for example: phone call to number on file)."
        )
    elif len(fields.channel) > MAX_CHANNEL:
        fields.errors["channel"] = f"At most {MAX_CHANNEL} characters."
    if len(fields.note) > MAX_NOTE:
        fields.errors["note"] = f"At most {MAX_NOTE} characters."
    for name in ("verifier", "channel", "note"):
        # Postgres text cannot hold NUL, and no honest form sends control characters.
        value = getattr(fields, name)
        if any(ord(ch) < 32 and ch not in "\n\t" for ch in value):
            fields.errors[name] = "Remove the control characters."
    return fields


def _store_labels(
    session: Session,
    ticket: Ticket,
    outcome: str,
    *,
    label: str = "risky",
    source: str = LABEL_SOURCE,
) -> int:
    """One label per message on the ticket (once per outcome and source), for retraining."""
    message_ids = list(session.scalars(select(Message.id).where(Message.ticket_id == ticket.id)))
    if not message_ids:
        return 0
    labelled = set(
        session.scalars(
            select(FeedbackLabel.message_id).where(
                FeedbackLabel.ticket_id == ticket.id,
                FeedbackLabel.source == source,
                FeedbackLabel.outcome == outcome,
            )
        )
    )
    new = [
        FeedbackLabel(
            message_id=mid,
            ticket_id=ticket.id,
            intent=ticket.intent,
            label=label,
            outcome=outcome,
            source=source,
        )
        for mid in message_ids
        if mid not in labelled
    ]
    session.add_all(new)
    session.flush()
    return len(new)


def record_feedback(session: Session, ticket: Ticket, *, outcome: str, source: str) -> int:
    """Labels from an outcome recorded elsewhere (the dashboard): a false positive is `benign`,
    a verified or confirmed request `risky`."""
    label = "benign" if outcome == "false_positive" else "risky"
    return _store_labels(session, ticket, outcome, label=label, source=source)


def confirm_verification(
    session: Session,
    *,
    token: str,
    outcome: str,
    verifier: str,
    channel: str,
    note: str = "",
    now: datetime | None = None,
) -> ConfirmResult:
    """Use up a verification token and apply its outcome to the ticket.

    Raises InvalidInput for a bad form (the token stays valid) and TokenUnavailable for an
    unknown, used or expired token. A closed ticket keeps its status; the outcome is recorded
    on its timeline.
    """
    fields = clean_outcome_fields(outcome, verifier, channel, note)
    if fields.errors:
        raise InvalidInput("; ".join(f"{k}: {v}" for k, v in fields.errors.items()))
    row = consume_token(
        session,
        token,
        outcome=fields.outcome,
        verifier=fields.verifier,
        channel=fields.channel,
        note=fields.note,
        now=now,
    )
    ticket = tickets.get_ticket(session, row.ticket_id, lock=True)
    session.refresh(ticket)  # the locked row, not a copy the session loaded earlier
    actor = f"verifier:{fields.verifier}"
    data = {
        "outcome": fields.outcome,
        "verifier": fields.verifier,
        "channel": fields.channel,
        "note": fields.note,
        "token_id": str(row.id),
    }
    reason = f"{fields.verifier} verified via {fields.channel}: {OUTCOME_WORDS[fields.outcome]}"
    before = ticket.status
    labels = 0
    if fields.outcome in OUTCOME_STATUS:
        labels = _store_labels(session, ticket, fields.outcome)
    if before in tickets.CLOSED:
        tickets.add_event(
            session,
            ticket,
            actor=actor,
            kind="verification",
            reason=f"{reason} (ticket already {STATUS_WORDS.get(before, before)}; status kept)",
            data={**data, "status_kept": before},
        )
        message = (
            f"Your outcome was recorded on ticket #{ticket.number}, which was already "
            f"{STATUS_WORDS.get(before, before)}, so its status did not change. "
            "The security team will review your answer."
        )
        return ConfirmResult(
            ticket.id, ticket.number, fields.outcome, ticket.status, False, message, labels
        )
    if fields.outcome in OUTCOME_STATUS:
        tickets.transition_ticket(
            session,
            ticket,
            to=OUTCOME_STATUS[fields.outcome],
            actor=actor,
            reason=reason,
            data=data,
        )
        message = f"Ticket #{ticket.number} is now {STATUS_WORDS[ticket.status]}. " + (
            "The request may now go ahead through the normal process."
            if fields.outcome == "legitimate"
            else "Do not act on the request; the ticket now records it as fraud."
        )
    else:
        if before == TicketStatus.OPEN:
            tickets.transition_ticket(
                session, ticket, to=TicketStatus.IN_PROGRESS, actor=actor, reason=reason, data=data
            )
        else:
            tickets.add_event(
                session, ticket, actor=actor, kind="verification", reason=reason, data=data
            )
        message = (
            f"Recorded that the contact could not be reached. Ticket #{ticket.number} stays open "
            "(in progress) and this link is now used up: ask the security team for a new link "
            "to record the final outcome. Do not act on the request meanwhile."
        )
    return ConfirmResult(
        ticket.id,
        ticket.number,
        fields.outcome,
        ticket.status,
        ticket.status != before,
        message,
        labels,
    )


# --- the outbox ---------------------------------------------------------------------------------


def request_notice(
    session: Session,
    *,
    ticket_id: str | uuid.UUID,
    notifiers: list[str],
    actor: str,
    revoke_previous: bool = False,
) -> tuple[Ticket, list[OutboxItem]]:
    """Queue a new notice (with a fresh link, minted at delivery) for an active ticket."""
    if not notifiers:
        raise NoticeRefused(
            "no notifier is configured (COUNTERSIGN_NOTIFY_WEBHOOK_URL or "
            "COUNTERSIGN_NOTIFY_SLACK_URL)",
            code="no_notifier",
        )
    ticket = tickets.get_ticket(session, ticket_id)
    revoked = 0
    if revoke_previous:
        # Tokens before the ticket row: the order confirm_verification locks them in.
        now = utcnow()
        result = session.execute(
            update(VerificationToken)
            .where(
                VerificationToken.ticket_id == ticket.id,
                VerificationToken.used_at.is_(None),
                VerificationToken.expires_at > now,
            )
            .values(expires_at=now)
        )
        revoked = int(getattr(result, "rowcount", 0) or 0)
    ticket = tickets.get_ticket(session, ticket.id, lock=True)
    session.refresh(ticket)  # the locked row, not the copy read above
    if ticket.status in tickets.CLOSED:
        raise NoticeRefused(
            f"ticket #{ticket.number} is {ticket.status}: reopen it before sending a new notice"
        )
    items = enqueue_notice(session, ticket, kind="ticket_resend", notifiers=notifiers)
    tickets.add_event(
        session,
        ticket,
        actor=actor,
        kind="notice_requested",
        reason="a new verification notice was requested"
        + (f"; {revoked} earlier link(s) revoked" if revoked else ""),
        data={"outbox_ids": [i.id for i in items], "notifiers": notifiers, "revoked": revoked},
    )
    return ticket, items


@dataclass(slots=True)
class OutboxPage:
    """One page of outbox items with the total and counts per status."""

    items: list[OutboxItem]
    total: int
    counts: dict[str, int]


def list_outbox(
    session: Session,
    *,
    status: str | None = None,
    ticket_id: uuid.UUID | None = None,
    limit: int = 50,
    offset: int = 0,
) -> OutboxPage:
    """Outbox items, newest first, optionally of one status or ticket."""
    conds = []
    if ticket_id is not None:
        conds.append(OutboxItem.ticket_id == ticket_id)
    counts = dict(
        session.execute(
            select(OutboxItem.status, func.count()).where(*conds).group_by(OutboxItem.status)
        )
        .tuples()
        .all()
    )
    if status is not None:
        if status not in {s.value for s in OutboxStatus}:
            raise InvalidInput(f"status must be one of {', '.join(s.value for s in OutboxStatus)}")
        conds.append(OutboxItem.status == status)
    total = session.scalar(select(func.count()).select_from(OutboxItem).where(*conds)) or 0
    items = list(
        session.scalars(
            select(OutboxItem)
            .where(*conds)
            .order_by(OutboxItem.id.desc())
            .limit(limit)
            .offset(offset)
        )
    )
    return OutboxPage(items=items, total=total, counts={str(k): int(v) for k, v in counts.items()})


def retry_outbox_item(session: Session, *, item_id: int, actor: str) -> OutboxItem:
    """Put a failed item back in the queue with a fresh attempt budget."""
    item = session.scalars(
        select(OutboxItem).where(OutboxItem.id == item_id).with_for_update()
    ).first()
    if item is None:
        raise NotFound(f"no outbox item {item_id}")
    if item.status != OutboxStatus.FAILED:
        raise OutboxConflict(f"only failed items can be retried; this one is {item.status}")
    if item.ticket_id is not None:
        ticket = session.get(Ticket, item.ticket_id)
        if ticket is not None and ticket.status in tickets.CLOSED:
            raise OutboxConflict(
                f"ticket #{ticket.number} is {ticket.status}: reopen it before retrying"
            )
    item.status = OutboxStatus.PENDING
    item.attempts = 0
    item.next_attempt_at = utcnow()
    item.locked_by = None
    item.locked_until = None
    session.add(AuditLog(actor=actor, action="outbox.retry", target=str(item.id)))
    session.flush()
    return item
