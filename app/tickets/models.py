"""Verification tickets and their append-only, hash-chained events."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Identity,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UUIDPk, utcnow


class TicketStatus(StrEnum):
    """Where a ticket is in the verification workflow."""

    OPEN = "open"
    IN_PROGRESS = "in_progress"
    VERIFIED_LEGITIMATE = "verified_legitimate"
    CONFIRMED_FRAUD = "confirmed_fraud"
    EXPIRED = "expired"


ACTIVE_STATUSES = (TicketStatus.OPEN, TicketStatus.IN_PROGRESS)


class Ticket(UUIDPk, Base):
    """One requested change to verify out of band."""

    __tablename__ = "ticket"
    __table_args__ = (
        # One active ticket per request: the same counterparty asking the same thing with the same
        # new details. Enforced here so that concurrent emails about one request cannot open two.
        Index(
            "uq_ticket_active_request",
            "request_key",
            unique=True,
            postgresql_where=text("status IN ('open', 'in_progress')"),
        ),
        Index("ix_ticket_status_priority", "status", "priority"),
        Index("ix_ticket_due_at", "due_at"),
    )

    number: Mapped[int] = mapped_column(BigInteger, Identity(start=1001), unique=True)
    intent: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), default=TicketStatus.OPEN)
    severity: Mapped[str] = mapped_column(String(16), default="low")
    risk: Mapped[float] = mapped_column(default=0.0)
    priority: Mapped[int] = mapped_column(default=0)
    """Higher is more urgent: from risk, signals and the amount."""
    request_key: Mapped[str] = mapped_column(String(128))
    details_key: Mapped[str] = mapped_column(String(128), default="")
    """Keyed fingerprint of the new details the email supplies (accounts, phones), '' if none."""
    thread_key: Mapped[str] = mapped_column(String(128), default="")
    counterparty: Mapped[str] = mapped_column(String(320), default="")
    counterparty_name: Mapped[str] = mapped_column(Text, default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    currency: Mapped[str | None] = mapped_column(String(8))
    signals: Mapped[list[Any]] = mapped_column(default=list)
    evidence: Mapped[list[Any]] = mapped_column(default=list)
    playbook: Mapped[dict[str, Any]] = mapped_column(default=dict)
    supplied_by_email: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model_version: Mapped[str] = mapped_column(String(64), default="")
    assignee: Mapped[str | None] = mapped_column(String(120))
    due_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))
    supersedes_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("ticket.id"))
    """An earlier active ticket from the same counterparty with different details."""


class TicketEvent(Base):
    """An append-only record of one change; each event hashes the previous one."""

    __tablename__ = "ticket_event"
    __table_args__ = (UniqueConstraint("ticket_id", "seq"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ticket.id", ondelete="CASCADE"))
    seq: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
