"""One-time verification tokens: 256 random bits, stored only as SHA-256, single use, expiring."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.core.errors import AppError
from app.verification.models import VerificationToken

TOKEN_BYTES = 32
"""`secrets.token_urlsafe(32)`: 256 bits, 43 URL-safe characters."""
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32,64}")


class TokenUnavailable(AppError):
    """The token is unknown, used or expired; deliberately one error for all three."""

    status_code = 410
    code = "token_unavailable"

    def __init__(self) -> None:
        super().__init__("this verification link is not valid (unknown, used or expired)")


def new_token() -> str:
    """A fresh raw token (shown once, in the notice; never stored)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def well_formed(token: str) -> bool:
    """Whether `token` could be one of ours (spares the database obviously bad input)."""
    return bool(_TOKEN_SHAPE.fullmatch(token))


def hash_token(token: str) -> str:
    """Stored form of a token: SHA-256 hex (256 random bits need no slow hash)."""
    return hashlib.sha256(token.encode()).hexdigest()


def form_check(token: str) -> str:
    """The hidden form field that ties a POST to the token of the page that rendered it."""
    return hashlib.sha256(b"form:" + token.encode()).hexdigest()[:16]


def form_check_ok(token: str, presented: str) -> bool:
    """Constant-time comparison of a presented `token_check` field."""
    return hmac.compare_digest(form_check(token).encode(), presented.strip().lower().encode())


def mint_token(
    session: Session, *, ticket_id: uuid.UUID, ttl_hours: float, now: datetime | None = None
) -> tuple[str, VerificationToken]:
    """Create a token for a ticket in the caller's transaction; the raw token is returned once."""
    now = now or utcnow()
    raw = new_token()
    row = VerificationToken(
        id=uuid.uuid4(),
        ticket_id=ticket_id,
        token_hash=hash_token(raw),
        created_at=now,
        expires_at=now + timedelta(hours=ttl_hours),
    )
    session.add(row)
    session.flush()
    return raw, row


def expire_token(session: Session, token_id: uuid.UUID, *, now: datetime | None = None) -> bool:
    """Expire an unused token at once (its notice was not delivered); returns whether it was."""
    result = session.execute(
        update(VerificationToken)
        .where(VerificationToken.id == token_id, VerificationToken.used_at.is_(None))
        .values(expires_at=now or utcnow())
    )
    return bool(getattr(result, "rowcount", 0))


def find_valid_token(
    session: Session, token: str, *, now: datetime | None = None
) -> VerificationToken | None:
    """The unused, unexpired token row for a raw token, read only (a GET must change nothing)."""
    if not well_formed(token):
        return None
    return session.scalars(
        select(VerificationToken).where(
            VerificationToken.token_hash == hash_token(token),
            VerificationToken.used_at.is_(None),
            VerificationToken.expires_at > (now or utcnow()),
        )
    ).first()


def consume_token(
    session: Session,
    token: str,
    *,
    outcome: str,
    verifier: str,
    channel: str,
    note: str,
    now: datetime | None = None,
) -> VerificationToken:
    """Use the token up, recording the outcome; raises TokenUnavailable.

    One conditional UPDATE: of N concurrent confirmations exactly one matches `used_at IS NULL`;
    the others wait for its row lock, re-check the condition and match nothing.
    """
    if not well_formed(token):
        raise TokenUnavailable()
    now = now or utcnow()
    row = session.scalars(
        update(VerificationToken)
        .where(
            VerificationToken.token_hash == hash_token(token),
            VerificationToken.used_at.is_(None),
            VerificationToken.expires_at > now,
        )
        .values(used_at=now, outcome=outcome, verifier=verifier, channel=channel, note=note)
        .returning(VerificationToken)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).first()
    if row is None:
        raise TokenUnavailable()
    return row
