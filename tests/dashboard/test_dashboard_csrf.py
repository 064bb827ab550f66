"""Every state-changing dashboard request needs this session's CSRF token: 403 and no change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.users.models import User
from tests.dashboard.helpers import csrf_of, sign_in

ACTIONS: dict[str, dict[str, str]] = {
    "claim": {},
    "start": {},
    "outcome": {"outcome": "confirmed_fraud", "note": "called the vendor"},
    "false-positive": {"note": "newsletter"},
    "comment": {"text": "looks odd"},
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("token", ["missing", "wrong", "other_session"])
def test_action_without_a_valid_csrf_token_is_refused_and_changes_nothing(
    signed_in: TestClient,
    make_user: Callable[..., User],
    app: Any,
    ticket_number: int,
    ticket_state: Callable[[int], dict[str, Any]],
    action: str,
    token: str,
) -> None:
    before = ticket_state(ticket_number)
    data = dict(ACTIONS[action])
    if token == "wrong":
        data["csrf_token"] = "bm90LWEtdG9rZW4tYXQtYWxsLW5vdC1hLXRva2VuLWF0LWFsbA"
    elif token == "other_session":
        make_user("bob")
        with TestClient(app) as other:
            sign_in(other, "bob")
            data["csrf_token"] = csrf_of(other.get("/dashboard/try").text)
    r = signed_in.post(
        f"/dashboard/tickets/{ticket_number}/{action}", data=data, follow_redirects=False
    )
    assert r.status_code == 403
    assert "expired or did not come from this dashboard" in r.text
    assert ticket_state(ticket_number) == before


def test_wrong_token_in_the_htmx_header_is_refused_even_with_a_good_form_field(
    signed_in: TestClient, ticket_number: int, ticket_state: Callable[[int], dict[str, Any]]
) -> None:
    good = csrf_of(signed_in.get(f"/dashboard/tickets/{ticket_number}").text)
    r = signed_in.post(
        f"/dashboard/tickets/{ticket_number}/claim",
        data={"csrf_token": good},
        headers={"HX-Request": "true", "X-CSRF-Token": "forged"},
    )
    assert r.status_code == 403
    # htmx gets a message for the page's #flash area, not a whole page.
    assert r.headers["HX-Retarget"] == "#flash"
    assert "<html" not in r.text
    assert ticket_state(ticket_number)["assignee"] is None


def test_token_in_the_htmx_header_is_accepted(
    signed_in: TestClient, ticket_number: int, ticket_state: Callable[[int], dict[str, Any]]
) -> None:
    good = csrf_of(signed_in.get(f"/dashboard/tickets/{ticket_number}").text)
    r = signed_in.post(
        f"/dashboard/tickets/{ticket_number}/claim",
        headers={"HX-Request": "true", "X-CSRF-Token": good},
    )
    assert r.status_code == 200
    assert ticket_state(ticket_number)["assignee"] == "alice"


def test_try_an_email_needs_the_token_too(signed_in: TestClient) -> None:
    r = signed_in.post("/dashboard/try", data={"email": '{"from": "a@b.example"}'})
    assert r.status_code == 403
