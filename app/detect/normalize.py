"""Text normalisation that takes attackers' obfuscation and writers' style out of the features.

Lookalike characters (Cyrillic "а" for Latin "a"), zero-width characters, leetspeak ("p4ssw0rd"),
accents, letter-spacing and repeated punctuation all map to one plain form, so a polished and a
sloppy version of the same request look alike to the model.
"""

from __future__ import annotations

import re
import unicodedata

_ZERO_WIDTH = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]"
)
# Confusable letters that NFKC leaves alone (Cyrillic, Greek, Armenian lookalikes of Latin).
_CONFUSABLES = str.maketrans(
    {
        "а": "a",
        "е": "e",
        "о": "o",
        "р": "p",
        "с": "c",
        "у": "y",
        "х": "x",
        "і": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "ɡ": "g",
        "һ": "h",
        "ӏ": "l",
        "ԛ": "q",
        "ԝ": "w",
        "ν": "v",
        "ο": "o",
        "α": "a",
        "ε": "e",
        "ι": "i",
        "κ": "k",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "в": "b",
        "к": "k",
        "м": "m",
        "н": "h",
        "т": "t",
        "ո": "n",
        "ս": "u",
        "օ": "o",
        "ᴀ": "a",
        "ʙ": "b",
        "ᴄ": "c",
        "ᴅ": "d",
        "ᴇ": "e",
        "ɢ": "g",
        "ʜ": "h",
        "ɪ": "i",
        "ᴊ": "j",
        "ᴋ": "k",
        "ʟ": "l",
        "ᴍ": "m",
        "ɴ": "n",
        "ᴏ": "o",
        "ᴘ": "p",
        "ʀ": "r",
        "ꜱ": "s",
        "ᴛ": "t",
        "ᴜ": "u",
        "ᴠ": "v",
        "ᴡ": "w",
        "ʏ": "y",
        "ᴢ": "z",
        "ı": "i",
        "ł": "l",
        "ø": "o",
        "đ": "d",
        "ß": "ss",
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
    }
)
_LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "7": "t",
        "@": "a",
        "$": "s",
        "!": "i",
        "|": "l",
    }
)
# A word that mixes letters with digits or symbols used as letters ("p@ssw0rd", "g1ft").
# It never ends on "!": "urgent!" and "n0w!!!" are words and punctuation, not "urgenti".
_LEET_WORD = re.compile(
    r"(?<![\w@$])(?=[\w@$!|]*[a-z])(?=[\w@$!|]*[0-9@$!|])[a-z0-9@$!|]{3,}(?<!!)(?![\w@$])"
)
# Letter-spaced words: "p a s s w o r d", "w.i.r.e".
_SPACED = re.compile(r"\b(?:[a-z][ .\-_*]){3,}[a-z]\b")
_REPEAT = re.compile(r"([a-z])\1{2,}")
_PUNCT_RUN = re.compile(r"([!?.,\-=_*~#])\1+")
# Runs of horizontal whitespace become one space. Written so that a single space (most of them)
# is not a match at all, and to start with the whitespace itself, which lets the regex engine skip
# ahead to it: the same result as substituting r"[ \t\r\f\v]+".
_WS = re.compile(r"[ \t\r\f\v](?:[ \t\r\f\v]+|(?<=[\t\r\f\v]))")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)
# Words that make a link about signing in or an account. Only such links reach the model (as
# "zzloginurl"): that a message holds links at all says nothing about its intent (mailing lists,
# newsletters and shared articles are full of them), and a bare-link placeholder taught the model
# that any short message with a link is phishing.
_LOGIN_URL = re.compile(
    r"log-?in|sign-?in|signon|verif|account|secure|auth|passw|update|confirm|validat|webmail|owa|"
    r"sso|wallet|unlock|activat|suspend|billing|recover|unusual|session|credential|token"
)
_EMAIL = re.compile(r"\b[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+\b")
# Standalone numbers only: "2fa", "b2b" and "w-2" keep their digits.
# Written to start with the digit (the conditions on the character before it follow it), which
# lets the regex engine skip ahead to digits: the same matches as
# r"(?<![a-z])\d[\d,.\-/ ]*\d(?![a-z])|(?<![a-z\-])\d(?![a-z])".
_NUMBER = re.compile(r"\d(?:(?<![a-z]\d)[\d,.\-/ ]*\d(?![a-z])|(?<![a-z\-]\d)(?![a-z]))")


def _deleet(match: re.Match[str]) -> str:
    word = match.group(0)
    # Keep real alphanumerics (invoice numbers, "2fa", "365", "w2", "b2b") that are mostly digits.
    letters = sum(c.isalpha() for c in word)
    if letters < 2 or letters < len(word) / 2:
        return word
    return word.translate(_LEET)


class _CombiningMarks(dict[int, int | None]):
    """A `str.translate` table that deletes combining marks (accents after NFKD), filled in as
    characters are met: the same as dropping every c with `unicodedata.combining(c)`, without a
    Python-level loop over the characters."""

    def __missing__(self, code: int) -> int | None:
        kept = None if unicodedata.combining(chr(code)) else code
        if len(self) < _MAX_REMEMBERED:  # hostile text must not grow the table without bound
            self[code] = kept
        return kept


_MAX_REMEMBERED = 20_000
_NOT_COMBINING = _CombiningMarks()


def fold_chars(text: str) -> str:
    """Unicode-level folding: NFKC, zero-width removal, confusables, accents, case."""
    if text.isascii():
        return text.casefold()
    text = unicodedata.normalize("NFKC", text)
    text = _ZERO_WIDTH.sub("", text)
    # Case-fold first: the confusables table is lower-case, and "УОUR" must fold like "уоur".
    text = text.casefold().translate(_CONFUSABLES)
    text = unicodedata.normalize("NFKD", text)
    text = text.translate(_NOT_COMBINING)
    return text.casefold()


def _url_placeholder(match: re.Match[str]) -> str:
    return " zzloginurl " if _LOGIN_URL.search(match.group(0)) else " "


def normalize(text: str) -> str:
    """The form the model sees: folded characters, de-obfuscated words, placeholders for URLs,
    addresses and numbers, squeezed repetition and whitespace."""
    text = fold_chars(text)
    text = _URL.sub(_url_placeholder, text)
    if "@" in text:  # every address has one
        text = _EMAIL.sub(" zzemail ", text)
    text = _SPACED.sub(lambda m: re.sub(r"[ .\-_*]", "", m.group(0)), text)
    text = _LEET_WORD.sub(_deleet, text)
    text = _NUMBER.sub(" zznum ", text)
    text = _REPEAT.sub(r"\1\1", text)
    text = _PUNCT_RUN.sub(r"\1", text)
    text = _WS.sub(" ", text)
    return _BLANK_LINES.sub("\n", text).strip()
