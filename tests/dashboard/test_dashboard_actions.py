"""Analysts' actions on a ticket: plain form posts (POST-redirect-GET) and htmx fragments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.users.models import User
from tests.dashboard.helpers import csrf_of, sign_in

State = Callable[[int], dict[str, Any]]


def _post(client: TestClient, number: int, action: str, **data: str) -> Any:
    """Submit an action form of the ticket page as a browser without JavaScript does."""
    token = csrf_of(client.get(f"/dashboard/tickets/{number}").text)
    return client.post(
        f"/dashboard/tickets/{number}/{action}",
        data={"csrf_token": token, **data},
        follow_redirects=False,
    )


def test_claim_start_and_record_outcome_close_the_ticket_with_an_event_each(
    signed_in: TestClient, ticket_number: int, ticket_state: State
) -> None:
    r = _post(signed_in, ticket_number, "claim")
    assert r.status_code == 303
    assert r.headers["location"] == f"/dashboard/tickets/{ticket_number}?done=claimed#ticket-work"
    assert "The ticket is assigned to you." in signed_in.get(r.headers["location"]).text
    assert ticket_state(ticket_number)["assignee"] == "alice"

    r = _post(signed_in, ticket_number, "start")
    assert r.status_code == 303
    assert ticket_state(ticket_number)["status"] == "in_progress"

    note = "Called Acme on +44 20 7946 0000 (on file): they changed nothing. Fraud."
    r = _post(signed_in, ticket_number, "outcome", outcome="confirmed_fraud", note=note)
    assert r.status_code == 303
    state = ticket_state(ticket_number)
    assert state["status"] == "confirmed_fraud"
    assert state["outcome"] == "confirmed_fraud"
    assert state["events"] == [
        ("opened", "system", "open", state["events"][0][3]),
        ("assign", "user:alice", None, "assigned to alice"),
        ("status", "user:alice", "in_progress", "verification started"),
        ("status", "user:alice", "confirmed_fraud", note),
    ]
    page = signed_in.get(f"/dashboard/tickets/{ticket_number}").text
    assert '<span id="ticket-status" class="status status-confirmed_fraud">' in page
    assert 'class="chain chain-ok"' in page
    assert note in page.split('id="timeline"')[1]
    assert 'id="outcome-form"' not in page
    assert 'id="reopen-form"' in page


def test_starting_verification_claims_an_unassigned_ticket(
    signed_in: TestClient, ticket_number: int, ticket_state: State
) -> None:
    _post(signed_in, ticket_number, "start")
    state = ticket_state(ticket_number)
    assert state["status"] == "in_progress"
    assert state["assignee"] == "alice"


def test_htmx_action_returns_the_updated_work_panel_only(
    signed_in: TestClient, ticket_number: int, ticket_state: State
) -> None:
    token = csrf_of(signed_in.get(f"/dashboard/tickets/{ticket_number}").text)
    r = signed_in.post(
        f"/dashboard/tickets/{ticket_number}/start",
        data={"csrf_token": token},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200
    assert '<section id="ticket-work"' in r.text
    assert "<html" not in r.text
    # An earlier error message in #flash is cleared out of band.
    assert '<div id="flash" aria-live="polite" hx-swap-oob="true"></div>' in r.text
    assert "Verification started." in r.text
    assert '<span id="ticket-status" class="status status-in_progress">' in r.text
    assert ticket_state(ticket_number)["status"] == "in_progress"


def test_recording_an_outcome_without_a_note_is_refused_and_changes_nothing(
    signed_in: TestClient, ticket_number: int, ticket_state: State
) -> None:
    before = ticket_state(ticket_number)
    r = _post(signed_in, ticket_number, "outcome", outcome="verified_legitimate", note="   ")
    assert r.status_code == 422
    assert "needs a note" in r.text
    assert ticket_state(ticket_number) == before


def test_an_unknown_outcome_is_refused(
    signed_in: TestClient, ticket_number: int, ticket_state: State
) -> None:
    r = _post(signed_in, ticket_number, "outcome", outcome="expired", note="sure")
    assert r.status_code == 422
    assert ticket_state(ticket_number)["status"] == "open"


def test_false_positive_closes_as_verified_legitimate_with_outcome_false_positive(
    signed_in: TestClient, ticket_number: int, ticket_state: State
) -> None:
    r = _post(signed_in, ticket_number, "false-positive", note="remittance advice, no change")
    assert r.status_code == 303
    state = ticket_state(ticket_number)
    assert state["status"] == "verified_legitimate"
    assert state["outcome"] == "false_positive"
    assert state["events"][-1][1:] == (
        "user:alice",
        "verified_legitimate",
        "remittance advice, no change",
    )
    page = signed_in.get(f"/dashboard/tickets/{ticket_number}").text
    assert '<span id="ticket-outcome">(False positive)</span>' in page


def test_reopen_brings_a_closed_ticket_back_to_the_queue(
    signed_in: TestClient, ticket_number: int, ticket_state: State
) -> None:
    _post(signed_in, ticket_number, "outcome", outcome="verified_legitimate", note="confirmed")
    r = _post(signed_in, ticket_number, "reopen", note="vendor called back: not them")
    assert r.status_code == 303
    state = ticket_state(ticket_number)
    assert state["status"] == "open"
    assert state["outcome"] is None
    assert state["events"][-1][1:] == ("user:alice", "open", "vendor called back: not them")
    assert f'id="ticket-row-{ticket_number}"' in signed_in.get("/dashboard").text


def test_comment_is_added_to_the_timeline_and_escaped(
    signed_in: TestClient, ticket_number: int, ticket_state: State
) -> None:
    _post(signed_in, ticket_number, "comment", text="<b>left a voicemail</b>")
    assert ticket_state(ticket_number)["events"][-1][:2] == ("comment", "user:alice")
    timeline = signed_in.get(f"/dashboard/tickets/{ticket_number}").text.split('id="timeline"')[1]
    assert "&lt;b&gt;left a voicemail&lt;/b&gt;" in timeline
    assert "<b>left a voicemail" not in timeline


def test_claiming_a_ticket_someone_else_holds_conflicts_unless_taking_over(
    app: FastAPI,
    signed_in: TestClient,
    make_user: Callable[..., User],
    ticket_number: int,
    ticket_state: State,
) -> None:
    make_user("bob")
    with TestClient(app) as bob:
        sign_in(bob, "bob")
        assert _post(bob, ticket_number, "claim").status_code == 303
    r = _post(signed_in, ticket_number, "claim")
    assert r.status_code == 409
    assert "already claimed by bob" in r.text
    assert ticket_state(ticket_number)["assignee"] == "bob"
    page = signed_in.get(f"/dashboard/tickets/{ticket_number}").text
    assert "Take over from bob" in page
    assert _post(signed_in, ticket_number, "claim", take_over="true").status_code == 303
    assert ticket_state(ticket_number)["assignee"] == "alice"


def test_a_move_the_workflow_does_not_allow_is_a_409_and_changes_nothing(
    signed_in: TestClient, ticket_number: int, ticket_state: State
) -> None:
    _post(signed_in, ticket_number, "start")
    before = ticket_state(ticket_number)
    r = _post(signed_in, ticket_number, "start")
    assert r.status_code == 409
    assert "cannot go from in_progress to in_progress" in r.text
    assert ticket_state(ticket_number) == before


def test_give_back_unassigns_my_ticket(
    signed_in: TestClient, ticket_number: int, ticket_state: State
) -> None:
    _post(signed_in, ticket_number, "claim")
    assert _post(signed_in, ticket_number, "release").status_code == 303
    assert ticket_state(ticket_number)["assignee"] is None
