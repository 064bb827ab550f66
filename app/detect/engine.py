"""The detector: intents from the model, signals from metadata, evidence, and the verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.detect.directory import Directory
from app.detect.features import body_text, model_inputs, sentences
from app.detect.intents import BANNERS
from app.detect.model import IntentModel, load_model
from app.detect.normalize import normalize
from app.detect.signals import HIGH_SEVERITY, SenderHistory, Signal, evaluate_signals
from app.mail.artifacts import (
    Artifacts,
    account_label,
    extract_artifacts,
    load_suffix_list,
    mask_numbers,
)
from app.mail.html import html_links_of
from app.mail.schemas import Email

SHIPPED_MODEL_DIR = Path(__file__).parent / "model"
EVIDENCE_PER_INTENT = 2
HOLD_RISK = 0.85


@dataclass(slots=True)
class IntentScore:
    """One detected intent with its calibrated score and the sentences that drove it."""

    name: str
    score: float
    evidence: list[str]


@dataclass(slots=True)
class Verdict:
    """What the gateway is told about one email (the Verdict JSON contract)."""

    message_id: str
    needs_verification: bool
    action: str
    risk: float
    severity: str
    intents: list[IntentScore]
    signals: list[Signal]
    banner: str | None
    model_version: str
    artifacts: Artifacts | None = None
    ticket: dict[str, Any] | None = None
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def top_intent(self) -> str | None:
        """The highest-scoring detected intent."""
        return self.intents[0].name if self.intents else None

    def to_json(self) -> dict[str, Any]:
        """The Verdict JSON of DESIGN.md (plus `severity` and `supplied_by_email`)."""
        out: dict[str, Any] = {
            "message_id": self.message_id,
            "needs_verification": self.needs_verification,
            "action": self.action,
            "risk": round(self.risk, 4),
            "severity": self.severity,
            "intents": [
                {
                    "name": i.name,
                    "score": round(i.score, 4),
                    "evidence": [mask_numbers(e) for e in i.evidence],
                }
                for i in self.intents
            ],
            "signals": [s.to_json() for s in self.signals],
            "banner": self.banner,
            "ticket": self.ticket,
            "model_version": self.model_version,
        }
        if self.artifacts is not None and self.needs_verification:
            out["supplied_by_email"] = {
                "accounts": [account_label(a) for a in self.artifacts.accounts],
                "phones": self.artifacts.phones,
                "links": [link.defanged for link in self.artifacts.links[:10]],
                "note": "supplied by the email: do not use",
            }
        return out


class Detector:
    """Loads the model once and classifies emails, one at a time or in batches."""

    def __init__(
        self,
        model: IntentModel,
        *,
        directory: Directory | None = None,
        fingerprint_key: bytes = b"countersign-dev-fingerprint-key",
        thresholds: dict[str, float] | None = None,
    ) -> None:
        self.model = model
        self.directory = directory or Directory()
        self.key = fingerprint_key
        self.thresholds = np.array(
            [
                float((thresholds or {}).get(name, t))
                for name, t in zip(model.intents, model.thresholds, strict=True)
            ]
        )

    @classmethod
    def from_dir(cls, model_dir: Path | None = None, **kwargs: Any) -> Detector:
        """A detector over a model directory (default: the model shipped with the package)."""
        return cls(load_model(model_dir or SHIPPED_MODEL_DIR), **kwargs)

    def warm_up(self) -> None:
        """Build now what classifying builds on first use (the model's scorer, the public-suffix
        list): before forking workers, so that they share one copy instead of each building its
        own."""
        self.model.warm_up()
        load_suffix_list()

    @property
    def model_version(self) -> str:
        """Version of the loaded model."""
        return self.model.version

    def classify(
        self,
        email: Email,
        *,
        history: SenderHistory | None = None,
        directory: Directory | None = None,
    ) -> Verdict:
        """The verdict for one email (`directory` overrides the detector's own snapshot)."""
        return self.classify_many([email], histories=[history], directory=directory)[0]

    def classify_many(
        self,
        emails: list[Email],
        histories: list[SenderHistory | None] | None = None,
        *,
        directory: Directory | None = None,
    ) -> list[Verdict]:
        """Verdicts for a batch: one vectorisation and one matrix product for all of them."""
        inputs = [model_inputs(e) for e in emails]
        probs = self.model.predict_proba([m for m, _ in inputs], [q for _, q in inputs])
        hist = histories or [None] * len(emails)
        directory = directory or self.directory
        return [
            self._verdict(e, p, h, directory) for e, p, h in zip(emails, probs, hist, strict=True)
        ]

    def _evidence(self, email: Email, intent_idx: list[int]) -> dict[int, list[str]]:
        found = sentences(email.subject + "\n" + body_text(email))
        if not found or not intent_idx:
            return {}
        decision = self.model.sentence_decisions([normalize(s) for s in found])
        out = {}
        for j in intent_idx:
            order = np.argsort(-decision[:, j], kind="stable")[:EVIDENCE_PER_INTENT]
            out[j] = [
                found[i] for i in order if decision[i, j] > decision[:, j].min() or len(found) == 1
            ]
        return out

    def _verdict(
        self,
        email: Email,
        probs: np.ndarray,
        history: SenderHistory | None,
        directory: Directory,
    ) -> Verdict:
        flagged = [j for j in np.argsort(-probs, kind="stable") if probs[j] >= self.thresholds[j]]
        # Artifacts only matter for risky emails (evidence, "supplied by the email", details that
        # differ from file); most mail is not risky, so they are not extracted for it.
        artifacts = (
            Artifacts()
            if not flagged
            else extract_artifacts(
                email.newest + "\n" + email.subject, key=self.key, html_links=html_links_of(email)
            )
        )
        signals = evaluate_signals(email, artifacts, directory, history)
        needs = bool(flagged)
        evidence = self._evidence(email, flagged) if needs else {}
        intents = [
            IntentScore(self.model.intents[j], float(probs[j]), evidence.get(j, []))
            for j in flagged
        ]
        top = float(probs.max()) if probs.size else 0.0
        if needs:
            keep = 1.0
            for s in signals:
                keep *= 1.0 - s.weight
            risk = top + (1.0 - top) * (1.0 - keep)
            high = any(s.name in HIGH_SEVERITY for s in signals)
            # Severity says how suspicious the sender side looks (the request itself always needs
            # verification): high-severity signals, other signals, or none.
            severity = "high" if high else ("medium" if signals else "low")
            action = "hold" if high or (risk >= HOLD_RISK and signals) else "banner"
            banner = BANNERS[intents[0].name]
        else:
            # Below every threshold: the score itself, scaled so it never reads as an alert.
            risk = top * 0.5
            severity = "none"
            action = "deliver"
            banner = None
        return Verdict(
            message_id=email.message_id,
            needs_verification=needs,
            action=action,
            risk=min(1.0, risk),
            severity=severity,
            intents=intents,
            signals=signals,
            banner=banner,
            model_version=self.model.version,
            artifacts=artifacts,
            scores={name: float(p) for name, p in zip(self.model.intents, probs, strict=True)},
        )
