"""User use cases: accounts, password checks with lockout, and server-side sessions."""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import threading
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.core.errors import InvalidInput, NotFound
from app.users.exceptions import UserExists
from app.users.models import User, UserRole, UserSession

PASSWORD_MIN = 12
PASSWORD_MAX = 1024
MAX_FAILED_ATTEMPTS = 5
LOCKOUT = timedelta(minutes=15)
SESSION_LIFETIME = timedelta(hours=12)
SESSION_IDLE = timedelta(hours=2)
# last_seen_at is written at most this often, not on every request.
SEEN_RESOLUTION = timedelta(minutes=1)
NAME_RULE = "1 to 120 characters: lower-case letters, digits and . _ @ -, starting alphanumeric"
_NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,119}")

# argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): about 60 ms per check here.
# At most MAX_CONCURRENT_CHECKS run at once, so a flood of sign-in attempts cannot take all the
# memory and CPU (older hashes are upgraded on the next successful sign-in).
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
MAX_CONCURRENT_CHECKS = 4
_checks = threading.BoundedSemaphore(MAX_CONCURRENT_CHECKS)


@functools.cache
def _dummy_hash() -> str:
    """A hash of a random password, checked for unknown users so they take as long as real ones."""
    return _hasher.hash(secrets.token_urlsafe(24))


def normalise_name(name: str) -> str:
    """The stored form of a user name."""
    return name.strip().lower()


def hash_password(password: str) -> str:
    """The argon2id hash of `password` after checking the password policy."""
    if len(password) < PASSWORD_MIN:
        raise InvalidInput(f"a password needs at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise InvalidInput(f"a password is limited to {PASSWORD_MAX} characters")
    return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    with _checks:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


# --- accounts -----------------------------------------------------------------------------------


def create_user(
    session: Session, *, name: str, password: str, role: str = UserRole.ANALYST
) -> User:
    """Create a user; 409 when the name is taken (decided by the unique constraint)."""
    name = normalise_name(name)
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"a user name needs {NAME_RULE}")
    try:
        role = UserRole(role)
    except ValueError:
        raise InvalidInput(f"role must be one of {', '.join(r.value for r in UserRole)}") from None
    password_hash = hash_password(password)
    now = utcnow()
    inserted = session.execute(
        insert(User)
        .values(
            name=name,
            password_hash=password_hash,
            role=role,
            disabled=False,
            failed_attempts=0,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(User.id)
    ).scalar()
    if inserted is None:
        raise UserExists(f"a user named {name!r} exists already")
    user = session.get(User, inserted)
    assert user is not None
    return user


def get_user(session: Session, *, name: str) -> User:
    """The user by name; 404 when there is none."""
    user = session.scalars(select(User).where(User.name == normalise_name(name))).first()
    if user is None:
        raise NotFound(f"no user {normalise_name(name)!r}")
    return user


def list_users(session: Session) -> list[User]:
    """Every user, by name."""
    return list(session.scalars(select(User).order_by(User.name)))


def set_user_disabled(session: Session, *, name: str, disabled: bool) -> User:
    """Disable (signing the user out everywhere) or enable a user."""
    user = get_user(session, name=name)
    user.disabled = disabled
    user.updated_at = utcnow()
    if disabled:
        end_user_sessions(session, user=user)
    session.flush()
    return user


def unlock_user(session: Session, *, name: str) -> User:
    """Lift a lockout after failed sign-ins."""
    user = get_user(session, name=name)
    user.failed_attempts = 0
    user.locked_until = None
    user.updated_at = utcnow()
    session.flush()
    return user


def is_locked(user: User, now: datetime | None = None) -> bool:
    """Whether the user is locked out after failed sign-ins."""
    return user.locked_until is not None and user.locked_until > (now or utcnow())


def authenticate(
    session: Session, *, name: str, password: str, now: datetime | None = None
) -> User | None:
    """The user if the name and password match an enabled, unlocked account, else None.

    Every path checks one argon2 hash, so the answer takes about as long whether or not the user
    exists. After MAX_FAILED_ATTEMPTS wrong passwords the account is locked for LOCKOUT, and a
    correct password does not open it until then. The caller shows one generic message for every
    failure and must commit the session, since a failure is recorded.
    """
    now = now or utcnow()
    name = normalise_name(name)
    too_long = len(password) > PASSWORD_MAX
    candidate = "" if too_long else password
    user = None
    if _NAME.fullmatch(name):
        # The row lock makes concurrent guesses count one after the other.
        user = session.scalars(select(User).where(User.name == name).with_for_update()).first()
    if user is None:
        _verify(_dummy_hash(), candidate)
        return None
    if user.locked_until is not None and user.locked_until <= now:
        # The lockout has run out: a fresh start.
        user.locked_until = None
        user.failed_attempts = 0
    ok = _verify(user.password_hash, candidate) and not too_long
    if user.disabled or is_locked(user, now):
        return None
    if not ok:
        user.failed_attempts += 1
        if user.failed_attempts >= MAX_FAILED_ATTEMPTS:
            user.locked_until = now + LOCKOUT
        session.flush()
        return None
    user.failed_attempts = 0
    user.last_login_at = now
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    session.flush()
    return user


# --- sessions -----------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    # Session ids are 256 random bits, so a plain SHA-256 is enough to make a leaked table useless.
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    session: Session, *, user: User, now: datetime | None = None
) -> tuple[str, UserSession]:
    """A new session for `user`: the session id (returned once, for the cookie) and its row."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.execute(
        delete(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at <= now)
    )
    row = UserSession(
        token_hash=_token_hash(token),
        user_id=user.id,
        csrf_secret=secrets.token_urlsafe(32),
        expires_at=now + SESSION_LIFETIME,
        last_seen_at=now,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return token, row


def resolve_session(
    session: Session, *, token: str | None, now: datetime | None = None
) -> tuple[User, UserSession] | None:
    """The user and session behind a session id, if it is current and the user is enabled."""
    if not token or len(token) > 128:
        return None
    now = now or utcnow()
    row = session.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == _token_hash(token))
    ).first()
    if row is None:
        return None
    login, user = row[0], row[1]
    if login.expires_at <= now or login.last_seen_at + SESSION_IDLE <= now or user.disabled:
        return None
    if now - login.last_seen_at >= SEEN_RESOLUTION:
        login.last_seen_at = now
    return user, login


def end_session(session: Session, *, token: str | None) -> None:
    """Sign a session out (nothing happens for an unknown id)."""
    if token and len(token) <= 128:
        session.execute(delete(UserSession).where(UserSession.token_hash == _token_hash(token)))


def end_user_sessions(session: Session, *, user: User) -> int:
    """Sign a user out everywhere; returns how many sessions ended."""
    result = session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    return int(getattr(result, "rowcount", 0) or 0)


def purge_sessions(session: Session, *, now: datetime | None = None) -> int:
    """Delete sessions that expired or went idle; returns how many."""
    now = now or utcnow()
    result = session.execute(
        delete(UserSession).where(
            or_(UserSession.expires_at <= now, UserSession.last_seen_at <= now - SESSION_IDLE)
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
