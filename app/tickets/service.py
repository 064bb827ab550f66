"""Ticket use cases: open or attach, transitions checked in one place, hash-chained events."""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.core.errors import InvalidInput, NotFound
from app.detect.intents import DESCRIPTIONS
from app.tickets.exceptions import InvalidTransition
from app.tickets.models import ACTIVE_STATUSES, Ticket, TicketEvent, TicketStatus

GENESIS = "0" * 64

# Allowed transitions; every status change goes through `transition_ticket`.
TRANSITIONS: dict[str, set[str]] = {
    TicketStatus.OPEN: {
        TicketStatus.IN_PROGRESS,
        TicketStatus.VERIFIED_LEGITIMATE,
        TicketStatus.CONFIRMED_FRAUD,
        TicketStatus.EXPIRED,
    },
    TicketStatus.IN_PROGRESS: {
        TicketStatus.OPEN,
        TicketStatus.VERIFIED_LEGITIMATE,
        TicketStatus.CONFIRMED_FRAUD,
        TicketStatus.EXPIRED,
    },
    # Closed tickets can be reopened (a mistaken outcome, new information).
    TicketStatus.VERIFIED_LEGITIMATE: {TicketStatus.OPEN},
    TicketStatus.CONFIRMED_FRAUD: {TicketStatus.OPEN},
    TicketStatus.EXPIRED: {TicketStatus.OPEN, TicketStatus.IN_PROGRESS},
}
CLOSED = {TicketStatus.VERIFIED_LEGITIMATE, TicketStatus.CONFIRMED_FRAUD, TicketStatus.EXPIRED}

# Hours to verify, by intent; high severity halves them.
SLA_HOURS: dict[str, float] = {
    "payment_change": 24,
    "credential_request": 4,
    "urgent_transfer": 4,
    "gift_card": 4,
    "data_request": 24,
}


# --- events -------------------------------------------------------------------------------------


def event_hash(event: TicketEvent, prev_hash: str) -> str:
    """The hash an event must carry when it follows `prev_hash` in its ticket's chain."""
    body = json.dumps(
        {
            "prev": prev_hash,
            "ticket": str(event.ticket_id),
            "seq": event.seq,
            "at": event.at.isoformat(),
            "actor": event.actor,
            "kind": event.kind,
            "from": event.from_status,
            "to": event.to_status,
            "reason": event.reason,
            "data": event.data or {},
        },
        sort_keys=True,
        default=str,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


def add_event(
    session: Session,
    ticket: Ticket,
    *,
    actor: str,
    kind: str,
    reason: str = "",
    from_status: str | None = None,
    to_status: str | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> TicketEvent:
    """Append an event to the ticket's chain (the caller holds the ticket row lock)."""
    last = session.execute(
        select(TicketEvent.seq, TicketEvent.hash)
        .where(TicketEvent.ticket_id == ticket.id)
        .order_by(TicketEvent.seq.desc())
        .limit(1)
    ).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    at = at or utcnow()
    event = TicketEvent(
        ticket_id=ticket.id,
        seq=seq,
        at=at,
        actor=actor,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        data=data or {},
        prev_hash=prev,
    )
    event.hash = event_hash(event, prev)
    session.add(event)
    ticket.updated_at = at
    session.flush()
    return event


def verify_chain(session: Session, ticket_id: uuid.UUID) -> tuple[bool, int | None]:
    """Whether the ticket's event chain is intact; else the first event that does not match."""
    prev = GENESIS
    events = session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.seq)
    )
    for expected_seq, e in enumerate(events, 1):
        if e.seq != expected_seq or e.prev_hash != prev or event_hash(e, prev) != e.hash:
            return False, e.seq
        prev = e.hash
    return True, None


# --- reading ------------------------------------------------------------------------------------


def get_ticket(session: Session, ticket_id: uuid.UUID | str, *, lock: bool = False) -> Ticket:
    """The ticket by id or number, optionally locked for update."""
    stmt = select(Ticket)
    if isinstance(ticket_id, uuid.UUID):
        stmt = stmt.where(Ticket.id == ticket_id)
    elif str(ticket_id).isascii() and str(ticket_id).isdigit() and len(str(ticket_id)) < 19:
        stmt = stmt.where(Ticket.number == int(ticket_id))
    else:
        try:
            stmt = stmt.where(Ticket.id == uuid.UUID(str(ticket_id)))
        except ValueError:
            raise NotFound(f"no ticket {ticket_id}") from None
    if lock:
        stmt = stmt.with_for_update()
    ticket = session.scalars(stmt).first()
    if ticket is None:
        raise NotFound(f"no ticket {ticket_id}")
    return ticket


def list_events(session: Session, ticket_id: uuid.UUID) -> list[TicketEvent]:
    """The ticket's events in order."""
    return list(
        session.scalars(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.seq)
        )
    )


@dataclass(slots=True)
class TicketPage:
    """One page of a ticket list with the total and counts per status."""

    items: list[Ticket]
    total: int
    counts: dict[str, int]


_CLOSED_LAST = case((Ticket.status.in_(("open", "in_progress")), 0), else_=1)
SORTS = {
    "priority": (_CLOSED_LAST, Ticket.priority.desc(), Ticket.due_at.asc(), Ticket.number.desc()),
    "due": (_CLOSED_LAST, Ticket.due_at.asc(), Ticket.number.desc()),
    "newest": (Ticket.created_at.desc(), Ticket.number.desc()),
}


def list_tickets(
    session: Session,
    *,
    status: list[str] | None = None,
    intent: str | None = None,
    severity: str | None = None,
    assignee: str | None = None,
    q: str | None = None,
    sort: str = "priority",
    limit: int = 50,
    offset: int = 0,
) -> TicketPage:
    """Tickets matching the filters, most urgent first."""
    if sort not in SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(SORTS)}")
    unknown = sorted(set(status or []) - {s.value for s in TicketStatus})
    if unknown:
        raise InvalidInput(
            f"unknown status {', '.join(unknown)}: use {', '.join(s.value for s in TicketStatus)}"
        )
    conds = []
    if intent:
        conds.append(Ticket.intent == intent)
    if severity:
        conds.append(Ticket.severity == severity)
    if assignee is not None:
        conds.append(Ticket.assignee.is_(None) if assignee == "" else Ticket.assignee == assignee)
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conds.append(
            or_(
                Ticket.subject.ilike(like),
                Ticket.counterparty.ilike(like),
                Ticket.counterparty_name.ilike(like),
            )
        )
    counts = dict(
        session.execute(select(Ticket.status, func.count()).where(*conds).group_by(Ticket.status))
        .tuples()
        .all()
    )
    if status:
        conds.append(Ticket.status.in_(status))
    total = session.scalar(select(func.count()).select_from(Ticket).where(*conds)) or 0
    items = list(
        session.scalars(
            select(Ticket).where(*conds).order_by(*SORTS[sort]).limit(limit).offset(offset)
        )
    )
    return TicketPage(items=items, total=total, counts={str(k): int(v) for k, v in counts.items()})


# --- changing -----------------------------------------------------------------------------------


def transition_ticket(
    session: Session,
    ticket: Ticket,
    *,
    to: str,
    actor: str,
    reason: str = "",
    outcome: str | None = None,
    data: dict[str, Any] | None = None,
) -> TicketEvent:
    """Move a ticket to another status if the workflow allows it, recording who and why."""
    try:
        target = TicketStatus(to)
    except ValueError:
        raise InvalidInput(f"unknown status {to!r}") from None
    current = ticket.status
    if target not in TRANSITIONS.get(current, set()):
        raise InvalidTransition(f"a ticket cannot go from {current} to {target}")
    now = utcnow()
    ticket.status = target
    if target in CLOSED:
        ticket.closed_at = now
        ticket.outcome = outcome or str(target)
    else:
        ticket.closed_at = None
        ticket.outcome = None
    return add_event(
        session,
        ticket,
        actor=actor,
        kind="status",
        from_status=current,
        to_status=target,
        reason=reason,
        data=data,
        at=now,
    )


def assign_ticket(session: Session, ticket: Ticket, *, assignee: str | None, actor: str) -> None:
    """Assign (or unassign with None) the ticket."""
    if assignee is not None and not assignee.strip():
        raise InvalidInput("assignee must not be empty")
    previous = ticket.assignee
    ticket.assignee = assignee
    add_event(
        session,
        ticket,
        actor=actor,
        kind="assign",
        reason=f"assigned to {assignee}" if assignee else "unassigned",
        data={"from": previous, "to": assignee},
    )


def comment_ticket(session: Session, ticket: Ticket, *, text: str, actor: str) -> TicketEvent:
    """Add a comment to the ticket's timeline."""
    text = text.strip()
    if not text:
        raise InvalidInput("a comment needs text")
    if len(text) > 10_000:
        raise InvalidInput("a comment is limited to 10,000 characters")
    return add_event(session, ticket, actor=actor, kind="comment", reason=text)


def expire_overdue(session: Session, *, now: datetime | None = None, limit: int = 500) -> int:
    """Expire open tickets past their SLA; returns how many.

    Only tickets nobody has started: one in progress is being worked (it shows as overdue).
    """
    now = now or utcnow()
    due = list(
        session.scalars(
            select(Ticket)
            .where(Ticket.status == TicketStatus.OPEN, Ticket.due_at < now)
            .order_by(Ticket.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for ticket in due:
        transition_ticket(
            session, ticket, to=TicketStatus.EXPIRED, actor="system", reason="SLA passed unanswered"
        )
    return len(due)


# --- opening from an email ----------------------------------------------------------------------


def sla_due(intent: str, severity: str, received_at: datetime) -> datetime:
    """When verification is due."""
    hours = SLA_HOURS.get(intent, 24)
    if severity == "high":
        hours /= 2
    return received_at + timedelta(hours=hours)


def priority_of(
    risk: float, signals: list[dict[str, Any]], amount: Decimal | None, vip: bool
) -> int:
    """Queue priority (higher first): risk, high-severity signals, the amount, a VIP involved."""
    from app.detect.signals import HIGH_SEVERITY

    score = round(risk * 50)
    score += sum(15 if s.get("name") in HIGH_SEVERITY else 5 for s in signals)
    if amount and amount > 0:
        score += min(30, round(5 * math.log10(float(amount) + 1)))
    if vip:
        score += 10
    return int(score)


@dataclass(slots=True)
class RequestKeys:
    """What identifies one requested change."""

    intent: str
    counterparty: str
    details_key: str
    thread_key: str

    @property
    def request_key(self) -> str:
        """Same intent, counterparty and new details: the same request."""
        raw = f"{self.intent}|{self.counterparty}|{self.details_key}"
        return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(slots=True)
class TicketDraft:
    """Everything needed to open a ticket for one email."""

    keys: RequestKeys
    severity: str
    risk: float
    counterparty_name: str
    subject: str
    summary: str
    amount: Decimal | None
    currency: str | None
    signals: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    playbook: dict[str, Any]
    supplied_by_email: dict[str, Any]
    model_version: str
    vip: bool
    received_at: datetime


def _find_active(session: Session, keys: RequestKeys) -> tuple[Ticket | None, Ticket | None]:
    """(ticket to attach to, ticket with the same counterparty and intent but other details)."""
    active = list(
        session.scalars(
            select(Ticket)
            .where(Ticket.status.in_(ACTIVE_STATUSES), Ticket.intent == keys.intent)
            .where(
                or_(
                    Ticket.request_key == keys.request_key,
                    Ticket.counterparty == keys.counterparty,
                    Ticket.thread_key == keys.thread_key,
                )
            )
            .order_by(Ticket.created_at)
        )
    )
    same = next((t for t in active if t.request_key == keys.request_key), None)
    if same:
        return same, None
    # A reply in the same thread that repeats the ask without new details is the same request.
    for t in active:
        if t.thread_key == keys.thread_key and not keys.details_key:
            return t, None
    other = next(
        (
            t
            for t in active
            if t.counterparty == keys.counterparty and t.details_key != keys.details_key
        ),
        None,
    )
    return None, other


def open_or_attach_ticket(
    session: Session, draft: TicketDraft, *, actor: str = "system"
) -> tuple[Ticket, str]:
    """The active ticket for this request (attached) or a new one (opened), race-safe."""
    keys = draft.keys
    existing, other = _find_active(session, keys)
    if existing is not None:
        ticket = get_ticket(session, existing.id, lock=True)
        _raise_on_attach(ticket, draft)
        add_event(
            session,
            ticket,
            actor=actor,
            kind="message_attached",
            reason="another email about the same request",
            data={"subject": draft.subject[:200]},
        )
        return ticket, "attached"
    severity = draft.severity
    values = {
        "id": uuid.uuid4(),
        "intent": keys.intent,
        "status": TicketStatus.OPEN,
        "severity": severity,
        "risk": draft.risk,
        "priority": priority_of(draft.risk, draft.signals, draft.amount, draft.vip),
        "request_key": keys.request_key,
        "details_key": keys.details_key,
        "thread_key": keys.thread_key,
        "counterparty": keys.counterparty,
        "counterparty_name": draft.counterparty_name[:500],
        "subject": draft.subject[:1000],
        "summary": draft.summary,
        "amount": draft.amount,
        "currency": draft.currency,
        "signals": draft.signals,
        "evidence": draft.evidence,
        "playbook": draft.playbook,
        "supplied_by_email": draft.supplied_by_email,
        "model_version": draft.model_version,
        "due_at": sla_due(keys.intent, severity, draft.received_at),
        "created_at": utcnow(),
        "updated_at": utcnow(),
        "supersedes_id": other.id if other else None,
    }
    inserted = session.execute(
        insert(Ticket)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=["request_key"],
            # Literal SQL, not bound parameters: once psycopg prepares the statement, a generic
            # plan cannot match parameters to the partial index's predicate.
            index_where=text("status IN ('open', 'in_progress')"),
        )
        .returning(Ticket.id)
    ).scalar()
    if inserted is None:
        # A concurrent email about the same request opened it first: attach to that one.
        ticket = session.scalars(
            select(Ticket)
            .where(Ticket.request_key == keys.request_key, Ticket.status.in_(ACTIVE_STATUSES))
            .with_for_update()
        ).one()
        add_event(
            session,
            ticket,
            actor=actor,
            kind="message_attached",
            reason="another email about the same request",
            data={"subject": draft.subject[:200]},
        )
        return ticket, "attached"
    ticket = get_ticket(session, inserted)
    add_event(
        session,
        ticket,
        actor=actor,
        kind="opened",
        to_status=TicketStatus.OPEN,
        reason=draft.summary,
        data={"intent": keys.intent, "severity": severity, "risk": round(draft.risk, 4)},
    )
    if other is not None:
        locked = get_ticket(session, other.id, lock=True)
        add_event(
            session,
            locked,
            actor=actor,
            kind="different_details",
            reason=(
                f"ticket #{ticket.number} opened: the same counterparty asks again with "
                "different details"
            ),
            data={"ticket": str(ticket.id), "number": ticket.number},
        )
        add_event(
            session,
            ticket,
            actor=actor,
            kind="different_details",
            reason=(
                f"ticket #{locked.number} is open for the same counterparty with other details: "
                "treat both as suspicious"
            ),
            data={"ticket": str(locked.id), "number": locked.number},
        )
    return ticket, "opened"


def _raise_on_attach(ticket: Ticket, draft: TicketDraft) -> None:
    """A later email can raise risk, severity and priority, never lower them."""
    order = {"none": 0, "low": 1, "medium": 2, "high": 3}
    if order.get(draft.severity, 0) > order.get(ticket.severity, 0):
        ticket.severity = draft.severity
    ticket.risk = max(ticket.risk, draft.risk)
    ticket.priority = max(
        ticket.priority, priority_of(draft.risk, draft.signals, draft.amount, draft.vip)
    )
    known = {s.get("name") for s in ticket.signals}
    new_signals = [s for s in draft.signals if s.get("name") not in known]
    if new_signals:
        ticket.signals = [*ticket.signals, *new_signals]


def summary_for(
    intent: str, counterparty_name: str, amount: Decimal | None, currency: str | None
) -> str:
    """One line saying what must be confirmed."""
    what = DESCRIPTIONS.get(intent, intent)
    who = f" from {counterparty_name}" if counterparty_name else ""
    money = f" ({currency or ''} {amount:,.2f})".replace("( ", "(") if amount else ""
    return f"Confirm {what}{who}{money} on a known-good channel."
