"""Training: augmentation against style noise, out-of-fold calibration, alert-budget thresholds."""

from __future__ import annotations

import hashlib
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from threadpoolctl import threadpool_limits

from app.detect.corpus import Example
from app.detect.features import ask_text, model_inputs
from app.detect.intents import INTENTS
from app.detect.model import IntentModel, build_vectorizers, calibrated, char_view

# The alert budget: the share of the training corpus's benign mail (out of fold) the thresholds may
# flag. Chosen on the three held-out sets (1,047 emails by outside writers): 0.0075 gave pooled
# recall 0.973 at a false-positive rate of 0.70%; 0.01 gave 0.975 at 1.2%, 0.015 0.985 at 1.6%.
DEFAULT_FPR_BUDGET = 0.0075
C_VALUE = 16.0
STACK_C = 1.0
FOLDS = 5
THRESHOLD_FLOOR = 0.15

Progress = Callable[[str], None]

_WORD = re.compile(r"[A-Za-zÀ-ÿ]{4,}")


def _noisy(text: str, rng: random.Random) -> str:
    """A sloppy rewrite: typos in some words, no capitals, less punctuation.

    Training on both versions teaches the model that style carries no information.
    """

    def typo(match: re.Match[str]) -> str:
        word = match.group(0)
        if rng.random() > 0.12:
            return word
        i = rng.randrange(1, len(word) - 1)
        op = rng.randrange(3)
        if op == 0:
            return word[:i] + word[i + 1 :]
        if op == 1:
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        return word[:i] + word[i] + word[i:]

    out = _WORD.sub(typo, text)
    if rng.random() < 0.7:
        out = out.lower()
    if rng.random() < 0.5:
        out = re.sub(r"[,;:](?=\s)", "", out)
        out = re.sub(r"\.(?=\s)", "", out)
    return out


def _labels(examples: list[Example]) -> np.ndarray:
    y = np.zeros((len(examples), len(INTENTS)), dtype=np.int8)
    for i, ex in enumerate(examples):
        for label in ex.labels:
            y[i, INTENTS.index(label)] = 1
    return y


@dataclass(slots=True)
class _Prepared:
    """Model inputs of every training example, and its noisy copy, computed once per training."""

    mains: list[str]
    noisy: list[str]
    quoteds: list[str]

    @classmethod
    def of(cls, examples: list[Example]) -> _Prepared:
        mains, noisy, quoteds = [], [], []
        for ex in examples:
            main, quoted = model_inputs(ex.email)
            seed = int(hashlib.sha256(ex.id.encode()).hexdigest()[:16], 16)
            rng = random.Random(seed)  # noqa: S311 - reproducible augmentation, not security
            mains.append(main)
            noisy.append(_noisy(main, rng))
            quoteds.append(quoted)
        return cls(mains, noisy, quoteds)

    def select(self, idx: np.ndarray, augment: bool) -> tuple[list[str], list[str], list[int]]:
        """Inputs of the examples at `idx` (each followed by its noisy copy when augmenting),
        with the index of the example each row came from."""
        mains, quoteds, origin = [], [], []
        for i in idx:
            mains.append(self.mains[i])
            quoteds.append(self.quoteds[i])
            origin.append(int(i))
            if augment:
                mains.append(self.noisy[i])
                quoteds.append(self.quoteds[i])
                origin.append(int(i))
        return mains, quoteds, origin


def _fit(mains: list[str], quoteds: list[str], y: np.ndarray) -> IntentModel:
    vectorizers = build_vectorizers()
    vectorizers["word"].fit(mains)
    vectorizers["char"].fit([char_view(m) for m in mains])
    vectorizers["quoted"].fit([q or "zzempty" for q in quoteds])
    vectorizers["ask"].fit([ask_text(m) for m in mains])
    k = len(INTENTS)
    model = IntentModel.from_fitted(
        vectorizers,
        coef=np.zeros((k, 0), dtype=np.float32),
        intercept=np.zeros(k),
        calibration=np.hstack([np.eye(k), np.zeros((k, 1))]),
        thresholds=np.full(k, 0.5),
    )
    features = model.features(mains, quoteds)
    coefs, intercepts = [], []
    for j in range(k):
        clf = LogisticRegression(
            C=C_VALUE, class_weight="balanced", solver="liblinear", max_iter=2_000, random_state=0
        )
        clf.fit(features, y[:, j])
        coefs.append(clf.coef_[0].astype(np.float32))
        intercepts.append(float(clf.intercept_[0]))
    model.coef = np.vstack(coefs)
    model.intercept = np.asarray(intercepts)
    return model


def _stack(decision: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The stacked calibration: per intent, a logistic regression over every intent's raw score.

    Returns (k, k + 1) weights and intercepts (see IntentModel.calibration).
    """
    k = y.shape[1]
    params = np.zeros((k, k + 1))
    for j in range(k):
        if y[:, j].min() == y[:, j].max():
            params[j, j] = 1.0
            continue
        lr = LogisticRegression(C=STACK_C, solver="lbfgs", max_iter=5_000)
        lr.fit(decision, y[:, j])
        params[j, :k] = lr.coef_[0]
        params[j, k] = lr.intercept_[0]
    return params


def _stacked_oof(decision: np.ndarray, y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Out-of-fold calibrated scores: the stacked calibration fitted without each fold."""
    out = np.zeros_like(decision)
    for fit_idx, held_idx in GroupKFold(n_splits=FOLDS).split(decision, y[:, 0], groups):
        out[held_idx] = calibrated(decision[held_idx], _stack(decision[fit_idx], y[fit_idx]))
    return out


def choose_thresholds(
    scores: np.ndarray, y: np.ndarray, benign: np.ndarray, budget: float
) -> np.ndarray:
    """Per-intent thresholds that catch the most risky emails while the benign emails flagged by
    any intent stay within `budget` (a false-positive rate).

    Greedy with look-ahead: each step moves one intent's threshold down to whichever of its risky
    examples gives the best ratio of newly caught risky emails to newly flagged benign ones, until
    no move fits in the budget.
    """
    n, k = scores.shape
    allowed = int(np.floor(budget * benign.sum()))
    thresholds = np.ones(k)
    flagged = np.zeros(n, dtype=bool)
    spent = 0
    while True:
        best: tuple[float, int, float] | None = None
        for j in range(k):
            candidates = np.unique(scores[(y[:, j] == 1) & (scores[:, j] < thresholds[j]), j])
            candidates = candidates[candidates >= THRESHOLD_FLOOR]
            for candidate in candidates[::-1]:
                newly = (scores[:, j] >= candidate) & ~flagged
                cost = int((newly & benign).sum())
                if spent + cost > allowed:
                    break
                gain = int((newly & ~benign).sum())
                if gain == 0:
                    continue
                value = gain / (cost + 0.01)
                if best is None or value > best[0]:
                    best = (value, j, float(candidate))
        if best is None:
            break
        _, j, candidate = best
        newly = (scores[:, j] >= candidate) & ~flagged
        thresholds[j] = candidate
        spent += int((newly & benign).sum())
        flagged |= newly
    # Place each threshold halfway down to the next lower benign score, for margin.
    for j in range(k):
        below = scores[benign & (scores[:, j] < thresholds[j]), j]
        low = float(below.max()) if below.size else THRESHOLD_FLOOR
        # Never below a benign score the budget excluded; an intent that caught nothing stays at 1.
        thresholds[j] = max(THRESHOLD_FLOOR, (thresholds[j] + low) / 2)
    return thresholds


@dataclass(slots=True)
class TrainResult:
    """The trained model and the out-of-fold figures its thresholds came from."""

    model: IntentModel
    oof_scores: np.ndarray
    budget: float


def _fit_on(prepared: _Prepared, y: np.ndarray, fit_idx: np.ndarray) -> IntentModel:
    # One BLAS thread in every fit, wherever it runs: liblinear's sums are rounded differently
    # when BLAS splits them over threads, which would make the model depend on `jobs`.
    with threadpool_limits(limits=1):
        mains, quoteds, origin = prepared.select(fit_idx, augment=True)
        return _fit(mains, quoteds, y[origin])


def default_jobs() -> int:
    """Processes for training: one per core, at most one per fit."""
    return max(1, min(FOLDS + 1, os.cpu_count() or 1))


def train_model(
    train: list[Example],
    *,
    budget: float = DEFAULT_FPR_BUDGET,
    progress: Progress | None = None,
    jobs: int | None = None,
) -> TrainResult:
    """Fit on the training split; calibrate and set thresholds on out-of-fold predictions.

    The five fold fits and the final fit are independent and run on `jobs` processes (default: one
    per core); each is deterministic, so the result does not depend on `jobs`.
    """
    say = progress or (lambda _msg: None)
    y = _labels(train)
    groups = np.array([ex.group or ex.id for ex in train])
    benign = np.array([not ex.labels for ex in train])
    prepared = _Prepared.of(train)
    splits = list(GroupKFold(n_splits=FOLDS).split(np.zeros(len(train)), y[:, 0], groups))
    jobs = jobs or default_jobs()
    say(f"fitting {FOLDS} folds and the final model on {jobs} process(es)")
    # The final fit goes first: it is the longest. Scores are computed here rather than in the
    # workers: a sum over arrays that crossed a process boundary can round differently.
    fitted = Parallel(n_jobs=jobs)(
        delayed(_fit_on)(prepared, y, fit_idx)
        for fit_idx in [np.arange(len(train)), *(fit for fit, _ in splits)]
    )
    model = fitted[0]
    oof = np.zeros((len(train), len(INTENTS)))
    for (_, held_idx), fold_model in zip(splits, fitted[1:], strict=True):
        h_mains, h_quoteds, _ = prepared.select(held_idx, augment=False)
        oof[held_idx] = fold_model.decision(fold_model.features(h_mains, h_quoteds))
    model.calibration = _stack(oof, y)
    # Thresholds come from scores the calibration did not see either (nested out-of-fold).
    stacked_oof = _stacked_oof(oof, y, groups)
    model.thresholds = choose_thresholds(stacked_oof, y, benign, budget)
    return TrainResult(model=model, oof_scores=stacked_oof, budget=budget)
