"""The faster forms of normalisation and feature extraction give exactly what the plain forms gave.

Each rewritten regex or loop is checked against the form it replaced (kept here as the reference)
on tricky inputs and on generated text: the model is trained on these features, so they must not
move by a single character.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.detect import features, normalize
from app.detect.model import VECTORIZER_SETTINGS, _first_seen_counts, _word_analyzer

TRICKY = [
    "",
    " ",
    "Vеrify yоur раsswоrd",  # Cyrillic lookalikes
    "УОUR РАSSWОRD ΡΑSSWΟRD ＰＡＹＰＡＬ",  # capitals, Greek, full-width
    "pass\u200bword pa\u200css\u200dword \ufeffpassword pass\u00adword pass\u2060word",
    "p@ssw0rd P@SSW0RD g1ft c4rds n0w!!! cl!ck | 2fa b2b w-2 365",
    "Café résumé naïve Ångström crème brûlée",
    "Tiếng Việt có dấu: người, được, những",  # stacked diacritics
    "e\u0301 a\u0300\u0316 o\u0308\u0304 \u0338= q\u0307\u0323",  # combining sequences
    "한국어 日本語 中文 עברית العربية ελληνικά",
    "emoji 👍🏽 👨‍👩‍👧 flags 🇫🇷",
    "ﬁnance ﬂow Ⅻ ½ ² ㎏ ℌ",  # compatibility forms
    "\u202eevil\u202c \u061c rtl marks",
    "wire $5,000.00 to 12-34-56 acct 12345678 on 1/2/2024, 3 x 100",
    "a1 1a 1 -1 x-1 1-x 1.2.3 12,345.67 1 2 3 4",
    "p a s s w o r d w.i.r.e u-r-g-e-n-t",
    "helloooo!!! ??? ... ,,, --- === ___ *** ~~~ ###",
    "tabs\there\r\nand\x0bvertical\x0cform  feeds   and\u00a0nbsp\u2028line\u2029para",
    "mail pay@evil.example or a.b+c@d-e.f.gh now",
    "https://evil.example/x www.Example.com HTTP://X.Y",
]
TEXTS = st.text(
    alphabet=st.sampled_from(
        [
            *"abcdeilorstwxyzABEOPX0123457@$!|.,-_*~#=?/ \t\r\n\x0b\x0c",
            *["é", "е", "о", "ß", "\u0301", "\u200b", "\u00a0", "\u2028", "ﬁ", "İ", "ı", "K"],
        ]
    ),
    max_size=80,
)


# --- normalize.py -------------------------------------------------------------------------------

_OLD_WS = re.compile(r"[ \t\r\f\v]+")
_OLD_NUMBER = re.compile(r"(?<![a-z])\d[\d,.\-/ ]*\d(?![a-z])|(?<![a-z\-])\d(?![a-z])")


def _old_fold_chars(text: str) -> str:
    if text.isascii():
        return text.casefold()
    text = unicodedata.normalize("NFKC", text)
    text = normalize._ZERO_WIDTH.sub("", text)
    text = text.casefold().translate(normalize._CONFUSABLES)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return text.casefold()


def _same_subs(new: re.Pattern[str], old: re.Pattern[str], text: str, repl: str) -> None:
    assert new.sub(repl, text) == old.sub(repl, text)


@pytest.mark.parametrize("text", TRICKY)
def test_fast_normalisation_steps_equal_the_plain_ones_on_tricky_text(text):
    assert normalize.fold_chars(text) == _old_fold_chars(text)
    for folded in (text, text.lower(), _old_fold_chars(text)):
        _same_subs(normalize._WS, _OLD_WS, folded, " ")
        _same_subs(normalize._NUMBER, _OLD_NUMBER, folded, " zznum ")


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_fast_normalisation_steps_equal_the_plain_ones_on_any_text(text):
    assert normalize.fold_chars(text) == _old_fold_chars(text)
    _same_subs(normalize._WS, _OLD_WS, text, " ")
    _same_subs(normalize._NUMBER, _OLD_NUMBER, text, " zznum ")
    if "@" not in text:  # normalize skips the address pattern then
        assert normalize._EMAIL.search(text) is None


def test_accent_table_deletes_exactly_the_combining_marks():
    # Every BMP character once: the lazily filled table must agree with unicodedata everywhere.
    text = "".join(chr(c) for c in range(0x20, 0x10000) if not 0xD800 <= c < 0xE000)
    expected = "".join(c for c in text if not unicodedata.combining(c))
    assert text.translate(normalize._NOT_COMBINING) == expected
    assert text.translate(normalize._NOT_COMBINING) == expected  # and again, from the table


# --- features.py --------------------------------------------------------------------------------

_OLD_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=\S)|\n+")


@pytest.mark.parametrize(
    "text",
    [
        *TRICKY,
        "one. two! three? four",
        "end.  \n  next",
        "a.\n\nb",
        "trailing. ",
        "no break.x",
        "x\u2028. y",
        ".\t\u3000z",
        "\n\n\nlead",
    ],
)
def test_sentence_splitting_is_unchanged(text):
    assert features._SENTENCE.split(text) == _OLD_SENTENCE.split(text)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab.!? \n\t\r\u2028\u00a0")), max_size=40))
def test_sentence_splitting_is_unchanged_on_any_text(text):
    assert features._SENTENCE.split(text) == _OLD_SENTENCE.split(text)


def test_ask_cues_run_as_a_trie():
    assert features._ASK_CUE is not features._ASK_CUE_AS_WRITTEN


def _cue_words() -> list[str]:
    return features._spelled_out(features._ASK_CUE_AS_WRITTEN.pattern[len(r"\b(?:") : -1])


def test_ask_cue_trie_matches_where_the_written_regex_does():
    old, new = features._ASK_CUE_AS_WRITTEN, features._ASK_CUE
    for word in _cue_words():
        for text in (
            word,
            word[:-1],
            word + "s",
            "x" + word,
            "_" + word,
            "1" + word,
            " " + word,
            "." + word,
            "é" + word,
            f"we {word} it",
            word.replace(" ", "  "),
            word.upper(),
        ):
            assert (new.search(text) is None) == (old.search(text) is None), text


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from([*_cue_words(), "a", "x", " ", ".", "_", "é", "1", "-", "\n", "yo", "u"]),
        max_size=8,
    )
)
def test_ask_cue_trie_matches_where_the_written_regex_does_on_any_text(pieces):
    text = "".join(pieces)
    old, new = features._ASK_CUE_AS_WRITTEN, features._ASK_CUE
    assert (new.search(text) is None) == (old.search(text) is None)


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        (r"ab|c", ["ab", "c"]),
        (r"log ?in|x(?:y|zz)?", ["login", "log in", "x", "xy", "xzz"]),
        (r"a\-b\ c", ["a-b c"]),
        (r"", [""]),
    ],
)
def test_plain_word_patterns_are_spelled_out(pattern, words):
    assert sorted(features._spelled_out(pattern)) == sorted(words)
    regex = re.compile(r"\b(?:" + pattern + ")")
    trie = features._as_trie(regex)
    for text in [
        "",
        "ab",
        "abc",
        "cab",
        " c",
        "login",
        "log in",
        "logi",
        "xz",
        "xzz",
        "a-b c",
        "xy",
    ]:
        assert (trie.search(text) is None) == (regex.search(text) is None), (pattern, text)


@pytest.mark.parametrize(
    "regex",
    [
        re.compile(r"\b(?:a.b|c)"),
        re.compile(r"\b(?:a\d|c)"),
        re.compile(r"\b(?:a[bc])"),
        re.compile(r"\b(?:ab+)"),
        re.compile(r"(?:ab|c)"),
        re.compile(r"\b(?:ab)|(?:c)"),
        re.compile(r"\b(?:ab|c)", re.IGNORECASE),
    ],
)
def test_other_patterns_are_left_as_they_are(regex):
    assert features._as_trie(regex) is regex


# --- model.py -----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=200_000), max_size=300))
def test_first_seen_counts_equal_a_counter(values):
    if not values:
        return
    cols, tf = _first_seen_counts(np.array(values, dtype=np.int32))
    counted = Counter(values)
    assert cols.tolist() == list(counted)
    assert tf.tolist() == [float(n) for n in counted.values()]


def _old_word_analyzer(settings_: dict) -> object:
    pattern = re.compile(settings_["token_pattern"])
    lo, hi = settings_["ngram_range"]

    def analyze(text: str) -> list[str]:
        tokens = pattern.findall(text.lower())
        if hi == 1:
            return tokens
        grams = list(tokens) if lo == 1 else []
        count = len(tokens)
        for n in range(max(lo, 2), min(hi, count) + 1):
            grams.extend(" ".join(tokens[i : i + n]) for i in range(count - n + 1))
        return grams

    return analyze


@pytest.mark.parametrize("name", ["word", "quoted", "ask"])
@pytest.mark.parametrize("ngrams", [None, (1, 3), (2, 3)])
def test_word_ngrams_are_unchanged(name, ngrams):
    settings_ = dict(VECTORIZER_SETTINGS[name])
    if ngrams:
        settings_["ngram_range"] = ngrams
    new, old = _word_analyzer(settings_), _old_word_analyzer(settings_)
    for text in [*TRICKY, "one", "one two", "it's a well-known fact . please pay"]:
        assert new(text) == old(text)
