"""Ticket API: list, get, assign, transition, comment (machine clients with an API key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from app.core.deps import DbSession
from app.core.models import AuditLog
from app.ingest.models import Message
from app.tickets import service
from app.tickets.schemas import (
    AssignIn,
    CommentIn,
    EventRead,
    MessageSummary,
    TicketDetail,
    TicketList,
    TicketRead,
    TransitionIn,
)

router = APIRouter(prefix="/v1/tickets", tags=["tickets"])


def _actor(request: Request) -> str:
    return str(getattr(request.state, "actor", "") or "api")


def detail_of(session: DbSession, ticket_id: str) -> TicketDetail:
    """A ticket with its messages, events and the state of its hash chain."""
    ticket = service.get_ticket(session, ticket_id)
    messages = session.scalars(
        select(Message).where(Message.ticket_id == ticket.id).order_by(Message.received_at)
    )
    events = service.list_events(session, ticket.id)
    intact, _ = service.verify_chain(session, ticket.id)
    out = TicketDetail.model_validate(ticket, from_attributes=True)
    out.messages = [MessageSummary.model_validate(m) for m in messages]
    out.events = [EventRead.model_validate(e) for e in events]
    out.chain_intact = intact
    return out


@router.get("", response_model=TicketList)
def list_tickets(
    session: DbSession,
    status: Annotated[list[str] | None, Query()] = None,
    intent: str | None = None,
    severity: str | None = None,
    assignee: str | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    sort: str = "priority",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> TicketList:
    """Tickets, most urgent first, with filters and pagination."""
    page = service.list_tickets(
        session,
        status=status,
        intent=intent,
        severity=severity,
        assignee=assignee,
        q=q,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    return TicketList(
        items=[TicketRead.model_validate(t) for t in page.items],
        total=page.total,
        counts=page.counts,
        limit=limit,
        offset=offset,
    )


@router.get("/{ticket_id}", response_model=TicketDetail)
def get_ticket(ticket_id: str, session: DbSession, request: Request) -> TicketDetail:
    """One ticket by id or number, with its evidence, playbook, messages and timeline."""
    detail = detail_of(session, ticket_id)
    session.add(AuditLog(actor=_actor(request), action="ticket.view", target=str(detail.id)))
    return detail


@router.post("/{ticket_id}/assign", response_model=TicketRead)
def assign(ticket_id: str, body: AssignIn, session: DbSession, request: Request) -> TicketRead:
    """Assign the ticket to someone (or unassign with null)."""
    ticket = service.get_ticket(session, ticket_id, lock=True)
    service.assign_ticket(session, ticket, assignee=body.assignee, actor=_actor(request))
    return TicketRead.model_validate(ticket)


@router.post("/{ticket_id}/transition", response_model=TicketRead)
def transition(
    ticket_id: str, body: TransitionIn, session: DbSession, request: Request
) -> TicketRead:
    """Move the ticket through the workflow (409 when the move is not allowed)."""
    ticket = service.get_ticket(session, ticket_id, lock=True)
    service.transition_ticket(
        session, ticket, to=body.to, actor=_actor(request), reason=body.reason, outcome=body.outcome
    )
    return TicketRead.model_validate(ticket)


@router.post("/{ticket_id}/comments", response_model=EventRead, status_code=201)
def comment(ticket_id: str, body: CommentIn, session: DbSession, request: Request) -> EventRead:
    """Add a comment to the ticket's timeline."""
    ticket = service.get_ticket(session, ticket_id, lock=True)
    event = service.comment_ticket(session, ticket, text=body.text, actor=_actor(request))
    return EventRead.model_validate(event)
