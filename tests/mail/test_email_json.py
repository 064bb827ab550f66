"""Email JSON (the webhook and CLI contract) into a normalised Email, and refusal of bad input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.core.errors import InvalidInput
from app.mail.parse import email_from_json
from app.mail.schemas import MAX_HEADER_VALUE, MAX_RECIPIENTS, MAX_TEXT_CHARS


def test_full_email_json_is_normalised_into_addresses_date_auth_and_attachments():
    email = email_from_json(
        {
            "message_id": "<m1@example.com>",
            "from": "Jane Doe <Jane.Doe@Example.COM>",
            "reply_to": "billing@other-domain.example",
            "to": ["ap@corp.example", "Bob <bob@corp.example>"],
            "cc": ["x@corp.example, y@corp.example"],
            "subject": "Invoice 443",
            "date": "2024-06-03T10:00:00Z",
            "headers": {
                "Authentication-Results": "mx.corp.example; spf=pass; dkim=pass; dmarc=fail"
            },
            "text": "Please pay invoice 443.",
            "attachments": [
                {"filename": "inv.pdf", "content_type": "Application/PDF", "size": 1200}
            ],
            "some_future_field": {"ignored": True},
        }
    )

    assert email.message_id == "<m1@example.com>"
    assert email.sender is not None
    assert (email.sender.name, email.sender.address, email.sender.domain) == (
        "Jane Doe",
        "jane.doe@example.com",
        "example.com",
    )
    assert email.reply_to is not None
    assert email.reply_to.domain == "other-domain.example"
    assert [a.address for a in email.to] == ["ap@corp.example", "bob@corp.example"]
    assert [a.address for a in email.cc] == ["x@corp.example", "y@corp.example"]
    assert email.date == datetime(2024, 6, 3, 10, 0, tzinfo=UTC)
    assert email.headers == {
        "authentication-results": "mx.corp.example; spf=pass; dkim=pass; dmarc=fail"
    }
    assert email.auth.failures() == ["dmarc"]
    assert [(a.filename, a.content_type, a.size) for a in email.attachments] == [
        ("inv.pdf", "application/pdf", 1200)
    ]
    assert email.newest == "Please pay invoice 443."


def test_email_json_without_message_id_gets_a_stable_derived_id():
    payload = {"from": "a@example.com", "subject": "hello", "text": "body"}

    first = email_from_json(payload)
    second = email_from_json(dict(payload))
    other = email_from_json({**payload, "text": "another body"})

    assert first.message_id == second.message_id
    assert first.message_id.startswith("<derived.")
    assert other.message_id != first.message_id


def test_rfc_5322_and_unreadable_dates_in_json():
    rfc = email_from_json({"from": "a@example.com", "date": "Mon, 3 Jun 2024 10:02:00 +0200"})
    naive = email_from_json({"from": "a@example.com", "date": "2024-06-03 10:02:00"})
    junk = email_from_json({"from": "a@example.com", "date": "next Tuesday-ish"})

    assert rfc.date is not None
    assert rfc.date.utcoffset() is not None
    assert rfc.date.astimezone(UTC).hour == 8
    assert naive.date == datetime(2024, 6, 3, 10, 2, tzinfo=UTC)
    assert junk.date is None


def test_html_only_json_uses_visible_text_and_keeps_links():
    email = email_from_json(
        {
            "from": "a@example.com",
            "html": '<p>Update your bank details</p><span style="display:none">lunch menu</span>'
            '<a href="https://pay.example.co.uk/x">portal</a>',
        }
    )

    assert email.html_only is True
    assert "Update your bank details" in email.newest
    assert "lunch menu" not in email.body
    assert email.html_links == [("portal", "https://pay.example.co.uk/x")]


def test_plain_text_wins_over_html_when_both_are_sent():
    email = email_from_json(
        {"from": "a@example.com", "text": "plain words", "html": "<p>html words</p>"}
    )

    assert email.html_only is False
    assert email.body == "plain words"


def test_control_characters_in_json_text_are_removed():
    email = email_from_json({"from": "a@example.com", "text": "pay\x00 now\x1b please\r\nthanks"})

    assert email.body == "pay now please\nthanks"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "from"),
        ({"subject": "no sender"}, "from"),
        ({"from": None}, "from"),
        ({"from": 42}, "from"),
        ({"from": ""}, "from"),
        ({"from": "Just A Name"}, "from"),
        ({"from": "x" * 5000 + "@example.com"}, "from"),
        ({"from": "a@example.com", "to": "b@example.com"}, "to"),
        ({"from": "a@example.com", "to": [1]}, "to.0"),
        ({"from": "a@example.com", "cc": ["c@example.com"] * (MAX_RECIPIENTS + 1)}, "cc"),
        ({"from": "a@example.com", "subject": ["x"]}, "subject"),
        ({"from": "a@example.com", "subject": "x" * (MAX_HEADER_VALUE + 1)}, "subject"),
        ({"from": "a@example.com", "headers": ["x"]}, "headers"),
        ({"from": "a@example.com", "headers": {"X-Count": 3}}, "headers.X-Count"),
        (
            {"from": "a@example.com", "headers": {"X-Big": "v" * (MAX_HEADER_VALUE + 1)}},
            "headers.X-Big",
        ),
        ({"from": "a@example.com", "text": 5}, "text"),
        ({"from": "a@example.com", "text": "x" * (MAX_TEXT_CHARS + 1)}, "text"),
        ({"from": "a@example.com", "html": {"b": "x"}}, "html"),
        ({"from": "a@example.com", "attachments": "inv.pdf"}, "attachments"),
        ({"from": "a@example.com", "attachments": [{"size": -1}]}, "attachments.0.size"),
        ({"from": "a@example.com", "direction": "sideways"}, "direction"),
    ],
)
def test_malformed_email_json_raises_invalid_input_naming_the_field(payload, field):
    with pytest.raises(InvalidInput) as caught:
        email_from_json(payload)

    assert caught.value.status_code == 422
    assert caught.value.detail.startswith(f"{field}:"), caught.value.detail


@pytest.mark.parametrize("payload", [None, [], "a string", 3, [{"from": "a@example.com"}]])
def test_email_json_that_is_not_an_object_is_refused(payload):
    with pytest.raises(InvalidInput) as caught:
        email_from_json(payload)

    assert caught.value.detail.startswith("body:")


def test_email_json_text_at_the_size_limit_is_accepted_but_body_is_capped():
    email = email_from_json({"from": "a@example.com", "text": "y" * MAX_TEXT_CHARS})

    assert 0 < len(email.body) < MAX_TEXT_CHARS
    assert email.newest.startswith("yyyy")
