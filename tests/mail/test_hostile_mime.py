"""Property tests: real messages, mutated the way hostile or broken senders do, parse cleanly.

test_properties.py throws arbitrary bytes and MIME fragments at the parser; this file starts from
well-formed messages (a few written here, plus CPython's email test samples when the stdlib test
package is installed) and mutates them: truncation, flipped bytes, wrong charset labels, deep
multipart nesting, huge lines, bogus base64 and quoted-printable, injected header breaks. Whatever
comes in, email_from_mime returns an Email or refuses with InvalidInput (PayloadTooLarge above the
raw size limit), and the Email never carries a line break in a header-derived field.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.core.errors import InvalidInput, PayloadTooLarge
from app.mail.parse import MAX_BODY_CHARS, email_from_mime
from app.mail.schemas import MAX_ATTACHMENTS, MAX_RECIPIENTS, Email

# A guard against hangs and pathological blow-ups, not a performance target (benchmarks live in
# scripts/): every example here parses in milliseconds.
HANG_SECONDS = 10.0
# Derandomized in CI (the same examples every run); explored afresh on developers' machines.
PROPERTY = settings(
    max_examples=250,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PLAIN = (
    b"From: Mark Ellis <mark.ellis@acme-supplies.example>\r\n"
    b"To: ap@northgate.example, Tom <tom@northgate.example>\r\n"
    b"Reply-To: billing@acme-supp1ies.example\r\n"
    b"Subject: =?utf-8?q?New_bank_details_=E2=80=93_urgent?=\r\n"
    b"Message-ID: <plain-1@acme-supplies.example>\r\n"
    b"Date: Mon, 02 Feb 2026 09:30:00 +0000\r\n"
    b"Authentication-Results: mx.northgate.example; spf=pass; dkim=fail; dmarc=fail\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Please update our bank details to the account below before Friday=E2=80=99s run.=\r\n"
    b"\r\nIBAN GB33 BUKB 2020 1555 5555 55\r\n\r\n"
    b"On Fri, Tom wrote:\r\n> Thanks for the invoice.\r\n"
)
ALTERNATIVE = (
    b"From: =?iso-8859-1?q?J=E9r=F4me?= <j@example.fr>\r\n"
    b"To: finance@example.com\r\n"
    b"Subject: Facture\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
    b"--outer\r\n"
    b'Content-Type: multipart/alternative; boundary="alt"\r\n'
    b"\r\n"
    b"--alt\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"TWVyY2kgZGUgcGF5ZXIgbGEgZmFjdHVyZSBjaS1qb2ludGUu\r\n"
    b"--alt\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>Merci de payer <a href='https://pay.example.net/x'>la facture</a>.</p>"
    b"<div style='display:none'>hidden padding</div>\r\n"
    b"--alt--\r\n"
    b"--outer\r\n"
    b'Content-Type: application/pdf; name="facture.pdf"\r\n'
    b"Content-Disposition: attachment; filename*=utf-8''factur%C3%A9.pdf\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQKJcfsj6IK\r\n"
    b"--outer\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: ceo@example.com\r\nSubject: fwd\r\n\r\nBuy five gift cards today.\r\n"
    b"--outer--\r\n"
)
HTML_ONLY = (
    b"From: IT Support <support@micros0ft-login.example>\r\n"
    b"To: tom@northgate.example\r\n"
    b"Subject: Mailbox full\r\n"
    b"Content-Type: text/html; charset=windows-1252\r\n"
    b"\r\n"
    b"<html><body><table><tr><td>Your mailbox is full. \x93Verify\x94 your account "
    b"<a href='https://micros0ft-login.example/v'>here</a>.</td></tr></table>"
    b"<span style='font-size:0'>newsletter lunch meeting</span></body></html>\r\n"
)
SEEDS: list[bytes] = [PLAIN, ALTERNATIVE, HTML_ONLY]


def _stdlib_samples() -> list[bytes]:
    """CPython's email test messages (real-world oddities), when the test package is installed."""
    try:
        import test  # the stdlib's own test package
    except ImportError:
        return []
    data = Path(os.path.dirname(test.__file__)) / "test_email" / "data"
    if not data.is_dir():
        return []
    return [p.read_bytes() for p in sorted(data.glob("msg_*.txt"))]


SEEDS += _stdlib_samples()

CHARSETS = [
    b"utf-8",
    b"us-ascii",
    b"x-unknown",
    b"utf-16",
    b"utf-32",
    b"utf-7",
    b"rot13",
    b"base64",
    b"idna",
    b"punycode",
    b"iso-2022-jp",
    b"unicode-escape",
    b"raw_unicode_escape",
    b"cp65001",
    b"",
    b'"',
    b"utf-8''",
    b"\xff\xfe",
    b"a" * 300,
]
TRANSFER_ENCODINGS = [
    b"base64",
    b"quoted-printable",
    b"x-uuencode",
    b"uue",
    b"8bit",
    b"binary",
    b"BASE64 ",
    b"bogus",
]
GARBAGE = [
    b"!!!!====",
    b"=ZZ=\r\n=",
    b"====\r\n====",
    b"YWJj\r\n====YWJj",
    b"begin 644 x\r\nM\r\nend",
    b"=\r\n=\r\n=",
    b"\x00\xff" * 50,
    b"=?utf-8?b?",
]
INJECTIONS = [
    b"Subject: =?utf-8?q?Invoice=0D=0ABcc:_evil@attacker.example?=\r\n",
    b"Subject: line one\rBcc: evil@attacker.example\r\n",
    b"Subject: nul\x00byte\r\n",
    b"From: a@example.com\r\n\tBcc: folded@attacker.example\r\n",
    b"From: =?utf-8?b?QWxpY2UNCkJjYzogZXZpbEBhdHRhY2tlci5leGFtcGxl?= <a@example.com>\r\n",
    b"Reply-To: <x@example.com>\nBcc: y@attacker.example\r\n",
    b"To: " + b"r@example.com, " * 50 + b"\r\n",
    b"Message-ID: <id\r\n with space@example.com>\r\n",
    b"no colon header line\r\n",
    b": empty name\r\n",
    b"X-" + b"h" * 2000 + b": v\r\n",
    b"Content-Type: multipart/mixed; boundary=\r\n",
    b"Content-Type: text/plain; charset*=utf-8''%ZZ\r\n",
    b'Content-Disposition: attachment; filename="a\r\n.exe"\r\n',
]
NEWLINES = re.compile(r"[\r\n\x00]")


def _truncate(draw: st.DrawFn, raw: bytes) -> bytes:
    return raw[: draw(st.integers(0, len(raw)))]


def _flip(draw: st.DrawFn, raw: bytes) -> bytes:
    if not raw:
        return raw
    data = bytearray(raw)
    for _ in range(draw(st.integers(1, 8))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] ^= draw(st.integers(1, 255))
    return bytes(data)


def _charset(draw: st.DrawFn, raw: bytes) -> bytes:
    label = draw(st.sampled_from(CHARSETS))
    return re.sub(rb'charset="?[^";\r\n]*"?', b"charset=" + label, raw, flags=re.IGNORECASE)


def _transfer_encoding(draw: st.DrawFn, raw: bytes) -> bytes:
    cte = draw(st.sampled_from(TRANSFER_ENCODINGS))
    raw = re.sub(rb"(Content-Transfer-Encoding:)[^\r\n]*", rb"\1 " + cte, raw, flags=re.IGNORECASE)
    return _insert(raw, draw(st.integers(0, len(raw))), draw(st.sampled_from(GARBAGE)))


def _insert(raw: bytes, at: int, piece: bytes) -> bytes:
    return raw[:at] + piece + raw[at:]


def _inject_header(draw: st.DrawFn, raw: bytes) -> bytes:
    # At the top, or among the headers of a part.
    end = raw.find(b"\r\n\r\n")
    at = draw(st.sampled_from([0, max(end + 2, 0)]))
    return _insert(raw, at, draw(st.sampled_from(INJECTIONS)))


def _huge_line(draw: st.DrawFn, raw: bytes) -> bytes:
    size = draw(st.sampled_from([1_000, 100_000, 1_200_000]))
    filler = draw(st.sampled_from([b"A", b"=", b"<div>", b"\xe9", b"=?utf-8?q?a?= "]))
    return _insert(raw, draw(st.integers(0, len(raw))), filler * (size // len(filler)))


def _nest(draw: st.DrawFn, raw: bytes) -> bytes:
    levels = draw(st.integers(1, 60))
    if draw(st.booleans()):
        for i in range(levels):
            raw = (
                f"Content-Type: multipart/mixed; boundary=n{i}\r\n\r\n--n{i}\r\n".encode()
                + raw
                + f"\r\n--n{i}--\r\n".encode()
            )
    else:
        for _ in range(levels):
            raw = b"Content-Type: message/rfc822\r\n\r\n" + raw
    return b"From: outer@example.com\r\nMIME-Version: 1.0\r\n" + raw


def _many_parts(draw: st.DrawFn, raw: bytes) -> bytes:
    count = draw(st.sampled_from([2, 600, 3_000]))
    part = b"--m\r\nContent-Type: text/plain\r\n\r\nx\r\n"
    return (
        b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n"
        + part * count
        + b"--m\r\nContent-Type: message/rfc822\r\n\r\n"
        + raw
        + b"\r\n--m--\r\n"
    )


Mutation = Callable[[st.DrawFn, bytes], bytes]
MUTATIONS: list[Mutation] = [
    _truncate,
    _flip,
    _charset,
    _transfer_encoding,
    _inject_header,
    _huge_line,
    _nest,
    _many_parts,
]


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    raw = draw(st.sampled_from(SEEDS))
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=4)):
        raw = mutation(draw, raw)
    return raw


class Hang(BaseException):
    """Raised by the alarm; a BaseException so the parser's `except Exception` cannot eat it."""


@contextmanager
def hang_guard(seconds: float = HANG_SECONDS) -> Iterator[None]:
    def expire(_signum: int, _frame: object) -> None:
        raise Hang(f"parsing took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def parse_or_refuse(raw: bytes) -> Email | None:
    """The Email, or None for a clean refusal; any other exception fails the test."""
    with hang_guard():
        try:
            return email_from_mime(raw)
        except (InvalidInput, PayloadTooLarge):
            return None


def assert_well_formed(email: Email) -> None:
    """What the rest of the system relies on, however broken the input was."""
    single_line = [email.subject, email.message_id, *email.headers.values(), *email.headers]
    for address in [email.sender, email.reply_to, *email.to, *email.cc]:
        if address is not None:
            single_line += [address.name, address.address, address.domain]
    for attachment in email.attachments:
        single_line += [attachment.filename, attachment.content_type]
    for value in single_line:
        assert not NEWLINES.search(value), f"line break or NUL in a header field: {value[:200]!r}"
    assert "\r" not in email.body
    assert "\x00" not in email.body
    assert len(email.body) <= MAX_BODY_CHARS
    assert len(email.message_id) <= 998
    assert len(email.attachments) <= MAX_ATTACHMENTS
    assert len(email.to) <= MAX_RECIPIENTS
    assert "bcc" not in email.headers


@PROPERTY
@given(mutated_messages())
@example(PLAIN)
@example(ALTERNATIVE)
@example(HTML_ONLY)
@example(INJECTIONS[0] + PLAIN)
@example(INJECTIONS[4] + b"\r\nhello")
def test_mutated_real_messages_parse_or_are_refused_cleanly(raw: bytes) -> None:
    email = parse_or_refuse(raw)
    if email is not None:
        assert_well_formed(email)


@PROPERTY
@given(
    seed=st.sampled_from([PLAIN, HTML_ONLY]),
    label=st.sampled_from([c for c in CHARSETS if c not in (b"utf-16", b"utf-32", b"utf-7")]),
)
def test_a_wrong_charset_label_keeps_the_ascii_request_text(seed: bytes, label: bytes) -> None:
    # Whatever the label claims, ASCII words must stay readable: a bogus label must not hide the
    # request from the detector (it falls back to UTF-8, then Windows-1252).
    raw = re.sub(rb"charset=[^\r\n;]*", b"charset=" + label, seed)
    email = parse_or_refuse(raw)
    assert email is not None
    assert_well_formed(email)
    assert "account" in email.body


@PROPERTY
@given(st.sampled_from(INJECTIONS), st.sampled_from([PLAIN, ALTERNATIVE]))
def test_injected_header_breaks_never_reach_a_single_line_field(
    injection: bytes, seed: bytes
) -> None:
    # After the first header line, so the message still starts like one.
    first_line = seed.index(b"\r\n") + 2
    email = parse_or_refuse(_insert(seed, first_line, injection))
    assert email is not None
    assert_well_formed(email)


def test_an_encoded_crlf_in_the_subject_does_not_forge_a_header() -> None:
    email = parse_or_refuse(INJECTIONS[0] + b"From: a@example.com\r\n\r\nhello\r\n")
    assert email is not None
    assert email.subject == "Invoice Bcc: evil@attacker.example"
    assert "bcc" not in email.headers


def test_base64_that_decodes_far_larger_than_the_body_cap_is_capped() -> None:
    # About 8 MB of base64 that decodes to 6 MB of text: the body keeps only MAX_BODY_CHARS.
    import base64

    payload = base64.encodebytes(b"pay now " * 750_000)
    raw = (
        b"From: a@example.com\r\nContent-Type: text/plain\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + payload
    )
    email = parse_or_refuse(raw)
    assert email is not None
    assert len(email.body) == MAX_BODY_CHARS
    assert email.body.startswith("pay now pay now")


@pytest.mark.parametrize(
    "header",
    [
        b"Content-Type: text/plain; charset*0=utf-8; charset*=x",
        b"Content-Type: text/plain; x*0=a; x*=b",
        b"Content-Type: application/pdf; name*0=a; name*=b",
        b"Content-Type: application/pdf; charset*0=a; charset*=b",
        b"Content-Type: application/pdf; charset*=utf-8''x",
        b"Content-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename*0=a; filename*=b",
    ],
)
def test_mixed_rfc2231_continuations_are_a_defect_not_a_crash(header: bytes) -> None:
    # The stdlib's decode_params sorts [(0, ...), (None, ...)] and raises TypeError; an 8-bit
    # attachment makes get_payload() decode with the charset parameter, a tuple for `charset*=`.
    email = parse_or_refuse(b"From: a@example.com\r\n" + header + b"\r\n\r\nhello \xff\r\n")
    assert email is not None
    assert "malformed MIME parameters" in email.defects
    assert_well_formed(email)


def test_control_characters_in_a_part_content_type_do_not_reach_the_attachment_list() -> None:
    # Stored as JSONB on ingest, where Postgres refuses \u0000 (a 500 before parse.py cleaned it).
    raw = (
        b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: \x00/pdf\r\n\r\nx\r\n"
        b"--b\r\nContent-Type: application/\r\n\tpdf\x07\r\n\r\nx\r\n--b--\r\n"
    )
    email = parse_or_refuse(raw)
    assert email is not None
    assert [a.content_type for a in email.attachments] == ["/pdf", "application/pdf"]
    assert_well_formed(email)
