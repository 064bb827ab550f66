"""Dashboard use cases: what an analyst may do to a ticket, and with which words it is recorded.

Ticket changes go through app.tickets.service (transitions, assignment, the hash-chained events);
these functions check what the page allows and name the actor `user:<name>`.
"""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from app.core.errors import InvalidInput, NotFound
from app.core.models import AuditLog
from app.dashboard.exceptions import ClaimConflict
from app.tickets import service as tickets
from app.tickets.exceptions import InvalidTransition
from app.tickets.models import Ticket, TicketStatus
from app.users.models import User
from app.verification.service import record_feedback

MAX_NOTE = 5000
OUTCOMES = {
    TicketStatus.VERIFIED_LEGITIMATE.value: "verified legitimate",
    TicketStatus.CONFIRMED_FRAUD.value: "confirmed fraud",
}
_NUMBER = re.compile(r"[0-9]{1,18}")


def ticket_number(raw: str) -> int:
    """A ticket number from a URL (404 for anything else, before it reaches the database)."""
    if not _NUMBER.fullmatch(raw):
        raise NotFound(f"no ticket {raw[:40]}")
    return int(raw)


def record_view(session: Session, *, ticket: Ticket, user: User) -> None:
    """Log that `user` viewed the ticket (its emails are confidential)."""
    session.add(AuditLog(actor=user.actor, action="ticket.view", target=str(ticket.id)))


# --- actions ------------------------------------------------------------------------------------


def _locked(session: Session, number: int) -> Ticket:
    return tickets.get_ticket(session, str(number), lock=True)


def _note(text: str, *, required: bool, what: str) -> str:
    text = text.strip()
    if required and not text:
        raise InvalidInput(f"{what} needs a note")
    if len(text) > MAX_NOTE:
        raise InvalidInput(f"a note is limited to {MAX_NOTE:,} characters")
    return text


def claim_ticket(session: Session, *, number: int, user: User, take_over: bool = False) -> Ticket:
    """Assign the ticket to `user`; taking it from someone else must be asked for explicitly."""
    ticket = _locked(session, number)
    if ticket.status in tickets.CLOSED:
        raise ClaimConflict("a closed ticket cannot be claimed: reopen it first")
    if ticket.assignee == user.name:
        return ticket
    if ticket.assignee and not take_over:
        raise ClaimConflict(f"ticket #{number} is already claimed by {ticket.assignee}")
    tickets.assign_ticket(session, ticket, assignee=user.name, actor=user.actor)
    return ticket


def release_ticket(session: Session, *, number: int, user: User) -> Ticket:
    """Give back a ticket `user` has claimed."""
    ticket = _locked(session, number)
    if ticket.assignee != user.name:
        raise ClaimConflict(f"ticket #{number} is not assigned to you")
    tickets.assign_ticket(session, ticket, assignee=None, actor=user.actor)
    return ticket


def start_verification(session: Session, *, number: int, user: User) -> Ticket:
    """Move the ticket to in progress, claiming it if nobody has."""
    ticket = _locked(session, number)
    tickets.transition_ticket(
        session,
        ticket,
        to=TicketStatus.IN_PROGRESS,
        actor=user.actor,
        reason="verification started",
    )
    if not ticket.assignee:
        tickets.assign_ticket(session, ticket, assignee=user.name, actor=user.actor)
    return ticket


def record_outcome(session: Session, *, number: int, user: User, outcome: str, note: str) -> Ticket:
    """Close the ticket as verified legitimate or confirmed fraud, with the analyst's note."""
    if outcome not in OUTCOMES:
        raise InvalidInput("the outcome must be verified_legitimate or confirmed_fraud")
    text = _note(note, required=True, what=f"recording {OUTCOMES[outcome]}")
    ticket = _locked(session, number)
    tickets.transition_ticket(
        session,
        ticket,
        to=outcome,
        actor=user.actor,
        reason=text,
        data={"via": "dashboard", "outcome": outcome},
    )
    record_feedback(session, ticket, outcome=outcome, source="dashboard")
    return ticket


def mark_false_positive(session: Session, *, number: int, user: User, note: str) -> Ticket:
    """Close the ticket: the email made no risky request (a label the model learns from)."""
    text = _note(note, required=False, what="a false positive") or "marked as a false positive"
    ticket = _locked(session, number)
    tickets.transition_ticket(
        session,
        ticket,
        to=TicketStatus.VERIFIED_LEGITIMATE,
        actor=user.actor,
        reason=text,
        outcome="false_positive",
        data={"via": "dashboard", "outcome": "false_positive"},
    )
    record_feedback(session, ticket, outcome="false_positive", source="dashboard")
    return ticket


def reopen_ticket(session: Session, *, number: int, user: User, note: str) -> Ticket:
    """Reopen a closed ticket (a mistaken outcome, new information)."""
    text = _note(note, required=False, what="reopening") or "reopened"
    ticket = _locked(session, number)
    if ticket.status not in tickets.CLOSED:
        raise InvalidTransition("only a closed ticket can be reopened")
    tickets.transition_ticket(session, ticket, to=TicketStatus.OPEN, actor=user.actor, reason=text)
    return ticket


def comment_on_ticket(session: Session, *, number: int, user: User, text: str) -> Ticket:
    """Add the analyst's comment to the timeline."""
    ticket = _locked(session, number)
    tickets.comment_ticket(session, ticket, text=text, actor=user.actor)
    return ticket
