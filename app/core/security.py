"""Authentication of machine clients: API keys and the gateway's HMAC webhook signatures."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.core.errors import InvalidInput, Unauthorized
from app.core.models import ApiKey

SIGNATURE_VERSION = "v1"
KEY_PREFIX = "cs_"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value for `body` sent at `timestamp` (the gateway side)."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={mac}"


def verify_signature(
    *,
    secrets_for_source: list[bytes],
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    tolerance: int,
    now: float | None = None,
) -> None:
    """Check a webhook signature before anything else touches the body; raises Unauthorized.

    HMAC-SHA256 over `timestamp + "." + body`, any of the source's current secrets (rotation),
    the timestamp within `tolerance` seconds (replay), constant-time comparisons throughout.
    """
    if not secrets_for_source:
        raise Unauthorized("unknown webhook source")
    if not timestamp or not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise Unauthorized("missing or malformed X-Countersign-Timestamp")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        raise Unauthorized("timestamp outside the allowed window (replay or clock skew)")
    presented = []
    for part in (signature or "").split(","):
        version, _, value = part.strip().partition("=")
        if version == SIGNATURE_VERSION and value:
            presented.append(value.strip().lower().encode())
    if not presented:
        raise Unauthorized("missing or malformed X-Countersign-Signature (v1=<hex>)")
    ok = False
    for secret in secrets_for_source:
        expected = sign(secret, timestamp, body).split("=", 1)[1].encode()
        for candidate in presented:
            ok |= hmac.compare_digest(expected, candidate)
    if not ok:
        raise Unauthorized("signature does not match")


def hash_key(key: str) -> str:
    """Stored form of an API key (keys are 256 random bits, so a plain SHA-256 suffices)."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(session: Session, *, name: str) -> str:
    """Create a named API key; the key is returned once and only its hash is stored."""
    name = name.strip()
    if not name or len(name) > 120:
        raise InvalidInput("an API key needs a name of at most 120 characters")
    if session.scalars(select(ApiKey).where(ApiKey.name == name)).first():
        raise InvalidInput(f"an API key named {name!r} exists already")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(name=name, key_hash=hash_key(key), prefix=key[:8]))
    session.flush()
    return key


def revoke_api_key(session: Session, *, name: str) -> bool:
    """Revoke a key by name; returns whether one was active."""
    result = session.execute(
        update(ApiKey)
        .where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(getattr(result, "rowcount", 0))


def check_api_key(session: Session | None, presented: str, static_keys: list[bytes]) -> str:
    """The name of the client owning `presented`; raises Unauthorized.

    Keys from the environment (`COUNTERSIGN_API_KEYS`) are compared in constant time; keys in the
    database are looked up by hash.
    """
    if not presented or len(presented) > 200:
        raise Unauthorized("a valid API key is required (Authorization: Bearer <key>)")
    given = presented.encode()
    ok = False
    for key in static_keys:
        ok |= hmac.compare_digest(given, key)
    if ok:
        return "env-key"
    if session is not None and presented.startswith(KEY_PREFIX):
        row = session.scalars(
            select(ApiKey).where(
                ApiKey.key_hash == hash_key(presented), ApiKey.revoked_at.is_(None)
            )
        ).first()
        if row is not None:
            now: datetime = utcnow()
            if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
                row.last_used_at = now
            return f"api-key:{row.name}"
    raise Unauthorized("a valid API key is required (Authorization: Bearer <key>)")
