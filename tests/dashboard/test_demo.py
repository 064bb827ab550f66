"""`countersign demo`: a week of traffic through the real paths, only into an empty database."""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.demo.commands import register
from app.demo.service import run_demo
from app.detect.engine import Detector
from app.directory.models import Vendor
from app.directory.service import parse_directory_file
from app.ingest.models import Message
from app.tickets import service as tickets
from app.tickets.models import Ticket, TicketEvent
from app.users.models import User
from app.verification.models import FeedbackLabel
from tests.dashboard.helpers import dashboard_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "directory.yaml"
KEY = b"countersign-dev-fingerprint-key"


def _demo(database_url: str, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["demo", *argv])
    return int(args.func(args, dashboard_settings(database_url)))


def test_demo_fills_an_empty_database_with_tickets_in_every_status(
    committed: sessionmaker[Session], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    started = datetime.now(UTC)
    assert _demo(database_url, "--seed", "3", "--messages", "120") == 0
    out = capsys.readouterr().out
    with committed() as s:
        all_tickets = list(s.scalars(select(Ticket)))
        statuses = Counter(t.status for t in all_tickets)
        assert set(statuses) == {
            "open",
            "in_progress",
            "verified_legitimate",
            "confirmed_fraud",
            "expired",
        }
        assert any(t.outcome == "false_positive" for t in all_tickets)
        assert all(t.assignee for t in all_tickets if t.status == "in_progress")
        assert any(t.status == "open" and t.due_at < started for t in all_tickets)  # overdue
        # One request per ticket: the same IBAN again attached, a different one superseded.
        assert s.scalar(select(func.count()).where(Message.ticket_relation == "attached")) >= 2
        assert any(t.supersedes_id for t in all_tickets)
        # Events are real and their hash chains hold after the times were moved to the week.
        for t in all_tickets:
            assert tickets.verify_chain(s, t.id) == (True, None), t.number
        kinds = set(s.scalars(select(TicketEvent.kind)))
        assert {"opened", "assign", "status", "comment", "message_attached"} <= kinds
        assert s.scalar(select(func.count()).select_from(FeedbackLabel)) > 0
        received = list(s.scalars(select(Message.received_at)))
        assert len(received) == 120
        assert all(started - timedelta(days=7, minutes=15) <= r < started for r in received)
        assert len({r.date() for r in received}) >= 6
        assert s.scalar(select(func.count()).select_from(Vendor)) == 6
        roles = dict(s.execute(select(User.name, User.role)).tuples().all())
    assert roles == {"admin": "admin", "analyst": "analyst"}
    assert out.count("password: ") == 2
    assert "/dashboard" in out


def test_demo_refuses_a_database_with_data_unless_reset_and_keeps_users(
    committed: sessionmaker[Session], database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    password = "demo admin password"
    assert _demo(database_url, "--messages", "60", "--admin-password", password) == 0
    assert password in capsys.readouterr().out
    with committed() as s:
        before = s.scalar(select(func.count()).select_from(Ticket))
        admin_hash = s.scalars(select(User.password_hash).where(User.name == "admin")).one()

    assert _demo(database_url, "--messages", "60") == 2
    assert "--reset" in capsys.readouterr().err
    with committed() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == before

    assert _demo(database_url, "--messages", "60", "--reset") == 0
    out = capsys.readouterr().out
    assert "exists, password unchanged" in out
    with committed() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 60
        assert s.scalars(select(User.password_hash).where(User.name == "admin")).one() == admin_hash
        numbers = list(s.scalars(select(Ticket.number).order_by(Ticket.number)))
    assert numbers[0] == 1001  # identities restarted with the data


def _week(session: Session, detector: Detector, now: datetime) -> list[tuple[Any, ...]]:
    run_demo(
        session,
        directory_data=parse_directory_file(EXAMPLE.name, EXAMPLE.read_bytes()),
        key=KEY,
        detector=detector,
        seed=11,
        messages=80,
        reset=True,
        now=now,
    )
    return [
        (t.number, t.intent, t.status, t.outcome, t.assignee, t.created_at, t.subject)
        for t in session.scalars(select(Ticket).order_by(Ticket.number))
    ]


def test_the_same_seed_plans_the_same_week(
    committed: sessionmaker[Session], detector: Detector
) -> None:
    now = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)
    with committed() as s, s.begin():
        first = _week(s, detector, now)
    with committed() as s, s.begin():
        second = _week(s, detector, now)
    assert first == second
    assert len(first) > 10
