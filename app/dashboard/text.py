"""Showing attacker-controlled email text safely: masked, defanged, escaped, evidence marked."""

from __future__ import annotations

import re
from collections.abc import Iterable

from markupsafe import Markup, escape

from app.mail.artifacts import mask_numbers

MAX_NEEDLES = 20
MAX_NEEDLE_CHARS = 400
_URL = re.compile(r"(?i)\b(?:https?://|ftp://|www\.)[^\s<>\"'()\[\]{}]{2,2000}")
_SCHEME = re.compile(r"(?i)^(h)tt(p)|^(f)t(p)")


def defang(url: str) -> str:
    """A URL made unclickable and unmistakable: `hxxps://example[.]com/...`."""
    url = _SCHEME.sub(lambda m: f"{m[1]}xx{m[2]}" if m[1] else f"{m[3]}x{m[4]}", url, count=1)
    return url.replace(".", "[.]")


def defang_text(text: str) -> str:
    """The text with every URL in it defanged."""
    return _URL.sub(lambda m: defang(m.group(0)), text)


def display_text(text: str) -> str:
    """Email text as the dashboard shows it: account numbers masked, links defanged."""
    return defang_text(mask_numbers(text))


def highlight(text: str, needles: Iterable[str]) -> Markup:
    """`text` escaped, with every occurrence of a needle wrapped in <mark>.

    Matching is exact except that any run of whitespace matches any other (evidence sentences
    are whitespace-collapsed). The markup is assembled from escaped pieces only: nothing in `text`
    or the needles can become a tag or an attribute.
    """
    spans: list[tuple[int, int]] = []
    for needle in list(needles)[:MAX_NEEDLES]:
        words = needle[:MAX_NEEDLE_CHARS].split()
        if not words:
            continue
        pattern = re.compile(r"\s+".join(re.escape(w) for w in words))
        spans.extend(m.span() for m in pattern.finditer(text) if m.end() > m.start())
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    pieces: list[Markup] = []
    pos = 0
    for start, end in merged:
        pieces += [escape(text[pos:start]), Markup("<mark>"), escape(text[start:end])]
        pieces.append(Markup("</mark>"))
        pos = end
    pieces.append(escape(text[pos:]))
    return Markup("").join(pieces)
