"""Training is deterministic, and thresholds respect the alert budget."""

from __future__ import annotations

import numpy as np
import pytest

from app.detect import train as train_module
from app.detect.corpus import Example, load_corpus
from app.detect.intents import INTENTS
from app.detect.model import IntentModel, load_model, save_model
from app.detect.train import choose_thresholds, train_model

PER_INTENT = 20
NEGATIVES = 50
PROBE = [
    "please update our bank details, the new iban is below",
    "send me the verification code you just received",
    "lunch on thursday?",
]


def _subset(examples: list[Example]) -> list[Example]:
    """About 150 examples, chosen by id: some of each intent plus benign and hard negatives."""
    ordered = sorted(examples, key=lambda e: e.id)
    chosen: dict[str, Example] = {}
    for intent in INTENTS:
        for ex in [e for e in ordered if e.labels and e.labels[0] == intent][:PER_INTENT]:
            chosen[ex.id] = ex
    for ex in [e for e in ordered if not e.labels][:NEGATIVES]:
        chosen[ex.id] = ex
    return [chosen[k] for k in sorted(chosen)]


@pytest.fixture(scope="module")
def small_corpus() -> list[Example]:
    subset = _subset(load_corpus())
    assert 120 <= len(subset) <= 160
    return subset


@pytest.fixture(scope="module")
def trained_twice(small_corpus) -> tuple[IntentModel, IntentModel]:
    """Two independent trainings on the same examples (two folds, to keep it quick), one in this
    process and one spread over two worker processes."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_module, "FOLDS", 2)
        first = train_model(small_corpus, budget=0.05, jobs=1).model
        second = train_model(small_corpus, budget=0.05, jobs=2).model
    return first, second


def _probe(model: IntentModel) -> np.ndarray:
    return model.predict_proba(PROBE, [""] * len(PROBE))


def test_training_twice_on_the_same_examples_gives_the_same_parameters_and_predictions(
    trained_twice,
):
    first, second = trained_twice

    assert first.parameter_hash() == second.parameter_hash()
    assert np.array_equal(first.thresholds, second.thresholds)
    assert np.array_equal(_probe(first), _probe(second))


def test_training_on_different_examples_gives_a_different_parameter_hash(
    small_corpus, trained_twice, monkeypatch
):
    # Guards the determinism test above against a hash that ignores the parameters.
    monkeypatch.setattr(train_module, "FOLDS", 2)

    fewer = train_model(small_corpus[5:], budget=0.05).model

    assert fewer.parameter_hash() != trained_twice[0].parameter_hash()


def test_freshly_trained_model_saved_and_reloaded_predicts_the_same(trained_twice, tmp_path):
    model = trained_twice[0]
    model.version = "test-" + model.parameter_hash()[:8]

    manifest = save_model(model, tmp_path, {})
    reloaded = load_model(tmp_path)

    assert manifest["parameter_hash"] == model.parameter_hash()
    assert reloaded.parameter_hash() == model.parameter_hash()
    assert np.array_equal(_probe(reloaded), _probe(model))


def _synthetic(seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores of 200 benign emails (low, with a few high outliers) and 20 risky emails per
    intent (high on their own intent)."""
    rng = np.random.default_rng(seed)
    k = len(INTENTS)
    benign = rng.uniform(0.0, 0.3, size=(200, k))
    benign[:4, 0] = [0.7, 0.75, 0.8, 0.9]  # hard negatives that look like payment changes
    risky_rows, labels = [], []
    for j in range(k):
        rows = rng.uniform(0.0, 0.3, size=(20, k))
        rows[:, j] = rng.uniform(0.6, 0.99, size=20)
        risky_rows.append(rows)
        y = np.zeros((20, k), dtype=np.int8)
        y[:, j] = 1
        labels.append(y)
    scores = np.vstack([benign, *risky_rows])
    y = np.vstack([np.zeros((200, k), dtype=np.int8), *labels])
    is_benign = np.array([True] * 200 + [False] * (20 * k))
    return scores, y, is_benign


def _flagged(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    return (scores >= thresholds).any(axis=1)


@pytest.mark.parametrize("budget", [0.0, 0.01, 0.05])
def test_chosen_thresholds_flag_no_more_benign_emails_than_the_budget(budget):
    scores, y, benign = _synthetic()

    thresholds = choose_thresholds(scores, y, benign, budget)

    flagged = _flagged(scores, thresholds)
    assert flagged[benign].mean() <= budget
    assert thresholds.shape == (len(INTENTS),)


def test_chosen_thresholds_catch_risky_emails_that_score_above_every_benign_email():
    scores, y, benign = _synthetic()

    thresholds = choose_thresholds(scores, y, benign, 0.01)

    flagged = _flagged(scores, thresholds)
    easy = ~benign & (scores.max(axis=1) > 0.9)
    assert easy.sum() > 10
    assert flagged[easy].all()
    for j in range(1, len(INTENTS)):
        # Intents with no benign look-alikes catch every risky email (all score >= 0.6 > 0.3).
        assert flagged[~benign & (y[:, j] == 1)].all(), INTENTS[j]


def test_thresholds_never_flag_benign_emails_when_the_budget_is_zero():
    scores, y, benign = _synthetic()

    thresholds = choose_thresholds(scores, y, benign, 0.0)

    assert not _flagged(scores, thresholds)[benign].any()
    assert thresholds[0] > 0.9  # above the highest payment-change look-alike
