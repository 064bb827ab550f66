"""The faster forms of parsing give exactly what the plain forms gave: headers found in one pass,
history split by trying only the lines that can open it, HTML text tidied in one pass."""

from __future__ import annotations

import email
import re
from email import policy
from html import unescape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from selectolax.lexbor import LexborHTMLParser

from app.mail import html as mail_html
from app.mail import quotes
from app.mail.parse import (
    _parse_address,
    _parse_address_list,
    decode_header_value,
    email_from_mime,
    parse_address,
    parse_address_list,
)


def _old_split_quoted(body: str) -> tuple[str, str, bool]:
    """split_quoted as it was: every line tried in turn, every head line checked for `>`."""
    lines = body.split("\n")
    cut = next((i for i in range(len(lines)) if quotes._opens_history(lines, i)), len(lines))
    head, tail = lines[:cut], lines[cut:]
    forwarded = bool(tail) and bool(quotes._FORWARD.search("\n".join(tail[:3])))
    kept, inline = [], []
    for line in head:
        (inline if line.lstrip().startswith(">") else kept).append(line)
    newest = "\n".join(kept).strip()
    quoted = "\n".join(inline + tail).strip()
    if len(newest) < 3 and quoted:
        return f"{newest}\n{quotes._unquote(quoted)}".strip(), "", forwarded
    return newest, quoted, forwarded


LINES = st.sampled_from(
    [
        "Hello, please pay the invoice today.",
        "On Mon, 1 Jan 2024 at 10:00, Bob Smith <bob@example.com>",
        "wrote:",
        "On Tue, Bob wrote:",
        "Le lun. 1 janv. 2024, Alice a écrit :",
        "Am Montag schrieb Bob:",
        "El lunes escribió:",
        "-----Original Message-----",
        "---------- Forwarded message ---------",
        "Begin forwarded message:",
        "begin forwarded message :",
        "______________________________",
        "From: Bob <bob@example.com>",
        "*From:* Bob",
        "Sent: Monday",
        "Date: today",
        "To: Alice",
        "Subject: hi",
        "Von: Bob",
        "Betreff: x",
        "> quoted line",
        "  >> deeper",
        ">",
        "ok",
        "fyi",
        "",
        " ",
        "\t",
        "b",
        "-- ",
        "- item: one",
        "time: 10:30",
        "http://example.com/a:b",
        "\u2028> odd space",
        "\x85From: a",
    ]
)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "\n",
        "ok",
        "Hi\n\nOn Mon, Bob wrote:\n> old",
        "fyi\n-----Original Message-----\nFrom: a\nSent: b\nTo: c\nSubject: d\n\nold text",
        "> a\n> b\nnew reply\n\nOn Tue, X\nwrote:\n> c",
        "Begin forwarded message:\n\nFrom: x\nDate: y\nSubject: z\n\nforwarded body",
        "line one\nline two: with colon\nb\n___________\nsig",
    ],
)
def test_history_split_is_unchanged(body):
    split = quotes.split_quoted(body)
    assert (split.newest, split.quoted, split.forwarded) == _old_split_quoted(body)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LINES, max_size=12), st.sampled_from(["\n", "\n\n", "\n \n"]))
def test_history_split_is_unchanged_on_any_body(lines, joiner):
    body = joiner.join(lines)
    split = quotes.split_quoted(body)
    assert (split.newest, split.quoted, split.forwarded) == _old_split_quoted(body)


def _old_tidy(text: str) -> str:
    lines = [mail_html._SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return mail_html._BLANKS.sub("\n\n", "\n".join(lines).strip())


def _old_html_to_text(markup: str) -> tuple[str, list[tuple[str, str]]]:
    """html_to_text as it was: every node checked for hiding, one query per block tag."""
    tree = LexborHTMLParser(markup)
    tree.strip_tags(["script", "style", "head", "title", "noscript", "template", "svg", "object"])
    links: list[tuple[str, str]] = []
    root = tree.body or tree.root
    if root is None:
        return "", links
    for node in list(root.traverse(include_text=False)):
        if node.tag and node.tag != "-text" and mail_html._is_hidden(node):
            node.decompose()
    for node in root.css("a[href]"):
        if len(links) >= mail_html.MAX_LINKS:
            break
        href = (node.attributes.get("href") or "").strip()
        if href:
            links.append(((node.text(deep=True) or "").strip()[:500], href[:2_000]))
    for tag in mail_html._BLOCK_TAGS:
        for node in root.css(tag):
            node.insert_before("\n")
            node.insert_after("\n")
    for node in root.css("td, th"):
        node.insert_after(" ")
    return _old_tidy(root.text(deep=True, separator="", strip=False)), links


HTML_PIECES = st.sampled_from(
    [
        "<p>",
        "</p>",
        "<div>",
        "</div>",
        "<br>",
        "<hr>",
        "<table><tr><td>",
        "</td><th>",
        "</th></tr></table>",
        "<ul><li>",
        "</li></ul>",
        "<h1>",
        "</h1>",
        "<blockquote>",
        "<span style='display:none'>",
        "<div hidden>",
        "<p style='font-size:0'>",
        "<p style='font-size:0.5px'>",
        "<DIV STYLE='VISIBILITY: HIDDEN'>",
        "<div style='opacity:0;color:red'>",
        "<div style='color:red'>",
        "</span>",
        "<a href='https://example.com/x'>",
        "<a href=' '>",
        "</a>",
        "<script>var x = 1;</script>",
        "<style>p {}</style>",
        "<template>t</template>",
        "<b>",
        "</b>",
        "<body>",
        "</body>",
        "hello",
        " world ",
        "\n",
        "  \n  ",
        "\t",
        "a\u00a0b",
        "\r\n",
        "&nbsp;",
        "&amp;",
        "\u2028",
        "\x0c",
        "pay now",
    ]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(HTML_PIECES, max_size=25))
def test_html_text_and_links_are_unchanged(pieces):
    markup = "".join(pieces)
    assert mail_html.html_to_text(markup) == _old_html_to_text(markup)
    assert mail_html._tidy(markup) == _old_tidy(markup)


def test_tag_stripping_fallback_is_unchanged():
    markup = "<p>a &amp; b</p>\n  <div> c\t\u00a0 d </div>\n\n\n\n<a href='http://x.example'>x</a>"
    text, links = mail_html._strip_tags(markup)
    assert text == _old_tidy(unescape(mail_html._TAG.sub(" ", markup)))
    assert links == [("", "http://x.example")]


def _raw(headers: list[str], body: str = "body text") -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n" + body).encode("utf-8")


def test_headers_read_in_one_pass_match_message_get():
    raw = _raw(
        [
            "FROM: First <first@example.com>",
            "From: Second <second@example.com>",
            "subject: first subject",
            "Subject: second subject",
            "To: a@example.com",
            "Cc: c@example.com",
            "TO: b@example.com, d@example.com",
            "reply-TO: r@example.org",
            "Message-Id: <id@example.com>",
            "Date: Mon, 1 Jan 2024 10:00:00 +0000",
            "Authentication-Results: mx; spf=fail; dkim=pass",
            "X-Mailer: test",
        ]
    )
    parsed = email_from_mime(raw)
    msg = email.message_from_bytes(raw, policy=policy.compat32)

    assert parsed.sender is not None
    assert parsed.sender.address == "first@example.com"
    assert parsed.subject == decode_header_value(msg.get("Subject")) == "first subject"
    assert [a.address for a in parsed.to] == ["a@example.com", "b@example.com", "d@example.com"]
    assert [a.address for a in parsed.cc] == ["c@example.com"]
    assert parsed.reply_to is not None
    assert parsed.reply_to.address == "r@example.org"
    assert parsed.message_id == "<id@example.com>"
    assert parsed.date is not None
    assert parsed.auth.spf == "fail"
    assert parsed.headers == {
        "authentication-results": "mx; spf=fail; dkim=pass",
        "x-mailer": "test",
    }


def test_raw_8bit_headers_read_in_one_pass_are_still_decoded():
    raw = b"From: Fran\xe7ois <f@example.fr>\r\nSubject: caf\xc3\xa9\r\n\r\nbody"
    parsed = email_from_mime(raw)

    assert parsed.sender is not None
    assert parsed.sender.name == "François"
    assert parsed.subject == "café"


def test_mail_with_only_a_sender_header_keeps_empty_fields():
    parsed = email_from_mime(_raw(["From: a@example.com"]))

    assert parsed.subject == ""
    assert parsed.to == []
    assert parsed.reply_to is None
    assert parsed.headers == {}
    assert re.fullmatch(r"<derived\.[0-9a-f]{40}@countersign\.invalid>", parsed.message_id)


@pytest.mark.parametrize(
    "value",
    [
        "Anna Berg <anna.berg@northgate.com>",
        '"Smith, CPA" <smith@example.com>',
        "Smith, CPA <smith@example.com>",
        "just a name",
        "<a@b.example>",
        "=?utf-8?q?J=C3=A9r=C3=B4me?= <j@example.fr>",
        "x" * 2_000 + " <long@example.com>",
    ],
)
def test_remembered_addresses_equal_freshly_parsed_ones(value):
    assert parse_address(value) == _parse_address(value)
    assert parse_address(value) == _parse_address(value)  # and again, from the cache


def test_remembered_address_lists_are_fresh_lists():
    values = ["a@example.com, Bob <b@example.com>", "c@example.com"]
    first = parse_address_list(values)
    assert first == _parse_address_list(values)
    first.append(first[0])
    assert parse_address_list(values) == _parse_address_list(values)
    assert parse_address_list(["y" * 1_500 + "@example.com"]) == _parse_address_list(
        ["y" * 1_500 + "@example.com"]
    )
