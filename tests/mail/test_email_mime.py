"""Raw RFC 5322 / MIME messages into a normalised Email: charsets, structure, limits."""

from __future__ import annotations

import pytest

from app.core.errors import InvalidInput, PayloadTooLarge
from app.mail.parse import MAX_BODY_CHARS, MAX_DEPTH, MAX_RAW_BYTES, email_from_mime


def mime(text: str, body: bytes = b"") -> bytes:
    """A raw message from readable header/body text (LF becomes CRLF) plus optional raw bytes."""
    return text.replace("\n", "\r\n").encode("utf-8") + body


def test_encoded_subject_and_sender_name_are_decoded():
    email = email_from_mime(
        mime(
            "From: =?utf-8?b?w4lsw6huZQ==?= Dupont <elene@example.fr>\n"
            "Subject: =?UTF-8?Q?Re=3A_Facture_n=C2=B0_443?=\n"
            "Message-ID: <abc@example.fr>\n"
            "Date: Mon, 3 Jun 2024 10:02:00 +0200\n\n"
            "Bonjour\n"
        )
    )

    assert email.sender is not None
    assert email.sender.name == "Élène Dupont"
    assert email.sender.address == "elene@example.fr"
    assert email.subject == "Re: Facture n° 443"
    assert email.message_id == "<abc@example.fr>"
    assert email.date is not None
    assert email.date.year == 2024
    assert email.raw_sha256 is not None
    assert len(email.raw_sha256) == 64


def test_unknown_body_charset_is_decoded_leniently_and_recorded_as_a_defect():
    email = email_from_mime(
        mime(
            "From: a@example.com\nContent-Type: text/plain; charset=x-unknown\n\n",
            b"Pay the invoice today, it is urgent \xe9t\xe9\r\n",
        )
    )

    assert email.newest == "Pay the invoice today, it is urgent été"
    assert "could not decode as 'x-unknown'" in email.defects


def test_latin1_bytes_declared_utf8_do_not_crash_and_read_as_latin1():
    email = email_from_mime(
        mime(
            "From: a@example.com\nContent-Type: text/plain; charset=utf-8\n\n",
            b"Ch\xe8re coll\xe8gue, merci de r\xe9gler la facture.\r\n",
        )
    )

    assert email.newest == "Chère collègue, merci de régler la facture."
    assert email.defects


def test_raw_8bit_latin1_sender_name_and_subject_are_readable():
    email = email_from_mime(
        b"From: J\xe9r\xf4me Dubois <jd@example.fr>\r\nSubject: Caf\xe9\r\n\r\nhi\r\n"
    )

    assert email.sender is not None
    assert email.sender.name == "Jérôme Dubois"
    assert email.subject == "Café"


def test_attachment_with_raw_8bit_filename_is_listed_not_a_crash():
    raw = (
        b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n"
        b"--X\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--X\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="fa\xe7ture.pdf"\r\n\r\nxx\r\n--X--\r\n'
    )

    email = email_from_mime(raw)

    assert email.newest == "see attached"
    assert [a.content_type for a in email.attachments] == ["application/pdf"]
    assert email.attachments[0].filename.endswith("ture.pdf")


def test_multipart_missing_its_closing_boundary_keeps_all_text_parts():
    email = email_from_mime(
        mime(
            "From: a@example.com\nContent-Type: multipart/mixed; boundary=XX\n\n"
            "--XX\nContent-Type: text/plain\n\nfirst part\n"
            "--XX\nContent-Type: text/plain\n\nsecond part, never closed\n"
        )
    )

    assert "first part" in email.body
    assert "second part, never closed" in email.body
    assert "CloseBoundaryNotFoundDefect" in email.defects


def test_multipart_without_boundary_parameter_still_returns_an_email():
    email = email_from_mime(
        mime("From: a@example.com\nSubject: s\nContent-Type: multipart/mixed\n\nno boundary here\n")
    )

    assert email.sender is not None
    assert email.sender.address == "a@example.com"
    assert "NoBoundaryInMultipartDefect" in email.defects


def _nested_multipart(levels: int) -> bytes:
    head = "From: a@example.com\nSubject: deep\nContent-Type: multipart/mixed; boundary=b0\n\n"
    opening = "".join(
        f"--b{i}\nContent-Type: multipart/mixed; boundary=b{i + 1}\n\n" for i in range(levels)
    )
    inner = f"--b{levels}\nContent-Type: text/plain\n\ninnermost text\n--b{levels}--\n"
    closing = "".join(f"--b{i}--\n" for i in reversed(range(levels)))
    return mime(head + opening + inner + closing)


def test_two_hundred_levels_of_nested_multipart_parse_with_bounded_depth():
    email = email_from_mime(_nested_multipart(200))

    assert email.sender is not None
    assert email.sender.address == "a@example.com"
    assert email.subject == "deep"
    # The text sits far below MAX_DEPTH: the walk stops descending instead of following it.
    assert MAX_DEPTH < 200
    assert "innermost text" not in email.body


def test_shallow_nested_multipart_text_is_found():
    email = email_from_mime(_nested_multipart(MAX_DEPTH - 2))

    assert email.newest == "innermost text"


def test_multipart_nested_past_the_parser_stack_is_refused_as_invalid_input():
    with pytest.raises(InvalidInput, match="unparseable MIME message"):
        email_from_mime(_nested_multipart(5000))


def test_attached_messages_nested_two_hundred_deep_parse():
    inner = "From: x@example.com\nSubject: s\n\ninnermost\n"
    for _ in range(200):
        inner = "From: x@example.com\nContent-Type: message/rfc822\n\n" + inner

    email = email_from_mime(mime(inner))

    assert email.sender is not None
    assert email.sender.address == "x@example.com"
    assert "innermost" not in email.body


def test_five_megabyte_single_line_body_is_parsed_and_capped():
    email = email_from_mime(
        mime("From: a@example.com\nSubject: big\n\n", b"A" * 5_000_000 + b"\r\n")
    )

    assert len(email.body) == MAX_BODY_CHARS
    assert email.newest.startswith("AAAA")
    assert email.quoted == ""


def test_message_larger_than_the_raw_limit_is_payload_too_large():
    with pytest.raises(PayloadTooLarge):
        email_from_mime(mime("From: a@example.com\n\n", b"x" * MAX_RAW_BYTES))


@pytest.mark.parametrize(
    "raw", [b"", b"   \r\n  ", b"\x00\x01\x02", b"just some words, no headers"]
)
def test_empty_or_headerless_input_is_invalid_input(raw):
    with pytest.raises(InvalidInput):
        email_from_mime(raw)


def test_message_without_from_is_parsed_with_a_defect():
    email = email_from_mime(mime("Subject: who sent this\n\nbody text\n"))

    assert email.sender is None
    assert "no From header" in email.defects
    assert email.message_id.startswith("<derived.")


def test_html_only_mail_uses_visible_text_and_drops_hidden_spans():
    email = email_from_mime(
        mime(
            "From: it@example.com\nContent-Type: text/html; charset=utf-8\n\n"
            "<html><body><p>Your mailbox is full.</p>"
            '<span style="display:none">quarterly newsletter recipes</span>'
            '<p><a href="https://login.example-mail.co.uk/verify">Verify now</a></p>'
            "</body></html>\n"
        )
    )

    assert email.html_only is True
    assert email.newest == "Your mailbox is full.\n\nVerify now"
    assert "newsletter" not in email.body
    assert email.html_links == [("Verify now", "https://login.example-mail.co.uk/verify")]


def test_multipart_alternative_prefers_the_plain_part():
    email = email_from_mime(
        mime(
            "From: a@example.com\nContent-Type: multipart/alternative; boundary=alt\n\n"
            "--alt\nContent-Type: text/plain; charset=utf-8\n\nplain version\n"
            "--alt\nContent-Type: text/html; charset=utf-8\n\n<p>html version</p>\n--alt--\n"
        )
    )

    assert email.html_only is False
    assert email.body == "plain version"


ATTACHMENTS = """\
From: "Doe, Jane" <jane@vendor.example>
To: Finance <ap@corp.example>
Subject: Invoice
Authentication-Results: mx.corp.example; spf=softfail smtp.mailfrom=vendor.example; dkim=none;
 dmarc=fail header.from=vendor.example
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain; charset=utf-8

Please see attached.
--outer
Content-Type: application/pdf; name="=?utf-8?q?facture_n=C2=B0443.pdf?="
Content-Disposition: attachment; filename="=?utf-8?q?facture_n=C2=B0443.pdf?="
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--outer
Content-Type: image/png
Content-Disposition: inline; filename*=UTF-8''logo%C3%A9.png

iVBORw0KGgo=
--outer
Content-Type: text/csv; name="payroll.csv"
Content-Disposition: attachment

name,ssn
--outer--
"""


def test_attachment_metadata_keeps_decoded_filenames_and_content_types():
    email = email_from_mime(mime(ATTACHMENTS))

    assert [(a.filename, a.content_type) for a in email.attachments] == [
        ("facture n°443.pdf", "application/pdf"),
        ("logoé.png", "image/png"),
        ("payroll.csv", "text/csv"),
    ]
    assert all(a.size for a in email.attachments)
    # An attached text file is metadata, not part of what the sender wrote.
    assert "ssn" not in email.body
    assert email.newest == "Please see attached."


def test_authentication_results_header_is_kept_and_read():
    email = email_from_mime(mime(ATTACHMENTS))

    assert (email.auth.spf, email.auth.dkim, email.auth.dmarc) == ("softfail", "none", "fail")
    assert email.auth.failures() == ["spf", "dmarc"]
    assert "authentication-results" in email.headers


def test_display_name_with_unquoted_comma_in_from_header():
    email = email_from_mime(mime("From: Smith, CPA <smith@cpa.example>\n\nhello\n"))

    assert email.sender is not None
    assert (email.sender.name, email.sender.address) == ("Smith, CPA", "smith@cpa.example")


FORWARD = """\
From: Employee <me@corp.example>
To: security@corp.example
Subject: Fwd: Wire now
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

Is this real? It does not look like our CEO.
--b
Content-Type: message/rfc822

From: CEO <ceo@evil.example>
Subject: Wire now

Wire 50,000 USD to the account below today.
--b--
"""


def test_attached_rfc822_forward_goes_to_quoted_and_the_reporter_text_is_newest():
    email = email_from_mime(mime(FORWARD))

    assert email.newest == "Is this real? It does not look like our CEO."
    assert "Wire 50,000 USD to the account below today." in email.quoted
    assert "Wire" not in email.newest
    assert email.sender is not None
    assert email.sender.address == "me@corp.example"


def test_bare_attached_forward_becomes_the_newest_message():
    email = email_from_mime(
        mime(
            "From: me@corp.example\nContent-Type: message/rfc822\n\n"
            "From: CEO <ceo@evil.example>\nSubject: Gift cards\n\n"
            "Buy six gift cards and send the codes.\n"
        )
    )

    assert "Buy six gift cards and send the codes." in email.newest
    assert email.quoted == ""


def test_base64_and_quoted_printable_bodies_are_decoded():
    b64 = email_from_mime(
        mime(
            "From: a@example.com\nContent-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: base64\n\nTWVyY2kgZMOpasOgIQ==\n"
        )
    )
    qp = email_from_mime(
        mime(
            "From: a@example.com\nContent-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: quoted-printable\n\n"
            "Virement de 5=C2=A0000 =E2=82=AC=\n aujourd'hui\n"
        )
    )

    assert b64.newest == "Merci déjà!"
    assert qp.newest == "Virement de 5\u00a0000 € aujourd'hui"


def test_broken_transfer_encodings_do_not_crash():
    for cte, payload in (
        ("base64", "!!!!====\n"),
        ("quoted-printable", "=ZZ=\n"),
        ("x-uuencode", "xx\n"),
    ):
        email = email_from_mime(
            mime(f"From: a@example.com\nContent-Transfer-Encoding: {cte}\n\n{payload}")
        )
        assert email.sender is not None
