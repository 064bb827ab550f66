"""What the model reads as the ask, hard-wrapped mail, and the stacked calibration."""

from __future__ import annotations

import numpy as np

from app.detect.features import ask_text, sentences, unwrap
from app.detect.intents import INTENTS
from app.detect.model import calibrated
from app.detect.train import _stack, _stacked_oof

WRAPPED = (
    "Yesterday a friend came to my place and dragged me out to look at the sky. It \n"
    "was beautiful. Odd colours and light. Obviously we wondered what it was. Today \n"
    "Jim explains it: it was a rocket test from the air force base up the coast.\n"
    "\n"
    "IBAN: DE89 3704 0044 0532 0130 00\n"
    "Thanks,\n"
    "Bob"
)


def test_unwrap_joins_wrapped_lines_only() -> None:
    text = unwrap(WRAPPED)
    assert "It  was beautiful" in text or "It was beautiful" in text
    assert "Today  Jim explains" in text or "Today Jim explains" in text
    # Short lines (lists, signatures, account details) keep their line breaks.
    assert "IBAN: DE89 3704 0044 0532 0130 00\nThanks,\nBob" in text
    assert unwrap("one line") == "one line"


def test_evidence_sentences_are_not_cut_at_wrapped_line_ends() -> None:
    found = sentences(WRAPPED)
    assert "It was beautiful." in found
    assert "Today Jim explains it: it was a rocket test from the air force base up the coast." in (
        found
    )


def test_urgency_words_alone_are_not_an_ask() -> None:
    assert ask_text("lovely photos of the sky. today. later today.") == "zznoask"
    asked = ask_text("hope you are well. please wire the deposit today. thanks")
    assert "please wire the deposit today" in asked
    assert "hope you are well" not in asked


def test_two_word_fragments_are_not_an_ask() -> None:
    assert ask_text("send it.\nok thanks") == "zznoask"
    assert ask_text("pls send codes asap") != "zznoask"


def _scores(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    k = len(INTENTS)
    y = np.zeros((n, k), dtype=np.int8)
    y[np.arange(n), rng.integers(0, k, n)] = 1
    y[: n // 2] = 0  # half benign
    decision = rng.normal(-3.0, 1.0, (n, k)) + 5.0 * y
    return decision, y


def test_stacked_calibration_is_a_probability_per_intent() -> None:
    rng = np.random.default_rng(0)
    decision, y = _scores(400, rng)
    params = _stack(decision, y)
    k = len(INTENTS)
    assert params.shape == (k, k + 1)
    probs = calibrated(decision, params)
    # Each intent's own score carries the most weight, and the probabilities rank well.
    assert all(params[j, j] == params[j, :k].max() for j in range(k))
    for j in range(k):
        positives = probs[y[:, j] == 1, j]
        negatives = probs[y[:, j] == 0, j]
        assert positives.mean() > 0.8 > 0.2 > negatives.mean()


def test_an_intent_with_no_examples_keeps_its_raw_score() -> None:
    rng = np.random.default_rng(1)
    decision, y = _scores(200, rng)
    y[:, 2] = 0
    params = _stack(decision, y)
    assert params[2, 2] == 1.0
    assert params[2, -1] == 0.0


def test_out_of_fold_stacked_scores_are_never_fitted_on_themselves() -> None:
    rng = np.random.default_rng(2)
    decision, y = _scores(300, rng)
    groups = np.arange(300) % 30
    oof = _stacked_oof(decision, y, groups)
    assert oof.shape == decision.shape
    assert ((oof >= 0) & (oof <= 1)).all()
    # Differs from the in-sample fit (each fold's calibration was fitted without it).
    in_sample = calibrated(decision, _stack(decision, y))
    assert not np.allclose(oof, in_sample)
