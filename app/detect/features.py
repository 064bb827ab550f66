"""What the model reads of an email, and the sentence splitting used for evidence."""

from __future__ import annotations

import re

from app.detect.normalize import normalize
from app.mail.schemas import Email

HEAD_CHARS = 4_000
TAIL_CHARS = 2_000
QUOTED_CHARS = 3_000
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=\S)|\n+")
_MIN_SENTENCE = 12


def _clip(text: str) -> str:
    # Keep the head and the tail: a risky ask is often buried at the very end of a long email.
    if len(text) <= HEAD_CHARS + TAIL_CHARS:
        return text
    return text[:HEAD_CHARS] + "\n" + text[-TAIL_CHARS:]


def model_inputs(email: Email) -> tuple[str, str]:
    """(main, quoted) texts for the model: subject + newest message, and the quoted history."""
    main = normalize(_clip(email.subject + "\n" + email.newest))
    quoted = normalize(email.quoted[:QUOTED_CHARS]) if email.quoted else ""
    return main, quoted


def sentences(text: str, limit: int = 80) -> list[str]:
    """Sentences (or lines) of a message body, long enough to be evidence."""
    out = []
    for raw in _SENTENCE.split(text):
        sentence = " ".join(raw.split())
        if len(sentence) >= _MIN_SENTENCE:
            out.append(sentence[:400])
        if len(out) >= limit:
            break
    return out
