"""The queue: tickets from the webhook, ordering, filters, search, counts, pages and claiming."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.tickets.models import Ticket
from tests.dashboard.helpers import (
    credential_json,
    csrf_of,
    gift_card_json,
    queue_numbers,
    row_of,
)

Post = Callable[[dict[str, Any]], dict[str, Any]]


@pytest.fixture
def three_tickets(post_email: Post, bank_change_json: Callable[..., dict[str, Any]]) -> dict:
    """A bank-change, a gift-card and a credential ticket, by name."""
    return {
        "bank": post_email(bank_change_json())["ticket"]["number"],
        "gift": post_email(gift_card_json())["ticket"]["number"],
        "cred": post_email(credential_json())["ticket"]["number"],
    }


def test_ticket_from_the_webhook_is_in_the_queue_with_time_left_and_a_claim_button(
    signed_in: TestClient, ticket_number: int
) -> None:
    r = signed_in.get("/dashboard")
    assert r.status_code == 200
    row = row_of(r.text, ticket_number)
    assert "New bank details for your payments" in row
    assert "Mark Ellis" in row
    assert "Payment change" in row
    # A payment change with only sender signals of medium severity: 24 hours to verify.
    assert "23 h 59 min left" in row or "24 h left" in row
    assert f'id="claim-form-{ticket_number}"' in row
    assert ">Claim</button>" in row
    assert '<span class="count" id="count-open">1</span>' in r.text


def test_queue_is_ordered_by_priority_then_due_time(
    signed_in: TestClient, three_tickets: dict, committed: sessionmaker[Session]
) -> None:
    with committed() as s:
        expected = [
            t.number
            for t in s.scalars(
                select(Ticket).order_by(
                    Ticket.priority.desc(), Ticket.due_at.asc(), Ticket.number.desc()
                )
            )
        ]
    assert len(set(expected)) == 3
    assert queue_numbers(signed_in.get("/dashboard").text) == expected


def test_intent_filter_shows_only_that_kind_of_request(
    signed_in: TestClient, three_tickets: dict
) -> None:
    html = signed_in.get("/dashboard", params={"intent": "gift_card"}).text
    assert queue_numbers(html) == [three_tickets["gift"]]
    assert '<option value="gift_card" selected>' in html


def test_severity_filter_hides_other_severities(
    signed_in: TestClient, three_tickets: dict, committed: sessionmaker[Session]
) -> None:
    with committed() as s, s.begin():
        bank = s.scalars(select(Ticket).where(Ticket.number == three_tickets["bank"])).one()
        bank.severity = "low"
    assert queue_numbers(signed_in.get("/dashboard?severity=low").text) == [three_tickets["bank"]]
    assert three_tickets["bank"] not in queue_numbers(
        signed_in.get("/dashboard?severity=high").text
    )


@pytest.mark.parametrize(
    ("query", "which"),
    [
        ("acme-supplies", "bank"),  # sender address / counterparty
        ("Mailbox full", "cred"),  # subject
        ("dana cole", "gift"),  # display name, case-insensitive
    ],
)
def test_search_matches_sender_subject_or_counterparty(
    signed_in: TestClient, three_tickets: dict, query: str, which: str
) -> None:
    html = signed_in.get("/dashboard", params={"q": query}).text
    assert queue_numbers(html) == [three_tickets[which]]
    assert f'value="{query}"' in html


def test_search_with_like_wildcards_matches_them_literally(
    signed_in: TestClient, three_tickets: dict
) -> None:
    html = signed_in.get("/dashboard", params={"q": "%"}).text
    assert queue_numbers(html) == []
    assert "No tickets match these filters." in html


def test_mine_and_unassigned_filters_follow_claims(
    signed_in: TestClient, three_tickets: dict
) -> None:
    token = csrf_of(signed_in.get("/dashboard").text)
    signed_in.post(f"/dashboard/tickets/{three_tickets['bank']}/claim", data={"csrf_token": token})
    assert queue_numbers(signed_in.get("/dashboard?mine=1").text) == [three_tickets["bank"]]
    unassigned = queue_numbers(signed_in.get("/dashboard?assignee=unassigned").text)
    assert sorted(unassigned) == sorted([three_tickets["gift"], three_tickets["cred"]])
    assert queue_numbers(signed_in.get("/dashboard?assignee=alice").text) == [three_tickets["bank"]]


def test_closed_tickets_leave_the_active_queue_and_are_counted_under_their_status(
    signed_in: TestClient, three_tickets: dict
) -> None:
    gift = three_tickets["gift"]
    token = csrf_of(signed_in.get(f"/dashboard/tickets/{gift}").text)
    signed_in.post(
        f"/dashboard/tickets/{gift}/outcome",
        data={"csrf_token": token, "outcome": "confirmed_fraud", "note": "CEO never asked"},
    )
    active = signed_in.get("/dashboard").text
    assert gift not in queue_numbers(active)
    assert '<span class="count" id="count-open">2</span>' in active
    assert '<span class="count" id="count-confirmed_fraud">1</span>' in active
    fraud = signed_in.get("/dashboard?status=confirmed_fraud").text
    assert queue_numbers(fraud) == [gift]
    assert "closed" in row_of(fraud, gift)
    assert len(queue_numbers(signed_in.get("/dashboard?status=all").text)) == 3


def test_pages_split_the_queue_and_keep_the_filters(
    signed_in: TestClient, three_tickets: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.dashboard.views.PAGE_SIZE", 2)
    first = signed_in.get("/dashboard", params={"q": "o"}).text  # all three subjects have an o
    assert "Showing 1–2 of 3" in first
    assert 'href="?q=o&amp;page=2"' in first
    second = signed_in.get("/dashboard", params={"q": "o", "page": 2}).text
    assert "Showing 3–3 of 3" in second
    shown = queue_numbers(first) + queue_numbers(second)
    assert sorted(shown) == sorted(three_tickets.values())


def test_claim_from_the_queue_without_javascript_redirects_back_to_the_same_view(
    signed_in: TestClient, ticket_number: int, ticket_state: Callable[[int], dict]
) -> None:
    page = signed_in.get("/dashboard?intent=payment_change")
    form = row_of(page.text, ticket_number)
    assert 'name="next" value="/dashboard?intent=payment_change"' in form
    r = signed_in.post(
        f"/dashboard/tickets/{ticket_number}/claim",
        data={
            "csrf_token": csrf_of(form),
            "partial": "row",
            "next": "/dashboard?intent=payment_change",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/dashboard?intent=payment_change"
    state = ticket_state(ticket_number)
    assert state["assignee"] == "alice"
    assert ("assign", "user:alice", None, "assigned to alice") in state["events"]
    row = row_of(signed_in.get(r.headers["location"]).text, ticket_number)
    assert '<span class="assigned">You</span>' in row
    assert "claim-form" not in row


def test_claim_from_the_queue_with_htmx_returns_just_the_updated_row(
    signed_in: TestClient, ticket_number: int
) -> None:
    token = csrf_of(signed_in.get("/dashboard").text)
    r = signed_in.post(
        f"/dashboard/tickets/{ticket_number}/claim",
        data={"partial": "row", "next": "/dashboard"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert r.status_code == 200
    assert r.text.lstrip().startswith(f'<tr id="ticket-row-{ticket_number}"')
    assert "<html" not in r.text
    assert '<span class="assigned">You</span>' in r.text


def test_queue_row_says_why_the_sender_looks_suspicious(
    signed_in: TestClient, post_email: Any
) -> None:
    from tests.dashboard.helpers import credential_json

    number = post_email(credential_json())["ticket"]["number"]
    row = row_of(signed_in.get("/dashboard").text, number)
    assert 'class="reason"' in row
    assert "look" in row.lower()
