"""The /verify pages over HTTP: GET changes nothing, POST records once, dead links look alike."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.db import transaction, utcnow
from app.tickets.models import Ticket, TicketEvent
from app.verification.models import FeedbackLabel, OutboxItem, VerificationToken
from app.verification.router import router
from app.verification.tokens import form_check, mint_token

PUBLIC_URL = "https://countersign.example"
KNOWN_PHONE = "+44 20 7946 0018"
ATTACKER_PHONE = "+44 7700 900461"
CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


@pytest.fixture
def client(committed: sessionmaker[Session], settings: Settings) -> Iterator[TestClient]:
    """A minimal app with just the verification pages."""
    app = FastAPI()
    app.state.sessions = committed
    app.state.settings = settings
    app.include_router(router)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def link(
    committed: sessionmaker[Session], make_ticket: Callable[..., Ticket]
) -> Callable[..., tuple[str, Any]]:
    """Commit a ticket and a token for it; returns (raw token, ticket id)."""

    def make(**ticket: Any) -> tuple[str, Any]:
        with transaction(committed) as session:
            t = make_ticket(session, **ticket)
            raw, _ = mint_token(session, ticket_id=t.id, ttl_hours=72)
            return raw, t.id

    return make


def _form(token: str, **overrides: str) -> dict[str, str]:
    return {
        "token_check": form_check(token),
        "outcome": "legitimate",
        "verifier": "Ann Lee",
        "channel": "Phone call to the number on file",
        "note": "Confirmed by Mark on the known number.",
        **overrides,
    }


def _state(committed: sessionmaker[Session]) -> dict[str, Any]:
    """Everything a request could change, as plain values."""
    with transaction(committed) as session:
        return {
            "tokens": session.execute(
                text("select id, used_at, expires_at, outcome, verifier from verification_token")
            ).all(),
            "tickets": session.execute(
                text("select id, status, updated_at, closed_at, outcome from ticket")
            ).all(),
            "events": session.scalar(select(func.count()).select_from(TicketEvent)),
            "labels": session.scalar(select(func.count()).select_from(FeedbackLabel)),
            "outbox": session.scalar(select(func.count()).select_from(OutboxItem)),
        }


def _assert_security_headers(response: Any) -> None:
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


def test_verify_page_shows_the_request_the_contacts_on_file_and_what_not_to_use(
    client: TestClient, link: Callable[..., tuple[str, Any]]
) -> None:
    raw, _ = link()
    r = client.get(f"/verify/{raw}")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    _assert_security_headers(r)
    page = r.text
    assert re.search(r"Verify ticket #\d+", page)
    assert "change of payment or bank details" in page
    assert "Confirm change of payment or bank details from Acme Supplies" in page
    assert "EUR 12,500.00" in page
    assert KNOWN_PHONE in page
    assert "On file since 2024-01-15, added by vendor-master import" in page
    danger = page.split("Supplied by the email: do not use", 1)[1]
    assert ATTACKER_PHONE in danger
    assert "iban ending 5555" in danger
    assert KNOWN_PHONE not in danger
    assert f'name="token_check" value="{form_check(raw)}"' in page
    for outcome in ("legitimate", "fraudulent", "could_not_reach"):
        assert f'value="{outcome}"' in page
    # No external assets and no script at all.
    assert "<script" not in page
    assert "http://" not in page
    assert "https://" not in page


def test_email_text_on_the_page_is_escaped_never_rendered(
    client: TestClient, link: Callable[..., tuple[str, Any]]
) -> None:
    raw, _ = link(
        subject='<script>alert("x")</script><img src=x onerror=alert(1)>',
        counterparty_name="Acme <b>Supplies</b>",
        supplied_by_email={"phones": ['"><a href="https://evil.example">call</a>']},
    )
    page = client.get(f"/verify/{raw}").text
    assert "<script>alert" not in page
    assert "<img" not in page
    assert "<b>Supplies</b>" not in page
    assert '<a href="https://evil.example">' not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "Acme &lt;b&gt;Supplies&lt;/b&gt;" in page


def test_get_changes_nothing_however_often_it_is_fetched(
    client: TestClient, committed: sessionmaker[Session], link: Callable[..., tuple[str, Any]]
) -> None:
    raw, _ = link()
    before = _state(committed)
    for _ in range(3):
        assert client.get(f"/verify/{raw}").status_code == 200
        assert client.head(f"/verify/{raw}").status_code in (200, 405)
    assert _state(committed) == before
    # The link still works after a scanner (or the verifier) opened it.
    r = client.post(f"/verify/{raw}", data=_form(raw))
    assert r.status_code == 200
    assert "Outcome recorded" in r.text


def test_posting_the_form_records_the_outcome_once(
    client: TestClient, committed: sessionmaker[Session], link: Callable[..., tuple[str, Any]]
) -> None:
    raw, ticket_id = link()
    r = client.post(f"/verify/{raw}", data=_form(raw, outcome="fraudulent"))
    assert r.status_code == 200
    _assert_security_headers(r)
    assert "is now confirmed as fraud" in r.text
    with transaction(committed) as session:
        ticket = session.get_one(Ticket, ticket_id)
        assert ticket.status == "confirmed_fraud"
        token = session.scalars(select(VerificationToken)).one()
        assert (token.verifier, token.channel) == ("Ann Lee", "Phone call to the number on file")
        assert token.note == "Confirmed by Mark on the known number."
    again = client.post(f"/verify/{raw}", data=_form(raw, outcome="legitimate"))
    assert again.status_code == 410
    with transaction(committed) as session:
        assert session.get_one(Ticket, ticket_id).status == "confirmed_fraud"


def test_posting_to_a_closed_ticket_explains_that_the_status_was_kept(
    client: TestClient, committed: sessionmaker[Session], link: Callable[..., tuple[str, Any]]
) -> None:
    raw, ticket_id = link(status="expired", closed_at=utcnow(), outcome="expired")
    assert "already expired" in client.get(f"/verify/{raw}").text
    r = client.post(f"/verify/{raw}", data=_form(raw))
    assert r.status_code == 200
    assert "did not change" in r.text
    with transaction(committed) as session:
        assert session.get_one(Ticket, ticket_id).status == "expired"


def test_unknown_used_and_expired_links_get_identical_responses(
    client: TestClient, committed: sessionmaker[Session], link: Callable[..., tuple[str, Any]]
) -> None:
    used, _ = link()
    assert client.post(f"/verify/{used}", data=_form(used)).status_code == 200
    expired, _ = link()
    with transaction(committed) as session:
        session.execute(
            update(VerificationToken)
            .where(VerificationToken.used_at.is_(None))
            .values(expires_at=utcnow() - timedelta(hours=1))
        )
    unknown = "Zm9yZ2VkLXRva2VuLXRoYXQtd2FzLW5ldmVyLW1pbnRlZA"

    def answers(token: str) -> list[tuple[int, bytes, dict[str, str]]]:
        out = []
        for r in (
            client.get(f"/verify/{token}"),
            client.post(f"/verify/{token}", data=_form(token)),
        ):
            headers = {k: v for k, v in r.headers.items() if k not in ("date", "server")}
            out.append((r.status_code, r.content, headers))
        return out

    reference = answers(unknown)
    assert reference[0][0] == 410
    assert reference[1][0] == 410
    assert answers(used) == reference
    assert answers(expired) == reference
    assert b"not valid" in reference[0][1]
    assert unknown.encode() not in reference[0][1]
    for _, _, headers in reference:
        assert headers["content-security-policy"] == CSP
        assert headers["cache-control"] == "no-store"


def test_post_without_the_right_token_check_is_refused_and_changes_nothing(
    client: TestClient, committed: sessionmaker[Session], link: Callable[..., tuple[str, Any]]
) -> None:
    raw, _ = link()
    before = _state(committed)
    missing = _form(raw)
    del missing["token_check"]
    for data in (missing, _form(raw, token_check="0" * 16)):
        r = client.post(f"/verify/{raw}", data=data)
        assert r.status_code == 403
        _assert_security_headers(r)
    assert _state(committed) == before


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://countersign.example"},
        {"Referer": "https://evil.example/page"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "null"},
    ],
)
def test_post_from_another_site_is_refused(
    client: TestClient,
    committed: sessionmaker[Session],
    link: Callable[..., tuple[str, Any]],
    headers: dict[str, str],
) -> None:
    raw, _ = link()
    before = _state(committed)
    r = client.post(f"/verify/{raw}", data=_form(raw), headers=headers)
    assert r.status_code == 403
    assert _state(committed) == before


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": PUBLIC_URL},
        {"Origin": "https://COUNTERSIGN.example:443"},
        {"Referer": f"{PUBLIC_URL}/verify/whatever"},
        # What a browser sends from our own page under Referrer-Policy: no-referrer.
        {"Origin": "null", "Sec-Fetch-Site": "same-origin"},
    ],
)
def test_post_from_our_own_page_is_accepted(
    client: TestClient, link: Callable[..., tuple[str, Any]], headers: dict[str, str]
) -> None:
    raw, _ = link()
    r = client.post(f"/verify/{raw}", data=_form(raw), headers=headers)
    assert r.status_code == 200, r.text


def test_oversized_or_non_form_posts_are_refused_without_using_the_link(
    client: TestClient, committed: sessionmaker[Session], link: Callable[..., tuple[str, Any]]
) -> None:
    raw, _ = link()
    before = _state(committed)
    big = client.post(f"/verify/{raw}", data=_form(raw, note="n" * 20_000))
    assert big.status_code == 413
    as_json = client.post(f"/verify/{raw}", json=_form(raw))
    assert as_json.status_code == 415
    multipart = client.post(
        f"/verify/{raw}", data=_form(raw), files={"f": ("a.txt", b"x", "text/plain")}
    )
    assert multipart.status_code == 415
    assert _state(committed) == before
    assert client.get(f"/verify/{raw}").status_code == 200


def test_form_errors_redisplay_the_form_with_the_input_escaped_and_the_link_unused(
    client: TestClient, committed: sessionmaker[Session], link: Callable[..., tuple[str, Any]]
) -> None:
    raw, _ = link()
    before = _state(committed)
    r = client.post(
        f"/verify/{raw}",
        data=_form(raw, outcome="", verifier="", note="<i>called twice</i>"),
    )
    assert r.status_code == 422
    _assert_security_headers(r)
    assert "Choose one of the outcomes." in r.text
    assert "Enter your name." in r.text
    assert "&lt;i&gt;called twice&lt;/i&gt;" in r.text
    assert "<i>called twice</i>" not in r.text
    assert _state(committed) == before
