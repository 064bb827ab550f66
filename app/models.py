"""Every table, imported in one place for Alembic and the model/migration agreement test."""

from app.core.db import Base
from app.core.models import ApiKey, AuditLog
from app.directory.models import AccountOnFile, Contact, OrgDomain, Person, Vendor
from app.ingest.models import Message, SenderHistory
from app.tickets.models import Ticket, TicketEvent
from app.users.models import User, UserSession
from app.verification.models import FeedbackLabel, OutboxItem, VerificationToken

__all__ = [
    "AccountOnFile",
    "ApiKey",
    "AuditLog",
    "Base",
    "Contact",
    "FeedbackLabel",
    "Message",
    "OrgDomain",
    "OutboxItem",
    "Person",
    "SenderHistory",
    "Ticket",
    "TicketEvent",
    "User",
    "UserSession",
    "Vendor",
    "VerificationToken",
]
