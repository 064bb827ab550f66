"""Helpers of the dashboard tests: the test app, signing in, the gateway's signature."""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.routing import NoMatchFound

from app.core.config import Settings
from app.core.security import sign
from app.dashboard.router import mount_static
from app.dashboard.router import router as dashboard_router
from app.main import create_app

PASSWORD = "correct horse battery staple"
WEBHOOK_SECRET = b"dashboard-test-secret"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def dashboard_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings of a test app on the test database (no migration on start: it is migrated)."""
    values: dict[str, Any] = {
        "env": "test",
        "database_url": database_url,
        "migrate_on_start": False,
        "api_keys": SecretStr("test-key"),
        "webhook_secrets": SecretStr("gw=" + WEBHOOK_SECRET.decode()),
        "db_pool_size": 5,
    }
    values.update(overrides)
    return Settings(**values)


def dashboard_app(settings: Settings) -> FastAPI:
    """create_app with the dashboard wired in (unless create_app wires it already)."""
    app = create_app(settings)
    try:
        app.url_path_for("dashboard-queue")
    except NoMatchFound:
        app.include_router(dashboard_router)
    try:
        app.url_path_for("dashboard-static", path="app.css")
    except NoMatchFound:
        mount_static(app)
    return app


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


def sign_in(
    client: TestClient, name: str, password: str = PASSWORD, next_url: str = "/dashboard"
) -> Any:
    """Submit the sign-in form as a browser would (GET the form, POST it with its token)."""
    form = client.get("/dashboard/login", params={"next": next_url})
    return client.post(
        "/dashboard/login",
        data={
            "name": name,
            "password": password,
            "csrf_token": csrf_of(form.text),
            "next": next_url,
        },
        follow_redirects=False,
    )


def signed_headers(body: bytes, content_type: str = "application/json") -> dict[str, str]:
    """Headers a gateway sends with `body`."""
    stamp = str(int(time.time()))
    return {
        "Content-Type": content_type,
        "X-Countersign-Source": "gw",
        "X-Countersign-Timestamp": stamp,
        "X-Countersign-Signature": sign(WEBHOOK_SECRET, stamp, body),
    }


def gift_card_json(**overrides: Any) -> dict[str, Any]:
    """Email JSON of a gift-card request from a free-mail address."""
    data: dict[str, Any] = {
        "message_id": "<gift-cards@gmail.com>",
        "from": "Dana Cole <dana.cole@gmail.com>",
        "to": ["tom.hale@northgate.com"],
        "subject": "Quick favour",
        "text": (
            "Hi, I need you to buy five 100 dollar Apple gift cards for a client today. Scratch "
            "the back and send me pictures of the codes. I am in a meeting, keep this between us."
        ),
    }
    data.update(overrides)
    return data


def credential_json(**overrides: Any) -> dict[str, Any]:
    """Email JSON of a credential phish from a look-alike domain."""
    data: dict[str, Any] = {
        "message_id": "<mailbox-full@micros0ft-login.com>",
        "from": "IT Support <support@micros0ft-login.com>",
        "to": ["tom.hale@northgate.com"],
        "subject": "Mailbox full",
        "text": (
            "Your mailbox is full. Verify your account and enter your password at the link "
            "below to keep receiving mail: https://micros0ft-login.com/verify"
        ),
    }
    data.update(overrides)
    return data


def row_of(html: str, number: int) -> str:
    """The queue row of one ticket."""
    marker = f'<tr id="ticket-row-{number}"'
    assert marker in html, f"ticket {number} is not in the queue"
    return marker + html.split(marker, 1)[1].split("</tr>", 1)[0] + "</tr>"


def queue_numbers(html: str) -> list[int]:
    """Ticket numbers in the queue, in display order."""
    return [int(n) for n in re.findall(r'<tr id="ticket-row-(\d+)"', html)]
