"""Opening the database for processes other than the API (CLI commands, the outbox worker)."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.db import build_engine, embedded_database_url, make_sessionmaker


def database_url(settings: Settings) -> str:
    """DATABASE_URL, else the embedded Postgres in the data directory (started if needed)."""
    return settings.database_url or embedded_database_url(settings.data_dir)


def open_database(
    settings: Settings, *, migrate: bool = False
) -> tuple[Engine, sessionmaker[Session]]:
    """An engine and sessionmaker for `settings`, migrated to head when asked."""
    engine = build_engine(database_url(settings), pool_size=settings.db_pool_size)
    if migrate:
        from app.core.migrate import upgrade

        upgrade(engine)
    return engine, make_sessionmaker(engine)
