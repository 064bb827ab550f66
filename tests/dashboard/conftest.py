"""Dashboard fixtures: an app with a real database, users, signed-in clients, webhook tickets."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.tickets.models import Ticket, TicketEvent
from app.users import service as users
from app.users.models import User
from tests.dashboard.helpers import (
    PASSWORD,
    dashboard_app,
    dashboard_settings,
    sign_in,
    signed_headers,
)


@pytest.fixture
def app(committed: sessionmaker[Session], database_url: str) -> FastAPI:
    """The API with the dashboard, on the test database (emptied after the test)."""
    return dashboard_app(dashboard_settings(database_url))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A browser on the app (cookies kept between requests)."""
    with TestClient(app) as c:
        yield c


@pytest.fixture
def make_user(committed: sessionmaker[Session]) -> Callable[..., User]:
    """Create a user with PASSWORD (committed, so the app sees it)."""

    def make(name: str, role: str = "analyst", password: str = PASSWORD) -> User:
        with committed() as s, s.begin():
            return users.create_user(s, name=name, password=password, role=role)

    return make


@pytest.fixture
def analyst(make_user: Callable[..., User]) -> User:
    """An analyst called alice."""
    return make_user("alice")


@pytest.fixture
def admin(make_user: Callable[..., User]) -> User:
    """An admin called root."""
    return make_user("root", role="admin")


@pytest.fixture
def signed_in(client: TestClient, analyst: User) -> TestClient:
    """The browser, signed in as the analyst alice."""
    response = sign_in(client, analyst.name)
    assert response.status_code == 303, response.text
    return client


@pytest.fixture
def post_email(client: TestClient) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Send Email JSON through the signed gateway webhook; returns the Verdict."""

    def post(data: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(data).encode()
        response = client.post("/v1/messages", content=body, headers=signed_headers(body))
        assert response.status_code == 200, response.text
        verdict: dict[str, Any] = response.json()
        return verdict

    return post


@pytest.fixture
def ticket_number(
    post_email: Callable[[dict[str, Any]], dict[str, Any]],
    bank_change_json: Callable[..., dict[str, Any]],
) -> int:
    """The number of a ticket opened by the webhook for a bank-change request."""
    verdict = post_email(bank_change_json())
    assert verdict["ticket"] is not None, verdict
    return int(verdict["ticket"]["number"])


@pytest.fixture
def ticket_state(
    committed: sessionmaker[Session],
) -> Callable[[int], dict[str, Any]]:
    """What the database says about a ticket: status, outcome, assignee and its events."""

    def state(number: int) -> dict[str, Any]:
        with committed() as s:
            t = s.scalars(select(Ticket).where(Ticket.number == number)).one()
            events = list(
                s.scalars(
                    select(TicketEvent)
                    .where(TicketEvent.ticket_id == t.id)
                    .order_by(TicketEvent.seq)
                )
            )
            return {
                "id": t.id,
                "status": t.status,
                "outcome": t.outcome,
                "assignee": t.assignee,
                "events": [(e.kind, e.actor, e.to_status, e.reason) for e in events],
            }

    return state
