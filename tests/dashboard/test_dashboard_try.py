"""Try an email: a dry run that shows the verdict and stores nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.dashboard.trial import MAX_SAMPLE_BYTES
from app.ingest.models import Message
from app.mail.artifacts import mask_numbers
from app.tickets.models import Ticket
from tests.dashboard.helpers import csrf_of


def _try(client: TestClient, *, email: str = "", eml: bytes | None = None) -> Any:
    token = csrf_of(client.get("/dashboard/try").text)
    files = {"eml": ("sample.eml", eml, "message/rfc822")} if eml is not None else None
    return client.post("/dashboard/try", data={"csrf_token": token, "email": email}, files=files)


def _stored(committed: sessionmaker[Session]) -> tuple[int, int]:
    with committed() as s:
        messages = s.scalar(select(func.count()).select_from(Message)) or 0
        tickets = s.scalar(select(func.count()).select_from(Ticket)) or 0
    return int(messages), int(tickets)


def test_pasted_email_json_shows_the_verdict_and_stores_nothing(
    signed_in: TestClient,
    committed: sessionmaker[Session],
    bank_change_json: Callable[..., dict[str, Any]],
    bank_change_ask: str,
) -> None:
    r = _try(signed_in, email=json.dumps(bank_change_json()))
    assert r.status_code == 200
    result = r.text.split('id="try-result"')[1]
    assert '<dd id="verdict-needs-verification">yes</dd>' in result
    assert '<li data-intent="payment_change"><strong>Payment change</strong>' in result
    assert 'id="verdict-banner">This email asks to change payment details.' in result
    assert f"<mark>{mask_numbers(bank_change_ask)}</mark>" in result
    assert "Supplied by the email: do not use" in result
    assert "GB33 BUKB" not in result  # the verdict masks it (the textarea keeps what was pasted)
    assert _stored(committed) == (0, 0)


def test_uploaded_eml_file_shows_the_verdict(
    signed_in: TestClient, eml_bytes: Callable[..., bytes]
) -> None:
    raw = eml_bytes(
        sender="Dana Cole <dana.cole@gmail.com>",
        subject="Quick favour",
        text="I need you to buy five 100 dollar Apple gift cards today and send me the codes.",
        message_id="<try-1@gmail.com>",
    )
    r = _try(signed_in, eml=raw)
    assert r.status_code == 200
    assert '<li data-intent="gift_card"><strong>Gift cards</strong>' in r.text


def test_an_everyday_email_is_delivered_with_no_request_found(
    signed_in: TestClient, lunch_json: Callable[..., dict[str, Any]]
) -> None:
    r = _try(signed_in, email=json.dumps(lunch_json()))
    assert r.status_code == 200
    assert "Verdict: Deliver</h2>" in r.text
    assert "No risky request." in r.text


def test_malformed_json_is_explained_on_the_form_and_kept_for_editing(
    signed_in: TestClient,
) -> None:
    r = _try(signed_in, email='{"from": "broken@example.com", ')
    assert r.status_code == 422
    assert 'id="try-error">this is not valid JSON' in r.text
    assert "{&#34;from&#34;: &#34;broken@example.com&#34;, </textarea>" in r.text


def test_an_upload_over_the_limit_is_refused(signed_in: TestClient) -> None:
    r = _try(signed_in, eml=b"Subject: big\r\n\r\n" + b"x" * MAX_SAMPLE_BYTES)
    assert r.status_code == 422
    assert "limited to 1,000,000 bytes" in r.text


def test_script_in_a_tried_email_is_escaped(signed_in: TestClient) -> None:
    sample = {
        "from": '"<script>alert(1)</script>" <x@evil.example>',
        "subject": "<img src=x onerror=alert(1)>",
        "text": "Please update our bank details to the account below. <script>alert(2)</script>",
    }
    r = _try(signed_in, email=json.dumps(sample))
    assert r.status_code == 200
    result = r.text.split('id="try-result"')[1]
    assert "<script>alert" not in result
    assert "<img src=x" not in result
    assert "&lt;img src=x onerror=alert(1)&gt;" in result
