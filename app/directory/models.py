"""The organisation's directory: its domains, people, vendors and known-good contacts."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UUIDPk, utcnow


class OrgDomain(Base):
    """A domain the organisation sends from."""

    __tablename__ = "org_domain"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    added_by: Mapped[str] = mapped_column(String(200), default="")


class Person(UUIDPk, Base):
    """Someone in the organisation; VIPs are the usual impersonation targets."""

    __tablename__ = "person"

    name: Mapped[str] = mapped_column(Text)
    emails: Mapped[list[str]] = mapped_column(default=list)
    role: Mapped[str] = mapped_column(Text, default="")
    vip: Mapped[bool] = mapped_column(default=False)
    added_by: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Vendor(UUIDPk, Base):
    """A supplier or partner."""

    __tablename__ = "vendor"

    name: Mapped[str] = mapped_column(Text, unique=True)
    domains: Mapped[list[str]] = mapped_column(default=list)
    added_by: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Contact(UUIDPk, Base):
    """A known-good way to reach a person or a vendor, with when and by whom it was put on file."""

    __tablename__ = "contact"

    person_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), index=True
    )
    vendor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("vendor.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(Text, default="")
    purpose: Mapped[str] = mapped_column(String(32), default="general")
    """For organisation contacts (no person, no vendor): `it_helpdesk`, `data_owner`, `finance`."""
    phone: Mapped[str] = mapped_column(String(40), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    added_by: Mapped[str] = mapped_column(String(200), default="")


class AccountOnFile(UUIDPk, Base):
    """A vendor's bank account on file: only its last four characters and a keyed fingerprint."""

    __tablename__ = "account_on_file"

    vendor_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("vendor.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16), default="account")
    last4: Mapped[str] = mapped_column(String(8))
    fingerprint: Mapped[str] = mapped_column(String(64))
    added_by: Mapped[str] = mapped_column(String(200), default="")
