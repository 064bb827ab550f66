"""Detection use cases shared by the CLI and the API: train, load, classify inputs.

Importing this module is cheap (no scikit-learn, pydantic or database): `countersign classify`
uses it and starts in well under a second. Training imports what it needs when it runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.errors import AppError
from app.detect.directory import Directory, load_directory
from app.detect.engine import SHIPPED_MODEL_DIR, Detector
from app.mail.parse import email_from_json, email_from_mime
from app.mail.schemas import Email

DEV_FINGERPRINT_KEY = b"countersign-dev-fingerprint-key"


def fingerprint_key() -> bytes:
    """The key for account fingerprints: from the environment, a development default otherwise."""
    value = os.environ.get("COUNTERSIGN_FINGERPRINT_KEY")
    return value.encode() if value else DEV_FINGERPRINT_KEY


def build_detector(
    model_dir: Path | None = None,
    directory_file: Path | None = None,
    thresholds: dict[str, float] | None = None,
) -> Detector:
    """Load the model (checked against its manifest) and the directory once."""
    key = fingerprint_key()
    directory = load_directory(directory_file, key=key) if directory_file else Directory()
    return Detector.from_dir(
        model_dir or SHIPPED_MODEL_DIR,
        directory=directory,
        fingerprint_key=key,
        thresholds=thresholds,
    )


def train_and_save(
    out: Path,
    *,
    budget: float | None = None,
    corpus_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
    jobs: int | None = None,
) -> dict[str, Any]:
    """Train on the corpus's training split, measure on its validation split, save with manifest.

    `budget` defaults to the training module's alert budget, `corpus_dir` to the shipped corpus.
    """
    from app.detect.corpus import CORPUS_DIR, corpus_hash, load_corpus, summarize
    from app.detect.evaluate import evaluate_examples
    from app.detect.model import save_model
    from app.detect.train import DEFAULT_FPR_BUDGET, train_model

    budget = DEFAULT_FPR_BUDGET if budget is None else budget
    corpus_dir = corpus_dir or CORPUS_DIR
    say = progress or (lambda _m: None)
    say("loading corpus")
    examples = load_corpus(corpus_dir)
    train = [e for e in examples if e.split == "train"]
    validation = [e for e in examples if e.split == "validation"]
    result = train_model(train, budget=budget, progress=say, jobs=jobs)
    model = result.model
    model.version = "cs-" + model.parameter_hash()[:12]
    say("evaluating on the validation split")
    figures = evaluate_examples(Detector(model), validation)
    figures.pop("mistakes", None)
    return save_model(
        model,
        out,
        {
            "corpus_sha256": corpus_hash(corpus_dir),
            "corpus": summarize(examples),
            "alert_budget_fpr": budget,
            "validation": figures,
        },
    )


@dataclass(slots=True)
class InputItem:
    """One input of `countersign classify`: where it came from and how to read it."""

    source: str
    kind: str  # "mime-path" | "json"
    payload: str


def parse_item(item: InputItem) -> Email:
    """Turn one input into an Email; raises AppError or ValueError on bad input."""
    if item.kind == "mime-path":
        return email_from_mime(Path(item.payload).read_bytes())
    try:
        data = json.loads(item.payload)
    except json.JSONDecodeError as exc:
        raise AppError(
            f"invalid JSON: {exc.msg} at column {exc.colno}", code="invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise AppError("an Email JSON line must be an object", code="invalid_input")
    return email_from_json(data)


def classify_items(detector: Detector, items: list[InputItem]) -> list[dict[str, Any]]:
    """Verdict JSON for each input, in order; bad inputs get an `error` line, never a crash."""
    out: list[dict[str, Any] | None] = [None] * len(items)
    emails: list[Email] = []
    where: list[int] = []
    for i, item in enumerate(items):
        try:
            emails.append(parse_item(item))
            where.append(i)
        except AppError as exc:
            out[i] = {
                "message_id": None,
                "source": item.source,
                "error": exc.code,
                "detail": exc.detail,
            }
        except (OSError, ValueError, UnicodeError) as exc:
            out[i] = {
                "message_id": None,
                "source": item.source,
                "error": "unreadable",
                "detail": f"{type(exc).__name__}: {str(exc)[:200]}",
            }
    for i, verdict in zip(where, detector.classify_many(emails), strict=True):
        line = verdict.to_json()
        line["source"] = items[i].source
        out[i] = line
    return [line for line in out if line is not None]
