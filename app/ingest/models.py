"""Stored messages and sender history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UUIDPk, utcnow


class Message(UUIDPk, Base):
    """One email as received, normalised, with its verdict. Unique per source and Message-ID."""

    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("source", "message_id"),
        Index("ix_message_sender_address", "sender_address"),
        Index("ix_message_thread_key", "thread_key"),
        Index("ix_message_received_at", "received_at"),
        Index("ix_message_ticket_id", "ticket_id"),
    )

    source: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(998))
    direction: Mapped[str] = mapped_column(String(16), default="inbound")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    sender_name: Mapped[str] = mapped_column(Text, default="")
    sender_address: Mapped[str] = mapped_column(String(320), default="")
    sender_domain: Mapped[str] = mapped_column(String(255), default="")
    reply_to: Mapped[str | None] = mapped_column(String(320))
    recipients: Mapped[dict[str, Any]] = mapped_column(default=dict)
    subject: Mapped[str] = mapped_column(Text, default="")
    date_header: Mapped[str | None] = mapped_column(Text)
    thread_key: Mapped[str] = mapped_column(String(128), default="")
    body: Mapped[str | None] = mapped_column(Text)
    """Newest message text; NULL once purged by the retention job or when bodies are not kept."""
    quoted: Mapped[str | None] = mapped_column(Text)
    body_purged_at: Mapped[datetime | None]
    raw_sha256: Mapped[str | None] = mapped_column(String(64))
    html_only: Mapped[bool] = mapped_column(default=False)
    auth: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attachments: Mapped[list[Any]] = mapped_column(default=list)
    artifacts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Masked: accounts as kind + last four + keyed fingerprint; phones; link domains; amounts."""
    verdict: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model_version: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(16), default="deliver")
    risk: Mapped[float] = mapped_column(default=0.0)
    needs_verification: Mapped[bool] = mapped_column(default=False)
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ticket.id", ondelete="SET NULL")
    )
    ticket_relation: Mapped[str | None] = mapped_column(String(16))
    """`opened` or `attached` when the message is on a ticket."""


class SenderHistory(Base):
    """What the organisation's mail flow knows about one external address."""

    __tablename__ = "sender_history"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    domain: Mapped[str] = mapped_column(String(255), default="", index=True)
    first_seen: Mapped[datetime | None]
    last_seen: Mapped[datetime | None]
    inbound_count: Mapped[int] = mapped_column(default=0)
    outbound_count: Mapped[int] = mapped_column(default=0)
    last_written_at: Mapped[datetime | None]
