"""Database plumbing: the declarative base, engines and sessions, the embedded Postgres fallback."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import DateTime, MetaData, create_engine, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import JSON

log = logging.getLogger("countersign.db")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonB = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """Now, timezone-aware (every stored time is timestamptz)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with a naming convention, UUID keys and timestamptz columns."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: DateTime(timezone=True),
        uuid.UUID: UUID(as_uuid=True),
        dict[str, Any]: JsonB,
        list[Any]: JsonB,
        list[str]: JsonB,
    }


class UUIDPk:
    """Mixin: a random UUID primary key and a creation time."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def normalise_url(url: str) -> str:
    """SQLAlchemy URL for psycopg 3 from a plain `postgresql://` URL."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def build_engine(url: str, *, pool_size: int = 10, **kwargs: Any) -> Engine:
    """An engine for `url` with pre-ping, so connections dropped by a restart are replaced."""
    return create_engine(
        normalise_url(url),
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=10,
        connect_args={"connect_timeout": 5},
        **kwargs,
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that do not expire objects on commit (responses are built after commit)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit at the end, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_outage(exc: BaseException) -> bool:
    """Whether a database error means the database is unreachable or saturated (retry later)."""
    if isinstance(exc, OperationalError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def ping(engine: Engine) -> bool:
    """Whether the database answers."""
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        return True
    except DBAPIError:
        return False


_EMBEDDED: dict[Path, Any] = {}


def embedded_database_url(data_dir: Path) -> str:
    """Start (or reuse) an embedded Postgres in `data_dir` and return its URL.

    The server keeps running until `stop_embedded` (or the machine stops it): the handle is held
    here so that garbage collection or a forked child never stops it under a running process.
    """
    import os

    import pgserver  # imported lazily: only needed without DATABASE_URL

    data_dir = data_dir.expanduser().resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        # As root, pgserver runs Postgres as its own system user, which must reach the directory.
        for parent in [data_dir.parent, *data_dir.parent.parents]:
            if parent == Path("/"):
                break
            parent.chmod(parent.stat().st_mode | 0o011)
    server = _EMBEDDED.get(data_dir) or pgserver.get_server(data_dir, cleanup_mode=None)
    _EMBEDDED[data_dir] = server
    uri: str = server.get_uri("postgres")
    log.info("embedded Postgres running in %s", data_dir)
    return uri


def stop_embedded(data_dir: Path) -> None:
    """Stop the embedded Postgres this process started in `data_dir`, if any."""
    import subprocess

    server = _EMBEDDED.pop(data_dir.expanduser().resolve(), None)
    if server is None:
        return
    from pgserver.postgres_server import pg_ctl

    try:
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=server.pgdata, user=server.system_user)
    except subprocess.CalledProcessError as exc:
        log.warning("embedded Postgres did not stop cleanly: %s", exc)
