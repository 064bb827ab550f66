"""Every real-world message in the shared corpora parses (skipped when the corpora are absent)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.mail.parse import email_from_mime
from app.mail.schemas import Email

CORPORA = Path(__file__).resolve().parents[2].parent / "shared" / "corpora"
# A guard against a hang or a pathological slowdown, not a performance target: messages here
# parse in milliseconds, and speed is measured by the benchmarks under scripts/.
MAX_SECONDS_PER_MESSAGE = 2.0


@pytest.mark.corpus
def test_every_corpus_message_parses_in_bounded_time():
    if not CORPORA.is_dir():
        pytest.skip(f"shared corpora not present at {CORPORA}")
    paths = sorted(CORPORA.rglob("*.eml"))
    if not paths:
        pytest.skip(f"no .eml files under {CORPORA}")

    failures: list[str] = []
    slow: list[str] = []
    for path in paths:
        raw = path.read_bytes()
        started = time.perf_counter()
        try:
            parsed = email_from_mime(raw)
        except Exception as exc:
            failures.append(f"{path.relative_to(CORPORA)}: {type(exc).__name__}: {exc}")
            continue
        elapsed = time.perf_counter() - started
        if not isinstance(parsed, Email):
            failures.append(f"{path.relative_to(CORPORA)}: returned {type(parsed).__name__}")
        if elapsed > MAX_SECONDS_PER_MESSAGE:
            slow.append(f"{path.relative_to(CORPORA)}: {elapsed:.2f}s")

    assert not failures, f"{len(failures)} of {len(paths)} failed:\n" + "\n".join(failures[:20])
    assert not slow, "parses slower than the hang guard:\n" + "\n".join(slow[:20])
