"""Showing hostile text (escaping, evidence marks, defanging) and CSRF tokens; no database."""

from __future__ import annotations

from app.dashboard.csrf import issue_token, token_matches
from app.dashboard.text import defang, display_text, highlight


def test_highlight_escapes_everything_and_marks_only_the_evidence() -> None:
    text = 'Hi <b>team</b>,\nplease "wire" the money & keep it quiet.\n<script>x()</script>'
    out = highlight(text, ['please "wire" the money & keep it quiet.'])
    assert str(out) == (
        "Hi &lt;b&gt;team&lt;/b&gt;,\n"
        "<mark>please &#34;wire&#34; the money &amp; keep it quiet.</mark>\n"
        "&lt;script&gt;x()&lt;/script&gt;"
    )


def test_evidence_matches_across_line_breaks_and_repeated_spaces() -> None:
    out = highlight("Please update\n  our bank details now.", ["Please update our bank details"])
    assert str(out) == "<mark>Please update\n  our bank details</mark> now."


def test_overlapping_and_repeated_evidence_is_marked_once_per_span() -> None:
    out = highlight("pay now. pay now.", ["pay now", "now. pay"])
    assert str(out) == "<mark>pay now. pay now</mark>."


def test_a_needle_with_markup_cannot_inject_tags() -> None:
    out = highlight("a <i>b</i> c", ["<i>b</i>"])
    assert str(out) == "a <mark>&lt;i&gt;b&lt;/i&gt;</mark> c"


def test_links_are_defanged_and_account_numbers_masked() -> None:
    assert defang("https://evil.example.com/a.b") == "hxxps://evil[.]example[.]com/a[.]b"
    shown = display_text("Pay GB33 BUKB 2020 1555 5555 55 via www.evil.example or HTTP://x.io")
    assert shown == ("Pay [number ending 5555] via www[.]evil[.]example or HxxP://x[.]io")


def test_csrf_tokens_differ_each_time_but_all_match_their_secret() -> None:
    secret = "s" * 43
    a, b = issue_token(secret), issue_token(secret)
    assert a != b
    assert token_matches(secret, a)
    assert token_matches(secret, b)


def test_csrf_tokens_of_another_secret_tampered_or_garbage_do_not_match() -> None:
    secret = "s" * 43
    token = issue_token(secret)
    assert not token_matches("t" * 43, token)
    assert not token_matches(secret, token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])
    assert not token_matches(secret, None)
    assert not token_matches(secret, "")
    assert not token_matches(secret, "!!not base64!!")
    assert not token_matches(secret, "x" * 5000)
    assert not token_matches("", issue_token("x"))
