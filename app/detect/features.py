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


# Reply and forward markers in the usual languages: "RE: " must not move a verdict.
_SUBJECT_PREFIX = re.compile(
    r"^(?:\s*(?:re|fw|fwd|aw|wg|tr|rv|res|enc|sv|vs|antw|doorst)\s*(?:\[\d+\])?\s*[:：]\s*)+",
    re.IGNORECASE,
)


def bare_subject(subject: str) -> str:
    """The subject without its reply/forward prefixes."""
    return _SUBJECT_PREFIX.sub("", subject)


def model_inputs(email: Email) -> tuple[str, str]:
    """(main, quoted) texts for the model: subject + newest message, and the quoted history."""
    main = normalize(_clip(bare_subject(email.subject) + "\n" + email.newest))
    quoted = normalize(email.quoted[:QUOTED_CHARS]) if email.quoted else ""
    return main, quoted


# Request cues (on normalised text: lower case, no accents) in the corpus's languages.
_ASK_CUE = re.compile(
    r"\b(?:please|pls|plz|kindly|can (?:you|u)|could (?:you|u)|would you|will you|need (?:you|u)|"
    r"i need|we need|want you|make sure|ensure|let me know|get back|reply|respond|send|sent|update|"
    r"change|click|tap|sign in|log ?in|login|verify|confirm|validate|enter|provide|share|forward|"
    r"buy|purchase|pick up|get me|pay|wire|transfer|process|approve|release|remit|scratch|"
    r"email me|text me|call me|use (?:the|our|this)|going forward|from now on|immediately|asap|"
    r"urgent|today|before|"
    r"veuillez|merci de|pourr(?:iez|ais)|pouvez|peux|envoy|effectu|mettre a jour|modifi|cliqu|"
    r"connect|confirm|pay|virement|achet|regler|"
    r"bitte|konn(?:en|ten)|kannst|send|schick|uberweis|aktualisier|ander|klick|anmeld|bestatig|"
    r"kauf|zahl|"
    r"por favor|favor de|pued|podr|envi|mand|realiz|actualiz|cambi|haga clic|inicie|pag|"
    r"transfer|compr|pode|atualiz|alter|clique|entre|transferir|"
    r"graag|gelieve|kunt u|kun je|wilt u|stuur|overmak|wijzig|bijwerk|klik|inlogg|bevestig|"
    r"kopen|betal)",
)


def ask_text(normalised: str) -> str:
    """The sentences of an already normalised text that carry a request cue: the ask itself,
    given its own features so that a long friendly context does not drown it."""
    kept = [s for s in _SENTENCE.split(normalised) if _ASK_CUE.search(s)]
    return " . ".join(kept) if kept else "zznoask"


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
