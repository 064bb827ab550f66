"""HTML to plain text with a real HTML parser; the HTML itself is never rendered or kept."""

from __future__ import annotations

import re
from html import unescape

from selectolax.lexbor import LexborHTMLParser as HTMLParser
from selectolax.lexbor import LexborNode as Node

from app.mail.schemas import Email

MAX_HTML_CHARS = 2_000_000
MAX_LINKS = 200

_BLOCK_TAGS = (
    "p",
    "div",
    "br",
    "tr",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "blockquote",
    "section",
    "article",
    "header",
    "footer",
    "hr",
    "ul",
    "ol",
)
_BLOCK_SELECTOR = ", ".join(_BLOCK_TAGS)
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?![.\d]*[1-9])|"
    r"max-height\s*:\s*0(?![.\d]*[1-9])|opacity\s*:\s*0(?![.\d]*[1-9])",
    re.IGNORECASE,
)
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANKS = re.compile(r"\n\s*\n\s*\n+")


def _is_hidden(node: Node) -> bool:
    attrs = node.attributes
    if "hidden" in attrs:
        return True
    style = attrs.get("style") or ""
    return bool(_HIDDEN_STYLE.search(style))


MAX_TAGS = 15_000
_TAG = re.compile(r"<[^>]{0,2000}>")
_HREF = re.compile(r"""<a\b[^>]{0,2000}?href\s*=\s*["']?([^"'\s>]{1,2000})""", re.IGNORECASE)


def _tidy(text: str) -> str:
    """Spaces squeezed, every line stripped, at most one blank line in a row.

    The same as stripping `_SPACES.sub(" ", line)` for each line and joining them, done on the
    whole text at once: whitespace next to a line break goes with it.
    """
    text = _LINE_EDGES.sub("\n", _SPACES.sub(" ", text)).strip()
    return _BLANKS.sub("\n\n", text)


_LINE_EDGES = re.compile(r"[^\S\n]*\n[^\S\n]*")


def _strip_tags(html: str) -> tuple[str, list[tuple[str, str]]]:
    """Text and links of HTML too large to parse as a tree (tags dropped, entities decoded)."""
    links = [("", m.group(1)) for m in _HREF.finditer(html)][:MAX_LINKS]
    return _tidy(unescape(_TAG.sub(" ", html))), links


def html_to_text(html: str) -> tuple[str, list[tuple[str, str]]]:
    """Visible text of an HTML body (block elements become line breaks) and its links.

    Hidden elements (display:none, zero-size fonts) are dropped: attackers use them to pad mail
    with benign words that a reader never sees.
    """
    html = html[:MAX_HTML_CHARS]
    if html.count("<") > MAX_TAGS:
        # The parser's time grows with the square of nesting depth (80,000 nested <div> take
        # seconds): past a tag budget no real email reaches, strip tags with a linear scan.
        return _strip_tags(html)
    tree = HTMLParser(html)
    tree.strip_tags(["script", "style", "head", "title", "noscript", "template", "svg", "object"])
    links: list[tuple[str, str]] = []
    root = tree.body or tree.root
    if root is None:
        return "", links
    # Only elements with a `hidden` or `style` attribute can be hidden (in document order, like a
    # traversal: a hidden element inside one already removed is removed again, harmlessly).
    for node in root.css("[hidden], [style]"):
        if _is_hidden(node):
            node.decompose()
    for node in root.css("a[href]"):
        if len(links) >= MAX_LINKS:
            break
        href = (node.attributes.get("href") or "").strip()
        if href:
            links.append(((node.text(deep=True) or "").strip()[:500], href[:2_000]))
    # One query for every block element (each node gets its own line breaks, so the order in which
    # they are added does not matter).
    for node in root.css(_BLOCK_SELECTOR):
        node.insert_before("\n")
        node.insert_after("\n")
    for node in root.css("td, th"):
        node.insert_after(" ")
    return _tidy(root.text(deep=True, separator="", strip=False)), links


def html_links_of(email: Email) -> list[tuple[str, str]]:
    """The links of an email's HTML, reading the HTML alternative on first use."""
    if not email.html_links and email.html_source:
        email.html_links = html_to_text(email.html_source)[1]
        email.html_source = None
    return email.html_links
