"""HTML bodies into visible text and links; hidden padding is dropped, nothing is rendered."""

from __future__ import annotations

from app.mail.html import MAX_LINKS, html_to_text


def test_hidden_elements_are_dropped_from_the_visible_text():
    html = (
        "<p>Please update our bank details.</p>"
        '<span style="display:none">team lunch on friday</span>'
        '<div style="visibility: hidden">weather report</div>'
        '<div style="font-size:0px">quarterly results</div>'
        '<div style="opacity:0">garden party</div>'
        "<p hidden>holiday schedule</p>"
        '<span style="font-size:12px">Thanks</span>'
    )

    text, _ = html_to_text(html)

    assert text.splitlines() == ["Please update our bank details.", "Thanks"]


def test_scripts_styles_and_head_are_not_text():
    html = (
        "<html><head><title>Title words</title><style>p { color: red }</style></head>"
        "<body><script>var secret = 1;</script><p>Visible</p><noscript>nojs</noscript>"
        "</body></html>"
    )

    text, _ = html_to_text(html)

    assert text == "Visible"


def test_block_elements_break_lines_and_table_cells_are_spaced():
    html = (
        "<div>Line one</div><div>Line two<br>Line three</div>"
        "<table><tr><td>A</td><td>B</td></tr></table>"
    )

    text, _ = html_to_text(html)

    assert [line for line in text.split("\n") if line] == [
        "Line one",
        "Line two",
        "Line three",
        "A B",
    ]


def test_entities_and_non_breaking_spaces_become_plain_text():
    text, _ = html_to_text("<p>Pay&nbsp;&euro;5&nbsp;000 &amp; confirm &lt;today&gt;</p>")

    assert text == "Pay €5 000 & confirm <today>"


def test_links_keep_their_text_and_href_but_hidden_links_are_ignored():
    html = (
        '<p>Sign in: <a href="https://login.example-mail.co.uk/verify">Microsoft 365</a></p>'
        '<a href="  https://hidden.example/x " style="display:none">hidden</a>'
        '<a href="">empty</a>'
    )

    text, links = html_to_text(html)

    assert links == [("Microsoft 365", "https://login.example-mail.co.uk/verify")]
    assert "hidden" not in text
    assert text.startswith("Sign in: Microsoft 365")


def test_number_of_links_kept_is_bounded():
    html = "".join(f'<a href="https://example.com/{i}">{i}</a>' for i in range(MAX_LINKS + 50))

    _, links = html_to_text(html)

    assert len(links) == MAX_LINKS


def test_malformed_and_empty_html_never_raise():
    for html in ("", "<<<>>>&&&", "<p><b><i>unclosed", "</div></div>text", "\x00<p>nul</p>"):
        text, links = html_to_text(html)
        assert isinstance(text, str)
        assert links == []
    assert html_to_text("<p><b><i>unclosed")[0] == "unclosed"


def test_five_megabyte_single_line_html_is_bounded():
    text, _ = html_to_text("<p>" + "A" * 5_000_000 + "</p>")

    assert 0 < len(text) <= 2_000_000
