"""Ticket API shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TicketRead(BaseModel):
    """A ticket as the API returns it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    number: int
    intent: str
    status: str
    severity: str
    risk: float
    priority: int
    counterparty: str
    counterparty_name: str
    subject: str
    summary: str
    amount: Decimal | None
    currency: str | None
    assignee: str | None
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    outcome: str | None
    supersedes_id: uuid.UUID | None
    model_version: str


class EventRead(BaseModel):
    """One event of a ticket's timeline."""

    model_config = ConfigDict(from_attributes=True)

    seq: int
    at: datetime
    actor: str
    kind: str
    from_status: str | None
    to_status: str | None
    reason: str
    data: dict[str, Any]
    hash: str


class MessageSummary(BaseModel):
    """A message attached to a ticket (the body only through the dashboard)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    message_id: str
    received_at: datetime
    sender_name: str
    sender_address: str
    reply_to: str | None
    subject: str
    ticket_relation: str | None
    action: str
    risk: float


class TicketDetail(TicketRead):
    """A ticket with its evidence, playbook, messages and timeline."""

    signals: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    playbook: dict[str, Any]
    supplied_by_email: dict[str, Any]
    messages: list[MessageSummary] = []
    events: list[EventRead] = []
    chain_intact: bool = True


class TicketList(BaseModel):
    """One page of tickets."""

    items: list[TicketRead]
    total: int
    counts: dict[str, int]
    limit: int
    offset: int


class AssignIn(BaseModel):
    """Assign or unassign a ticket."""

    assignee: str | None = Field(default=None, max_length=120)


class TransitionIn(BaseModel):
    """Move a ticket to another status."""

    to: Literal["open", "in_progress", "verified_legitimate", "confirmed_fraud", "expired"]
    reason: str = Field(default="", max_length=5000)
    outcome: Literal["false_positive"] | None = None


class CommentIn(BaseModel):
    """A comment on the timeline."""

    text: str = Field(min_length=1, max_length=10_000)
