"""The bare reference app of scripts/bench_ingest.py: pydantic parsing plus one ORM insert.

    BENCH_BARE_DATABASE_URL=postgresql://... uvicorn --factory _bare_ingest_app:create_app

It does the least any ingest endpoint must do with the same stack as the service: FastAPI reads
the Email JSON body and validates it with the service's own `EmailIn` model, then a sync handler
(run in the thread pool, as the service's database work is) inserts one row through the
SQLAlchemy ORM on psycopg 3 and commits. No signature check, no detection, no tickets. The one
table lives in its own schema, created here if missing, so it never touches the service's tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI
from sqlalchemy import DateTime, MetaData, String, Text, create_engine, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from app.mail.schemas import EmailIn

SCHEMA = "bench_bare"


class Base(DeclarativeBase):
    """A base of its own: the service's metadata stays untouched."""

    metadata = MetaData(schema=SCHEMA)


class BareMessage(Base):
    """One stored email, unique per Message-ID."""

    __tablename__ = "message"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    sender: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _psycopg_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_app() -> FastAPI:
    """The bare app; the database URL comes from BENCH_BARE_DATABASE_URL."""
    engine = create_engine(
        _psycopg_url(os.environ["BENCH_BARE_DATABASE_URL"]),
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        pool_timeout=10,
    )
    sessions = sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        with engine.begin() as conn:
            # Both workers start at once: serialise the DDL on an advisory lock.
            conn.execute(text("SELECT pg_advisory_xact_lock(7306)"))
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
            Base.metadata.create_all(conn)
        yield
        engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/messages")
    def post_message(email: EmailIn) -> dict[str, object]:
        # A sync endpoint: FastAPI runs it in the thread pool, like the service's database work.
        message_id = email.message_id or f"<{uuid.uuid4()}@bare>"
        with sessions() as session, session.begin():
            session.add(
                BareMessage(
                    message_id=message_id[:998],
                    sender=email.from_,
                    subject=email.subject,
                    body=email.text,
                    created_at=datetime.now(UTC),
                )
            )
        return {"message_id": message_id, "stored": True}

    return app
