"""Property tests: hostile bytes only ever end in a clean refusal; splitting keeps all text."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.core.errors import InvalidInput, PayloadTooLarge
from app.mail.parse import email_from_mime
from app.mail.quotes import split_quoted
from app.mail.schemas import Email

MIME_PIECES = st.sampled_from(
    [
        b"From: a@example.com\r\n",
        b"From: =?utf-8?q?J=C3=A9r=C3=B4me?= <j@example.fr>\r\n",
        b"Subject: =?x-unknown?b?AAAA?=\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n",
        b"Content-Type: text/plain; charset=x-unknown\r\n",
        b"Content-Type: text/html\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        b'Content-Disposition: attachment; filename="fa\xe7ture.pdf"\r\n',
        b"Content-Type: application/pdf; name*=utf-8''%C3%A9.pdf\r\n",
        b"\r\n",
        b"--b\r\n",
        b"--b--\r\n",
        b"=?",
        b"?=",
        b"<p style='display:none'>x</p>",
        b"\xe9\xff\x00",
        b"Hello, please pay.\r\n",
        b"> quoted\r\n",
        b"On Mon, X wrote:\r\n",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=4096), st.lists(MIME_PIECES, max_size=40).map(b"".join)))
@example(b"From: a@example.com\r\nContent-Disposition: attachment; filename=\xe9\r\n\r\nx")
@example(b"")
def test_email_from_mime_on_arbitrary_bytes_returns_an_email_or_refuses_cleanly(raw):
    try:
        result = email_from_mime(raw)
    except (InvalidInput, PayloadTooLarge):
        return
    assert isinstance(result, Email)


LINES = st.one_of(
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\n"), max_size=60),
    st.sampled_from(
        [
            "On Mon, 3 Jun 2024, Alice <a@example.com> wrote:",
            "-----Original Message-----",
            "---------- Forwarded message ---------",
            "Begin forwarded message:",
            "From: Bob <b@example.com>",
            "Sent: Monday",
            "To: Carol",
            "Subject: hi",
            "> quoted line",
            ">> deeper",
            "ok",
            "",
            "   ",
            "Le lun. 3 juin 2024, Alice a écrit :",
            "Von: Bob",
            "________________________________",
            "Please wire the money.",
        ]
    ),
)


def _unquoted(line: str) -> str:
    stripped = line.lstrip()
    while stripped.startswith(">"):
        stripped = stripped[1:].lstrip()
    return stripped


@settings(max_examples=500, deadline=None)
@given(st.lists(LINES, max_size=30).map("\n".join))
@example("ok\n> wire the money")
def test_split_quoted_never_loses_a_line(body):
    split = split_quoted(body)
    kept = split.newest + "\n" + split.quoted

    for line in body.split("\n"):
        if not line.strip():
            continue
        assert line.strip() in kept or _unquoted(line) in split.newest, line
