"""Shared fixtures: the shipped model, a detector over it, and builders of test emails."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import (
    build_engine,
    embedded_database_url,
    make_sessionmaker,
    normalise_url,
    stop_embedded,
)
from app.core.migrate import upgrade
from app.detect.engine import SHIPPED_MODEL_DIR, Detector
from app.detect.model import MANIFEST_NAME
from app.mail.parse import email_from_json
from app.mail.schemas import Email
from app.models import Base

BANK_CHANGE_ASK = (
    "Please update our bank details, our new IBAN is GB33 BUKB 2020 1555 5555 55 and all "
    "future invoices must be paid to this account."
)
BANK_CHANGE_TEXT = (
    "Hello,\n\n"
    "We have moved our business account to a new bank. "
    f"{BANK_CHANGE_ASK} "
    "The old account will close at the end of the month.\n\n"
    "Thanks,\nMark Ellis\nAccounts, Acme Supplies"
)
LUNCH_TEXT = (
    "Hi Tom,\n\n"
    "Are you free for lunch on Thursday? I was thinking the Italian place on the corner "
    "at 12:30. Let me know if another day suits you better.\n\n"
    "Cheers,\nAnna"
)


def _bank_change_json(**overrides: Any) -> dict[str, Any]:
    """Email JSON of a plainly written request to change a vendor's bank details."""
    data: dict[str, Any] = {
        "message_id": "<bank-change@acme-supplies.com>",
        "from": "Mark Ellis <mark.ellis@acme-supplies.com>",
        "to": ["ap@northgate.com"],
        "subject": "New bank details for your payments",
        "text": BANK_CHANGE_TEXT,
    }
    data.update(overrides)
    return data


def _lunch_json(**overrides: Any) -> dict[str, Any]:
    """Email JSON of an everyday lunch invitation."""
    data: dict[str, Any] = {
        "message_id": "<lunch@northgate.com>",
        "from": "Anna Berg <anna.berg@northgate.com>",
        "to": ["tom.hale@northgate.com"],
        "subject": "Lunch on Thursday?",
        "text": LUNCH_TEXT,
    }
    data.update(overrides)
    return data


def _eml_bytes(*, sender: str, subject: str, text: str, message_id: str) -> bytes:
    """A small raw RFC 5322 message."""
    return (
        f"From: {sender}\r\n"
        "To: ap@northgate.com\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: {message_id}\r\n"
        "Date: Mon, 02 Feb 2026 09:30:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n" + text.replace("\n", "\r\n") + "\r\n"
    ).encode()


@pytest.fixture(scope="session")
def shipped_manifest() -> dict[str, Any]:
    """The manifest of the model shipped with the package (it must have been trained)."""
    path = SHIPPED_MODEL_DIR / MANIFEST_NAME
    if not path.is_file():
        pytest.fail(f"no shipped model at {SHIPPED_MODEL_DIR}: run `countersign train` first")
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def detector(shipped_manifest: dict[str, Any]) -> Detector:
    """A detector over the shipped model with an empty directory."""
    return Detector.from_dir()


@pytest.fixture
def make_email() -> Callable[[dict[str, Any]], Email]:
    """Normalise Email JSON into an Email."""
    return email_from_json


@pytest.fixture
def model_copy(tmp_path: Path, shipped_manifest: dict[str, Any]) -> Path:
    """A private copy of the shipped model directory, free to tamper with."""
    target = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL_DIR, target)
    return target


@pytest.fixture
def bank_change_json() -> Callable[..., dict[str, Any]]:
    """Builder of a plainly written bank-change request (keyword overrides replace fields)."""
    return _bank_change_json


@pytest.fixture
def lunch_json() -> Callable[..., dict[str, Any]]:
    """Builder of a benign lunch invitation (keyword overrides replace fields)."""
    return _lunch_json


@pytest.fixture
def eml_bytes() -> Callable[..., bytes]:
    """Builder of a raw RFC 5322 message."""
    return _eml_bytes


@pytest.fixture
def bank_change_ask() -> str:
    """The sentence of the bank-change email that makes the request."""
    return BANK_CHANGE_ASK


# --- database -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's Postgres (DATABASE_URL), else an embedded one for this test session."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    data_dir = tmp_path_factory.mktemp("pg") / "pgdata"
    yield embedded_database_url(data_dir)
    stop_embedded(data_dir)


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    """A fresh database for this test session, migrated to head, dropped at the end."""
    server = make_url(normalise_url(server_url))
    name = f"countersign_test_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    engine = build_engine(url, pool_size=2)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """The test database's engine (a pool big enough for the concurrency tests)."""
    eng = build_engine(database_url, pool_size=25)
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session inside a transaction rolled back after the test (commits become savepoints)."""
    conn = engine.connect()
    outer = conn.begin()
    session = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        conn.close()


@pytest.fixture
def committed(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Real commits (for concurrency and API tests); every table is emptied afterwards."""
    yield make_sessionmaker(engine)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
