"""The ticket page: the email shown safely, evidence marked, provenance, thread, audit."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core.models import AuditLog
from app.directory.models import Contact, Vendor
from app.mail.artifacts import mask_numbers
from tests.dashboard.helpers import signed_headers

Post = Callable[[dict[str, Any]], dict[str, Any]]
SCRIPT = "<script>alert('pwned')</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"


def test_xss_in_subject_body_display_name_and_attachment_name_is_escaped(
    signed_in: TestClient, post_email: Post, bank_change_json: Callable[..., dict[str, Any]]
) -> None:
    data = bank_change_json(
        subject=f"New bank details {SCRIPT}",
        text=bank_change_json()["text"] + f"\n\n{SCRIPT}<img src=x onerror=alert(1)>",
        attachments=[{"filename": f"{SCRIPT}.pdf", "content_type": "application/pdf"}],
    )
    data["from"] = f'"{SCRIPT}" <mark.ellis@acme-supplies.com>'
    number = post_email(data)["ticket"]["number"]
    html = signed_in.get(f"/dashboard/tickets/{number}").text

    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert f'<dd class="subject">New bank details {ESCAPED_SCRIPT}</dd>' in html
    assert f'<span class="display-name">{ESCAPED_SCRIPT}</span>' in html
    assert f'<span class="filename">{ESCAPED_SCRIPT}.pdf</span>' in html
    body = html.split('id="message-body-1">')[1].split("</pre>")[0]
    assert f"{ESCAPED_SCRIPT}&lt;img src=x onerror=alert(1)&gt;" in body
    # The queue shows the subject escaped as well.
    assert ESCAPED_SCRIPT in signed_in.get("/dashboard").text
    assert "<script>alert" not in signed_in.get("/dashboard").text


def test_evidence_sentences_are_marked_in_the_body_and_account_numbers_stay_masked(
    signed_in: TestClient, ticket_number: int, bank_change_ask: str
) -> None:
    html = signed_in.get(f"/dashboard/tickets/{ticket_number}").text
    body = html.split('id="message-body-1">')[1].split("</pre>")[0]
    assert f"<mark>{mask_numbers(bank_change_ask)}</mark>" in body
    assert "[number ending 5555]" in body
    # The IBAN appears nowhere in full: not in the body, the evidence or the supplied details.
    assert "GB33 BUKB" not in html
    assert "IBAN (GB) ending 5555" in html.split('id="supplied"')[1]


def test_links_in_the_email_are_defanged_text_never_anchors(
    signed_in: TestClient, post_email: Post, bank_change_json: Callable[..., dict[str, Any]]
) -> None:
    text = bank_change_json()["text"] + "\nConfirm at https://pay.evil-bank.example/confirm?x=1"
    number = post_email(bank_change_json(text=text))["ticket"]["number"]
    html = signed_in.get(f"/dashboard/tickets/{number}").text
    assert "hxxps://pay[.]evil-bank[.]example/confirm?x=1" in html
    assert "https://pay.evil-bank.example" not in html
    assert 'href="http' not in html


def test_signals_are_explained_in_plain_words(
    signed_in: TestClient, post_email: Post, bank_change_json: Callable[..., dict[str, Any]]
) -> None:
    data = bank_change_json(reply_to="payments@acme-supplies-billing.com")
    number = post_email(data)["ticket"]["number"]
    html = signed_in.get(f"/dashboard/tickets/{number}").text
    signal = html.split('data-signal="reply_to_mismatch"')[1].split("</li>")[0]
    assert "<strong>Replies go somewhere else</strong>" in signal
    assert "replies go to acme-supplies-billing.com" in signal
    assert '<span class="tag warn">not the sender</span>' in html


def test_known_good_contacts_show_provenance_and_a_warning_when_added_after_the_email(
    signed_in: TestClient,
    post_email: Post,
    bank_change_json: Callable[..., dict[str, Any]],
    committed: sessionmaker[Session],
) -> None:
    with committed() as s, s.begin():
        vendor = Vendor(name="Acme Supplies", domains=["acme-supplies.com"], added_by="admin")
        s.add(vendor)
        s.flush()
        s.add(
            Contact(
                vendor_id=vendor.id,
                name="Acme accounts desk",
                phone="+44 20 7946 0000",
                added_by="admin",
                created_at=datetime(2025, 3, 2, 9, 0, tzinfo=UTC),
            )
        )
        s.add(
            Contact(
                vendor_id=vendor.id,
                name="New Acme contact",
                phone="+44 20 7946 0999",
                added_by="mallory",
                created_at=datetime.now(UTC) + timedelta(days=1),
            )
        )
    number = post_email(bank_change_json())["ticket"]["number"]
    contacts = signed_in.get(f"/dashboard/tickets/{number}").text.split('id="contacts"')[1]
    old, new = contacts.split('<li class="contact')[1:3]
    assert "Acme accounts desk" in old
    assert "On file since 2025-03-02, added by admin" in old
    assert "Added after this email arrived" not in old
    assert "New Acme contact" in new
    assert "added by mallory" in new
    assert "Added after this email arrived" in new


def test_supplied_details_are_marked_do_not_use(signed_in: TestClient, ticket_number: int) -> None:
    html = signed_in.get(f"/dashboard/tickets/{ticket_number}").text
    supplied = html.split('id="supplied"')[1].split("</section>")[0]
    assert "Supplied by the email: do not use" in supplied
    assert "IBAN (GB) ending 5555" in supplied


def test_a_second_email_about_the_same_request_shows_in_the_thread(
    signed_in: TestClient,
    client: TestClient,
    ticket_number: int,
    bank_change_json: Callable[..., dict[str, Any]],
) -> None:
    follow_up = bank_change_json(
        message_id="<bank-change-2@acme-supplies.com>",
        subject="Re: New bank details for your payments",
        headers={"In-Reply-To": "<bank-change@acme-supplies.com>"},
    )
    body = json.dumps(follow_up).encode()
    verdict = client.post("/v1/messages", content=body, headers=signed_headers(body)).json()
    assert verdict["ticket"]["number"] == ticket_number
    html = signed_in.get(f"/dashboard/tickets/{ticket_number}").text
    assert 'id="message-2"' in html
    assert "Another email about this request (2 of 2)" in html
    second = html.split('id="message-2"')[1].replace("<mark>", "").replace("</mark>", "")
    assert '<dd class="subject">Re: New bank details for your payments</dd>' in second


def test_viewing_a_ticket_is_written_to_the_audit_log(
    signed_in: TestClient,
    ticket_number: int,
    ticket_state: Callable[[int], dict[str, Any]],
    committed: sessionmaker[Session],
) -> None:
    signed_in.get(f"/dashboard/tickets/{ticket_number}")
    with committed() as s:
        rows = list(s.scalars(select(AuditLog).where(AuditLog.action == "ticket.view")))
    assert [(r.actor, r.target) for r in rows] == [
        ("user:alice", str(ticket_state(ticket_number)["id"]))
    ]


def test_unknown_or_malformed_ticket_numbers_are_404_pages(signed_in: TestClient) -> None:
    for number in ("999999", "99999999999999999999999", "abc", "1001%20OR%201=1"):
        r = signed_in.get(f"/dashboard/tickets/{number}")
        assert r.status_code == 404, number
        assert '<h1 id="error-title">Not found</h1>' in r.text


def test_a_tampered_timeline_is_reported_as_a_broken_chain(
    signed_in: TestClient, ticket_number: int, committed: sessionmaker[Session]
) -> None:
    from app.tickets.models import TicketEvent

    assert 'class="chain chain-ok"' in signed_in.get(f"/dashboard/tickets/{ticket_number}").text
    with committed() as s, s.begin():
        event = s.scalars(select(TicketEvent).order_by(TicketEvent.id)).first()
        assert event is not None
        event.reason = "nothing to see here"
    html = signed_in.get(f"/dashboard/tickets/{ticket_number}").text
    assert "Chain broken at event 1" in html
