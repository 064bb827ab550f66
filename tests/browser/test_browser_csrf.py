"""In a real browser: a signed-in session alone cannot change anything without the CSRF token."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from app.dashboard.csrf import issue_token
from tests.browser.helpers import sign_in

State = Callable[[int], dict[str, Any]]
Form = dict[str, str | float | bool]
ACTIONS: list[tuple[str, Form]] = [
    ("claim", {"partial": "row", "next": "/dashboard"}),
    ("start", {}),
    ("outcome", {"outcome": "confirmed_fraud", "note": "forged outcome"}),
    ("false-positive", {"note": "forged"}),
    ("comment", {"text": "forged comment"}),
]


@pytest.mark.parametrize(
    "token",
    [None, "", "forged-token", issue_token(secrets.token_urlsafe(32))],
    ids=["none", "empty", "garbage", "another-sessions"],
)
def test_ticket_actions_with_the_session_cookie_but_no_valid_token_are_refused(
    page: Page,
    live_url: str,
    analyst: str,
    risky_ticket: int,
    ticket_state: State,
    token: str | None,
) -> None:
    sign_in(page, analyst)
    page.goto(f"/dashboard/tickets/{risky_ticket}")
    before = ticket_state(risky_ticket)
    for action, form in ACTIONS:
        data: Form = form if token is None else {**form, "csrf_token": token}
        r = page.request.post(
            f"{live_url}/dashboard/tickets/{risky_ticket}/{action}", form=data, max_redirects=0
        )
        assert r.status == 403, f"{action}: {r.status}"
        assert "did not come from this dashboard" in r.text(), action
    assert ticket_state(risky_ticket) == before
    page.reload()
    expect(page.locator("#ticket-status")).to_have_text("Open")
    expect(page.locator("#ticket-assignee")).to_have_text("Unassigned")

    # The same request with the page's own token goes through: the token made the difference.
    good = page.locator("#claim-form input[name=csrf_token]").input_value()
    r = page.request.post(
        f"{live_url}/dashboard/tickets/{risky_ticket}/claim",
        form={"csrf_token": good},
        max_redirects=0,
    )
    assert r.status == 303
    assert ticket_state(risky_ticket)["assignee"] == analyst


def test_a_script_in_the_page_cannot_post_without_the_token(
    page: Page, analyst: str, risky_ticket: int, ticket_state: State
) -> None:
    sign_in(page, analyst)
    page.goto(f"/dashboard/tickets/{risky_ticket}")
    before = ticket_state(risky_ticket)
    # fetch() from the dashboard's own origin sends the cookie and Sec-Fetch-Site: same-origin.
    status = page.evaluate(
        """async (number) => (await fetch(`/dashboard/tickets/${number}/claim`, {
            method: "POST", body: new URLSearchParams({partial: ""}), redirect: "manual",
        })).status""",
        risky_ticket,
    )
    assert status == 403
    assert ticket_state(risky_ticket) == before
    expect(page.locator("#ticket-assignee")).to_have_text("Unassigned")


def test_sign_out_and_try_without_the_token_are_refused(
    page: Page, live_url: str, analyst: str
) -> None:
    sign_in(page, analyst)
    r = page.request.post(f"{live_url}/dashboard/logout", form={}, max_redirects=0)
    assert r.status == 403
    r = page.request.post(
        f"{live_url}/dashboard/try", multipart={"email": '{"from": "a@b.example"}'}
    )
    assert r.status == 403
    page.goto("/dashboard")
    expect(page.locator("#current-user")).to_contain_text(analyst)
