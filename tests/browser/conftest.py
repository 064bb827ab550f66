"""Browser fixtures: Debian's Chromium driven by Playwright against the real app on a live port.

One browser for the whole session, a fresh context (cookies, storage) per test. The app is
create_app on the test database, served by uvicorn in a thread; every table is emptied after each
test (`committed`). Tickets come in through the signed gateway webhook, as in production.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.tickets.models import Ticket, TicketEvent
from app.users import service as users
from tests.browser.helpers import ADMIN, ANALYST, PASSWORD, Watch, chromium_executable
from tests.dashboard.helpers import dashboard_settings, signed_headers
from tests.support.server import live_server

Post = Callable[[dict[str, Any]], dict[str, Any]]


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[Playwright]:
    """Playwright's driver, started once (skips the browser tests when there is no Chromium)."""
    if chromium_executable() is None:
        pytest.skip(
            "no chromium binary found (PATH, $CHROMIUM_PATH): install Debian's chromium "
            "with `apt-get install chromium`; .ci/run does this"
        )
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright_session: Playwright) -> Iterator[Browser]:
    """Debian's headless Chromium, shared by every browser test."""
    browser = playwright_session.chromium.launch(executable_path=chromium_executable())
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def live_app(database_url: str) -> Iterator[tuple[FastAPI, str]]:
    """create_app on the test database, served on a free loopback port for the whole session."""
    app = create_app(dashboard_settings(database_url))
    with live_server(app) as url:
        yield app, url


@pytest.fixture
def live_url(live_app: tuple[FastAPI, str]) -> str:
    """Base URL of the live app, whose connection pool starts empty for each test.

    A fresh pool keeps one test's server-side connection state (prepared statements, plans)
    from deciding whether the next test passes, as a fresh app per test would.
    """
    app, url = live_app
    app.state.engine.dispose()
    return url


@pytest.fixture(autouse=True)
def _empty_tables_after_each_test(committed: sessionmaker[Session]) -> None:
    """Every browser test starts from an empty database (users and tickets are committed)."""


@pytest.fixture
def context(browser: Browser, live_url: str) -> Iterator[BrowserContext]:
    """A fresh browser profile for one test (no cookies from other tests)."""
    ctx = browser.new_context(base_url=live_url, viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def watch() -> Watch:
    """Records dialogs, console errors and uncaught exceptions of the test's page."""
    return Watch()


@pytest.fixture
def page(context: BrowserContext, watch: Watch) -> Page:
    """A tab in the test's profile, watched for dialogs and errors."""
    tab = context.new_page()
    watch.attach(tab)
    return tab


@pytest.fixture
def make_user(committed: sessionmaker[Session]) -> Callable[..., str]:
    """Create a user with PASSWORD (committed, so the live app sees it); returns the name."""

    def make(name: str, role: str = "analyst") -> str:
        with committed() as s, s.begin():
            users.create_user(s, name=name, password=PASSWORD, role=role)
        return name

    return make


@pytest.fixture
def admin(make_user: Callable[..., str]) -> str:
    """An admin called root."""
    return make_user(ADMIN, role="admin")


@pytest.fixture
def analyst(make_user: Callable[..., str]) -> str:
    """An analyst called alice."""
    return make_user(ANALYST)


@pytest.fixture
def post_email(live_url: str) -> Post:
    """Send Email JSON (dict) through the signed gateway webhook; returns the Verdict."""

    def post(data: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(data).encode()
        r = httpx.post(f"{live_url}/v1/messages", content=body, headers=signed_headers(body))
        assert r.status_code == 200, f"the webhook answered {r.status_code}: {r.text}"
        verdict: dict[str, Any] = r.json()
        return verdict

    return post


@pytest.fixture
def post_mime(live_url: str) -> Callable[[bytes], dict[str, Any]]:
    """Send a raw RFC 5322 message through the signed gateway webhook; returns the Verdict."""

    def post(raw: bytes) -> dict[str, Any]:
        headers = signed_headers(raw, content_type="message/rfc822")
        r = httpx.post(f"{live_url}/v1/messages", content=raw, headers=headers)
        assert r.status_code == 200, f"the webhook answered {r.status_code}: {r.text}"
        verdict: dict[str, Any] = r.json()
        return verdict

    return post


@pytest.fixture
def open_ticket(post_email: Post) -> Callable[[dict[str, Any]], int]:
    """Post an email that must open a ticket; returns the ticket's number."""

    def open_(data: dict[str, Any]) -> int:
        verdict = post_email(data)
        assert verdict["ticket"] is not None, f"no ticket opened: {verdict}"
        return int(verdict["ticket"]["number"])

    return open_


@pytest.fixture
def risky_ticket(
    open_ticket: Callable[[dict[str, Any]], int], bank_change_json: Callable[..., dict[str, Any]]
) -> int:
    """The number of a ticket the webhook opened for a vendor's bank-change request."""
    return open_ticket(bank_change_json())


@pytest.fixture
def ticket_state(committed: sessionmaker[Session]) -> Callable[[int], dict[str, Any]]:
    """What the database says about a ticket: status, outcome, assignee and its events."""

    def state(number: int) -> dict[str, Any]:
        with committed() as s:
            t = s.scalars(select(Ticket).where(Ticket.number == number)).one()
            events = s.scalars(
                select(TicketEvent).where(TicketEvent.ticket_id == t.id).order_by(TicketEvent.seq)
            )
            return {
                "status": t.status,
                "outcome": t.outcome,
                "assignee": t.assignee,
                "events": [(e.kind, e.actor, e.to_status, e.reason) for e in events],
            }

    return state
