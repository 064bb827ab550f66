"""Quality figures: per-intent precision, recall and false-positive rate, confusion, grammar-pair
flips, per-style and per-language recall, and the flag rate on real legitimate mail."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from app.detect.corpus import Example
from app.detect.engine import Detector, Verdict
from app.detect.intents import INTENTS
from app.mail.parse import email_from_mime

BATCH = 64


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def evaluate_examples(
    detector: Detector, examples: list[Example], progress: Callable[[int], object] | None = None
) -> dict[str, Any]:
    """All figures for labelled examples the model never saw."""
    verdicts: list[Verdict] = []
    for start in range(0, len(examples), BATCH):
        chunk = examples[start : start + BATCH]
        verdicts.extend(detector.classify_many([e.email for e in chunk]))
        if progress:
            progress(len(chunk))
    per_intent = {}
    for intent in INTENTS:
        tp = fp = fn = tn = 0
        for ex, v in zip(examples, verdicts, strict=True):
            predicted = any(i.name == intent for i in v.intents)
            actual = intent in ex.labels
            tp += predicted and actual
            fp += predicted and not actual
            fn += actual and not predicted
            tn += not predicted and not actual
        per_intent[intent] = {
            "support": tp + fn,
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "false_positive_rate": _ratio(fp, fp + tn),
        }
    risky = [(e, v) for e, v in zip(examples, verdicts, strict=True) if e.labels]
    benign = [(e, v) for e, v in zip(examples, verdicts, strict=True) if not e.labels]
    hard = [(e, v) for e, v in benign if e.kind == "hard_negative"]
    caught = [(e, v) for e, v in risky if v.needs_verification]
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    for e, v in zip(examples, verdicts, strict=True):
        confusion[e.labels[0] if e.labels else "benign"][v.top_intent or "none"] += 1

    def recall_by(attr: str) -> dict[str, Any]:
        groups: dict[str, list[bool]] = defaultdict(list)
        for e, v in risky:
            groups[str(getattr(e, attr))].append(v.needs_verification)
        return {
            k: {"n": len(x), "recall": _ratio(sum(x), len(x))} for k, x in sorted(groups.items())
        }

    def fpr_by(attr: str) -> dict[str, Any]:
        groups: dict[str, list[bool]] = defaultdict(list)
        for e, v in benign:
            groups[str(getattr(e, attr))].append(v.needs_verification)
        return {k: {"n": len(x), "fpr": _ratio(sum(x), len(x))} for k, x in sorted(groups.items())}

    pairs: dict[str, list[Verdict]] = defaultdict(list)
    for e, v in zip(examples, verdicts, strict=True):
        if e.pair:
            pairs[e.pair].append(v)
    complete = {k: vs for k, vs in pairs.items() if len(vs) == 2}
    flips = sorted(
        k for k, vs in complete.items() if vs[0].needs_verification != vs[1].needs_verification
    )
    mistakes = [
        {
            "id": e.id,
            "labels": list(e.labels),
            "predicted": [i.name for i in v.intents],
            "scores": {k: round(s, 3) for k, s in v.scores.items() if s >= 0.05},
            "note": e.note,
        }
        for e, v in zip(examples, verdicts, strict=True)
        if bool(e.labels) != v.needs_verification
    ]
    return {
        "emails": len(examples),
        "risky": len(risky),
        "benign": len(benign),
        "hard_negatives": len(hard),
        "recall": _ratio(len(caught), len(risky)),
        "false_positive_rate": _ratio(sum(v.needs_verification for _, v in benign), len(benign)),
        "hard_negative_fpr": _ratio(sum(v.needs_verification for _, v in hard), len(hard)),
        "top_intent_accuracy": _ratio(
            sum(v.top_intent in e.labels for e, v in caught), len(caught)
        ),
        "per_intent": per_intent,
        "confusion": {k: dict(c) for k, c in sorted(confusion.items())},
        "grammar_pairs": len(complete),
        "grammar_pair_flips": len(flips),
        "grammar_pair_flip_rate": _ratio(len(flips), len(complete)),
        "flipped_pairs": flips,
        "recall_by_style": recall_by("style"),
        "recall_by_lang": recall_by("lang"),
        "fpr_by_style": fpr_by("style"),
        "fpr_by_lang": fpr_by("lang"),
        "mistakes": mistakes,
    }


def iter_eml(paths: Iterable[Path]) -> list[Path]:
    """Every message file under the given files and directories, in a stable order."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            )
        elif path.is_file():
            out.append(path)
    return out


def flag_rate(
    detector: Detector, paths: list[Path], progress: Callable[[int], object] | None = None
) -> dict[str, Any]:
    """How many of these emails (all treated as legitimate) would be flagged, and which."""
    flagged: list[dict[str, Any]] = []
    errors = 0
    total = 0
    for start in range(0, len(paths), BATCH):
        chunk = paths[start : start + BATCH]
        emails = []
        names = []
        for path in chunk:
            try:
                emails.append(email_from_mime(path.read_bytes()))
                names.append(path.name)
            except (ValueError, OSError):
                errors += 1
        for name, verdict in zip(names, detector.classify_many(emails), strict=True):
            total += 1
            if verdict.needs_verification:
                flagged.append(
                    {
                        "file": name,
                        "intents": [i.name for i in verdict.intents],
                        "evidence": [s for i in verdict.intents for s in i.evidence][:2],
                    }
                )
        if progress:
            progress(len(chunk))
    return {
        "emails": total,
        "unparseable": errors,
        "flagged": len(flagged),
        "flag_rate": _ratio(len(flagged), total),
        "flagged_files": flagged,
    }
