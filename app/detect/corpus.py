"""The labelled training corpus: loading, validation, grouping of near-duplicates and the split."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from app.detect.intents import INTENTS
from app.detect.normalize import normalize
from app.mail.parse import email_from_json
from app.mail.schemas import Email

CORPUS_DIR = Path(__file__).parent / "corpus"
# Labelled emails written by someone outside the corpus briefs and never trained on: `countersign
# eval` reports them beside the validation split as the closer estimate of quality on new mail.
HOLDOUT_DIR = Path(__file__).parent / "holdout"
KINDS = ("risky", "hard_negative", "benign")
STYLES = ("fluent", "sloppy", "non_native", "terse_mobile", "thread")
LANGS = ("en", "fr", "de", "es", "pt", "nl")
VALIDATION_PERCENT = 20
NEAR_DUP_COSINE = 0.8


class CorpusError(ValueError):
    """A corpus record is malformed."""


@dataclass(slots=True)
class Example:
    """One labelled email of the corpus."""

    id: str
    labels: tuple[str, ...]
    kind: str
    style: str
    lang: str
    industry: str
    pair: str | None
    note: str
    email: Email
    source: str
    group: str = ""
    split: str = "train"
    extra: dict[str, object] = field(default_factory=dict)


def _check(record: dict[str, object], where: str) -> None:
    for key in ("id", "labels", "kind", "style", "lang", "email"):
        if key not in record:
            raise CorpusError(f"{where}: missing {key!r}")
    labels = record["labels"]
    if not isinstance(labels, list) or any(lab not in INTENTS for lab in labels):
        raise CorpusError(f"{where}: labels must be a list of {INTENTS}")
    if record["kind"] not in KINDS:
        raise CorpusError(f"{where}: kind must be one of {KINDS}")
    if (record["kind"] == "risky") != bool(labels):
        raise CorpusError(f"{where}: kind {record['kind']!r} disagrees with labels {labels}")
    if record["style"] not in STYLES:
        raise CorpusError(f"{where}: style must be one of {STYLES}")
    if record["lang"] not in LANGS:
        raise CorpusError(f"{where}: lang must be one of {LANGS}")


def corpus_files(path: Path) -> list[Path]:
    """The labelled files at `path`: the file itself, or a directory's `*.jsonl` files in order."""
    return [path] if path.is_file() else sorted(path.glob("*.jsonl"))


def load_corpus(directory: Path = CORPUS_DIR) -> list[Example]:
    """Every example of every `*.jsonl` file (or of the one file `directory` names), validated,
    grouped and split."""
    examples: list[Example] = []
    seen: set[str] = set()
    for path in corpus_files(directory):
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path.name}:{lineno}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{where}: {exc}") from None
            _check(record, where)
            if record["id"] in seen:
                raise CorpusError(f"{where}: duplicate id {record['id']!r}")
            seen.add(record["id"])
            examples.append(
                Example(
                    id=record["id"],
                    labels=tuple(record["labels"]),
                    kind=record["kind"],
                    style=record["style"],
                    lang=record["lang"],
                    industry=str(record.get("industry") or ""),
                    pair=record.get("pair"),
                    note=str(record.get("note") or ""),
                    email=email_from_json(record["email"]),
                    source=path.name,
                )
            )
    assign_split(examples)
    return examples


def corpus_hash(directory: Path = CORPUS_DIR) -> str:
    """SHA-256 over the corpus files (names and bytes), recorded in the model manifest."""
    digest = hashlib.sha256()
    for path in corpus_files(directory):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def near_duplicate_pairs(
    examples: list[Example], threshold: float = NEAR_DUP_COSINE
) -> list[tuple[int, int, float]]:
    """Index pairs whose newest-message texts are near-duplicates (char 5-gram cosine)."""
    texts = [normalize(e.email.subject + "\n" + e.email.newest) for e in examples]
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(5, 5), min_df=1, dtype=np.float32)
    matrix = vec.fit_transform(texts)
    sims = (matrix @ matrix.T).tocoo()
    return [
        (int(i), int(j), float(v))
        for i, j, v in zip(sims.row, sims.col, sims.data, strict=True)
        if i < j and v >= threshold
    ]


def assign_split(examples: list[Example]) -> None:
    """Group grammar pairs and near-duplicates, then put whole groups on one side of the split.

    The side is a hash of the group's smallest id, so the split is fixed for a given corpus.
    """
    parent = list(range(len(examples)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    by_pair: dict[str, int] = {}
    for i, ex in enumerate(examples):
        if ex.pair:
            if ex.pair in by_pair:
                union(i, by_pair[ex.pair])
            else:
                by_pair[ex.pair] = i
    if len(examples) > 1:
        for i, j, _ in near_duplicate_pairs(examples):
            union(i, j)
    members: dict[int, list[int]] = {}
    for i in range(len(examples)):
        members.setdefault(find(i), []).append(i)
    for idx in members.values():
        key = min(examples[i].id for i in idx)
        bucket = int(hashlib.sha256(key.encode()).hexdigest(), 16) % 100
        split = "validation" if bucket < VALIDATION_PERCENT else "train"
        for i in idx:
            examples[i].group = key
            examples[i].split = split


def summarize(examples: list[Example]) -> dict[str, object]:
    """Counts the corpus requirements are checked against."""
    per_intent = Counter(lab for e in examples for lab in e.labels)
    pairs = Counter(e.pair for e in examples if e.pair)
    return {
        "total": len(examples),
        "per_intent": dict(sorted(per_intent.items())),
        "per_kind": dict(Counter(e.kind for e in examples)),
        "per_style": dict(Counter(e.style for e in examples)),
        "per_lang": dict(Counter(e.lang for e in examples)),
        "per_source": dict(Counter(e.source for e in examples)),
        "per_split": dict(Counter(e.split for e in examples)),
        "grammar_pairs": sum(1 for n in pairs.values() if n == 2),
        "non_english_share": round(
            sum(e.lang != "en" for e in examples) / max(len(examples), 1), 4
        ),
    }
