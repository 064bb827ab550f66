"""LeanScorer gives the same raw scores, bit for bit, as the plain per-term counting it replaced."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from app.detect.features import ask_text
from app.detect.model import (
    BLOCK_WEIGHTS,
    BLOCKS,
    CHAR_CACHE_WORDS,
    VECTORIZER_SETTINGS,
    LeanScorer,
    _word_analyzer,
    build_vectorizers,
    char_view,
)
from app.detect.normalize import normalize

# Fitted vocabularies hold numpy integers: nothing may lean on how Python ints compare with them.
pytestmark = pytest.mark.filterwarnings("error")

TEXTS = [
    "Please update our bank details, our new IBAN is GB33 BUKB 2020 1555 5555 55.",
    "Hi Tom, are you free for lunch on Thursday? Let me know.",
    "Kindly buy 5 gift cards and send me the codes asap!!!",
    "Veuillez effectuer le virement aujourd'hui, merci de confirmer.",
    "Bitte überweisen Sie den Betrag und bestätigen Sie kurz.",
    "Vеrify yоur раsswоrd at https://login.example/secure now",
    "the the the the the a a a b b c",
    "x",
    "supercalifragilisticexpialidocious " * 3,
    "résumé naïve café — “quotes” and ‘apostrophes’ 👍",
    "",
    "a b",
    "o'neil well-known it's e-mail re-send",
]


class _OldLeanScorer:
    """The scorer as it was: a Counter of columns for the char block, one slice per n-gram."""

    def __init__(self, model):
        self.coef_t = np.ascontiguousarray(model.coef.T, dtype=np.float64)
        self.intercept = np.asarray(model.intercept, dtype=np.float64)
        self._char_cache = {}
        self.char_range = VECTORIZER_SETTINGS["char"]["ngram_range"]
        self.blocks = []
        offset = 0
        for name in BLOCKS:
            terms, idf = model.vocab[name]
            analyze = _word_analyzer(VECTORIZER_SETTINGS[name])
            idf = np.asarray(idf, dtype=np.float64)
            self.blocks.append((name, analyze, terms, idf, offset, BLOCK_WEIGHTS[name]))
            offset += len(terms)

    def _char_counts(self, text, vocab):
        cache = self._char_cache
        lo, hi = self.char_range
        cols = []
        for word in text.lower().split():
            hit = cache.get(word)
            if hit is None:
                padded = " " + word + " "
                size = len(padded)
                found = []
                for n in range(lo, hi + 1):
                    if size <= n:
                        j = vocab.get(padded)
                        if j is not None:
                            found.append(j)
                        break
                    for start in range(size - n + 1):
                        j = vocab.get(padded[start : start + n])
                        if j is not None:
                            found.append(j)
                hit = tuple(found)
                if len(cache) < CHAR_CACHE_WORDS:
                    cache[word] = hit
            cols.extend(hit)
        return Counter(cols)

    def decision(self, main, quoted):
        out = self.intercept.copy()
        texts = {"word": main, "char": char_view(main), "quoted": quoted, "ask": ask_text(main)}
        for name, analyze, vocab, idf, offset, weight in self.blocks:
            if name == "char":
                counted = self._char_counts(texts[name], vocab)
                if not counted:
                    continue
                cols = np.fromiter(counted.keys(), dtype=np.int64, count=len(counted))
                tf = np.fromiter(counted.values(), dtype=np.float64, count=len(counted))
            else:
                terms = Counter(analyze(texts[name]))
                if not terms:
                    continue
                found = np.fromiter(
                    (vocab.get(t, -1) for t in terms), dtype=np.int64, count=len(terms)
                )
                keep = found >= 0
                if not keep.any():
                    continue
                cols = found[keep]
                tf = np.fromiter(terms.values(), dtype=np.float64, count=len(terms))[keep]
            values = (np.log(tf) + 1.0) * idf[cols]
            norm = float(np.sqrt(values @ values))
            if norm == 0.0:
                continue
            out += (values * (weight / norm)) @ self.coef_t[cols + offset]
        return out


@pytest.fixture(scope="module")
def model():
    """Vocabularies fitted on the texts above (min_df relaxed), random coefficients."""
    mains = [normalize(t) for t in TEXTS if t] * 3
    vocab = {}
    for name, vec in build_vectorizers().items():
        vec.set_params(min_df=1, max_features=None)
        source = {"char": [char_view(m) for m in mains], "ask": [ask_text(m) for m in mains]}
        vec.fit(source.get(name, mains))
        vocab[name] = (dict(vec.vocabulary_), np.asarray(vec.idf_, dtype=np.float64))
    n = sum(len(terms) for terms, _ in vocab.values())
    rng = np.random.default_rng(7)
    return SimpleNamespace(
        vocab=vocab,
        coef=rng.normal(size=(5, n)).astype(np.float32),
        intercept=rng.normal(size=5),
    )


def test_scores_equal_the_plain_counting_bit_for_bit(model):
    new, old = LeanScorer(model), _OldLeanScorer(model)  # type: ignore[arg-type]
    texts = [normalize(t) for t in TEXTS] + TEXTS + [t.upper() for t in TEXTS]
    for _round in range(2):  # words met for the first time, then from the cache
        for main in texts:
            for quoted in ("", texts[0], main):
                assert new.decision(main, quoted).tobytes() == old.decision(main, quoted).tobytes()
