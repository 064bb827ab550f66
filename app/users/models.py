"""Users of the dashboard and their server-side sessions."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UUIDPk, utcnow


class UserRole(StrEnum):
    """What a user may do: analysts work tickets, admins also manage the directory and users."""

    ANALYST = "analyst"
    ADMIN = "admin"


class User(UUIDPk, Base):
    """A person who signs in to the dashboard; the password is kept only as an argon2id hash."""

    # "user" is a reserved word in Postgres: a prefixed name spares everyone the quoting.
    __tablename__ = "app_user"

    name: Mapped[str] = mapped_column(String(120), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=UserRole.ANALYST)
    disabled: Mapped[bool] = mapped_column(default=False)
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def is_admin(self) -> bool:
        """Whether the user may use the admin pages."""
        return self.role == UserRole.ADMIN

    @property
    def actor(self) -> str:
        """How the user appears in ticket events and the audit log."""
        return f"user:{self.name}"


class UserSession(UUIDPk, Base):
    """A signed-in browser: only the SHA-256 of its 256-bit session id is stored."""

    __tablename__ = "user_session"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("app_user.id", ondelete="CASCADE"), index=True
    )
    csrf_secret: Mapped[str] = mapped_column(String(64))
    """Per-session secret behind the CSRF tokens of this session's forms."""
    expires_at: Mapped[datetime] = mapped_column(index=True)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
