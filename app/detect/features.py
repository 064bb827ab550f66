"""What the model reads of an email, and the sentence splitting used for evidence."""

from __future__ import annotations

import re

from app.detect.boilerplate import strip_boilerplate
from app.detect.normalize import normalize
from app.mail.schemas import Email

HEAD_CHARS = 4_000
TAIL_CHARS = 2_000
QUOTED_CHARS = 3_000
# Sentence breaks: whitespace after ".", "!" or "?" (before more text), and runs of newlines.
# Written to start with the whitespace itself, which lets the regex engine skip ahead to it: the
# same splits as r"(?<=[.!?])\s+(?=\S)|\n+".
_SENTENCE = re.compile(r"\s(?:(?<=[.!?]\s)\s*(?=\S)|(?<=\n)\n*)")
_MIN_SENTENCE = 12
_MIN_ASK_WORDS = 3


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


def body_text(email: Email) -> str:
    """The newest message without signatures, disclaimers and banners (see boilerplate)."""
    return strip_boilerplate(email.newest, _asks)


def model_inputs(email: Email) -> tuple[str, str]:
    """(main, quoted) texts for the model: subject + newest message, and the quoted history."""
    main = normalize(_clip(bare_subject(email.subject) + "\n" + body_text(email)))
    quoted = normalize(email.quoted[:QUOTED_CHARS]) if email.quoted else ""
    return main, quoted


# Request cues (on normalised text: lower case, no accents) in the corpus's languages.
_ASK_CUE = re.compile(
    r"\b(?:please|pls|plz|kindly|can (?:you|u)|could (?:you|u)|would you|will you|need (?:you|u)|"
    r"i need|we need|want you|make sure|ensure|let me know|get back|reply|respond|send|sent|update|"
    r"change|click|tap|sign in|log ?in|login|verify|confirm|validate|enter|provide|share|forward|"
    r"buy|purchase|pick up|get me|pay|wire|transfer|process|approve|release|remit|scratch|"
    r"email me|text me|call me|use (?:the|our|this)|going forward|from now on|"
    r"veuillez|merci de|pourr(?:iez|ais)|pouvez|peux|envoy|effectu|mettre a jour|modifi|cliqu|"
    r"connect|confirm|pay|virement|achet|regler|"
    r"bitte|konn(?:en|ten)|kannst|send|schick|uberweis|aktualisier|ander|klick|anmeld|bestatig|"
    r"kauf|zahl|"
    r"por favor|favor de|pued|podr|envi|mand|realiz|actualiz|cambi|haga clic|inicie|pag|"
    r"transfer|compr|pode|atualiz|alter|clique|entre|transferir|"
    r"graag|gelieve|kunt u|kun je|wilt u|stuur|overmak|wijzig|bijwerk|klik|inlogg|bevestig|"
    r"kopen|betal)",
)


class _NotPlainWords(ValueError):
    """A pattern that is not an alternation of plain words."""


def _spelled_out(pattern: str) -> list[str]:
    """Every string that `pattern` matches, for a pattern made of literal characters, `(?:...)`
    groups of alternatives, `|` and `?` after a character or group; _NotPlainWords otherwise."""
    pos = 0

    def alternatives() -> list[str]:
        nonlocal pos
        out = sequence()
        while pos < len(pattern) and pattern[pos] == "|":
            pos += 1
            out += sequence()
        return out

    def sequence() -> list[str]:
        nonlocal pos
        out = [""]
        while pos < len(pattern) and pattern[pos] not in "|)":
            if pattern.startswith("(?:", pos):
                pos += 3
                options = alternatives()
                if not pattern.startswith(")", pos):
                    raise _NotPlainWords(pattern)
                pos += 1
            elif pattern[pos] == "\\" and pos + 1 < len(pattern) and not pattern[pos + 1].isalnum():
                options = [pattern[pos + 1]]
                pos += 2
            elif pattern[pos] in _REGEX_SYNTAX:
                raise _NotPlainWords(pattern)
            else:
                options = [pattern[pos]]
                pos += 1
            if pattern.startswith("?", pos):
                pos += 1
                options = [*options, ""]
            out = [head + tail for head in out for tail in options]
        return out

    words = alternatives()
    if pos != len(pattern):
        raise _NotPlainWords(pattern)
    return words


_REGEX_SYNTAX = frozenset("\\.^$*+?{}[]|()")


def _as_trie(regex: re.Pattern[str]) -> re.Pattern[str]:
    """`\\b(?:word|word|...)` rewritten as a trie ("pa(?:ss|y)") that finds a match exactly where
    the original does: the regex engine reads each character once instead of trying every word in
    turn. Any other pattern is returned as it is."""
    source = regex.pattern
    if regex.flags != re.UNICODE or not (source.startswith(r"\b(?:") and source.endswith(")")):
        return regex
    try:
        words = _spelled_out(source[len(r"\b(?:") : -1])
    except _NotPlainWords:
        return regex
    if len(words) > 10_000:  # nested optional parts spell out too many words
        return regex
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:
        if "" in node:  # a word ends here: whatever follows, this is a match
            return ""
        parts = [re.escape(ch) + emit(node[ch]) for ch in sorted(node)]
        return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"

    return re.compile(r"\b" + emit(trie))


# The same matches as the regex written above, found faster (ask_text runs on every email).
_ASK_CUE_AS_WRITTEN = _ASK_CUE
_ASK_CUE = _as_trie(_ASK_CUE_AS_WRITTEN)


def _asks(text: str) -> bool:
    """Whether raw text holds a request cue (after normalisation, as the model sees it)."""
    return _ASK_CUE.search(normalize(text)) is not None


# A line this long that ends without punctuation was wrapped by the sender's mail program
# (plain-text mail is often wrapped at 72-76 characters): its sentence goes on in the next line.
_WRAP_WIDTH = 60
_WRAPPED = re.compile(rf"^([^\n]{{{_WRAP_WIDTH - 1},}}[^\n.!?:;])\n(?=[^\s>])", re.MULTILINE)


def unwrap(text: str) -> str:
    """Join hard-wrapped lines, so that sentences split at line ends come back together."""
    if "\n" not in text:
        return text
    return _WRAPPED.sub(r"\1 ", text)


def ask_text(normalised: str) -> str:
    """The sentences of an already normalised text that carry a request cue: the ask itself,
    given its own features so that a long friendly context does not drown it."""
    # Urgency words alone ("today", "asap") are not asks; nor is a two-word fragment, whose
    # l2-normalised features would weigh as much as a whole request sentence.
    kept = [
        s
        for s in _SENTENCE.split(unwrap(normalised))
        if len(s.split()) >= _MIN_ASK_WORDS and _ASK_CUE.search(s)
    ]
    return " . ".join(kept) if kept else "zznoask"


def sentences(text: str, limit: int = 80) -> list[str]:
    """Sentences (or lines) of a message body, long enough to be evidence."""
    out = []
    for raw in _SENTENCE.split(unwrap(text)):
        sentence = " ".join(raw.split())
        if len(sentence) >= _MIN_SENTENCE:
            out.append(sentence[:400])
        if len(out) >= limit:
            break
    return out
