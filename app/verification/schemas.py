"""Outbox API shapes."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class OutboxItemRead(BaseModel):
    """One notice in the outbox with its delivery state (the payload is not repeated here)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    ticket_id: uuid.UUID | None
    notifier: str
    kind: str
    status: str
    attempts: int
    next_attempt_at: datetime
    locked_by: str | None
    locked_until: datetime | None
    last_error: str | None
    delivered_at: datetime | None


class OutboxList(BaseModel):
    """One page of the outbox."""

    items: list[OutboxItemRead]
    total: int
    counts: dict[str, int]
    limit: int
    offset: int


class NotifyIn(BaseModel):
    """Ask for a new notice for a ticket."""

    revoke_previous: bool = False
    """Expire the ticket's unused links first (say, a notice went to the wrong place)."""


class NotifyResult(BaseModel):
    """The notices queued for a ticket."""

    ticket_id: uuid.UUID
    items: list[OutboxItemRead]
