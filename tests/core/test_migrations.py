"""The models and the migrations describe the same schema, and downgrade works."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine, make_url

from app.core.db import build_engine
from app.core.migrate import downgrade, upgrade
from app.models import Base


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_downgrade_to_base_and_upgrade_again(database_url: str) -> None:
    url = make_url(database_url)
    scratch = f"{url.database}_scratch"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{scratch}"'))
    eng = build_engine(url.set(database=scratch).render_as_string(hide_password=False))
    try:
        upgrade(eng)
        assert "ticket" in inspect(eng).get_table_names()
        downgrade(eng, "base")
        assert "ticket" not in inspect(eng).get_table_names()
        upgrade(eng)
        assert "ticket" in inspect(eng).get_table_names()
    finally:
        eng.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        admin.dispose()
