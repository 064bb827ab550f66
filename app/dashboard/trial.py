"""Try an email: classify a pasted or uploaded email and explain the verdict; nothing is stored."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from app.core.errors import InvalidInput
from app.dashboard import labels
from app.dashboard.text import display_text, highlight
from app.dashboard.views import EvidenceView, SignalView
from app.detect.directory import Directory
from app.detect.engine import Detector
from app.detect.signals import HIGH_SEVERITY
from app.mail.parse import email_from_json, email_from_mime
from app.mail.schemas import Email

MAX_SAMPLE_BYTES = 1_000_000


@dataclass(slots=True)
class TrialResult:
    """The verdict for one sample, with the email as detection read it."""

    verdict: dict[str, Any]
    email: Email
    intents: list[EvidenceView]
    signals: list[SignalView]
    subject: Markup
    body: Markup
    quoted: Markup | None
    supplied: dict[str, list[str]]


def parse_sample(raw: bytes) -> Email:
    """An Email from Email JSON (starts with `{`) or raw RFC 5322 MIME; 422 naming the problem."""
    if len(raw) > MAX_SAMPLE_BYTES:
        raise InvalidInput(f"an email to try is limited to {MAX_SAMPLE_BYTES:,} bytes")
    if not raw.strip():
        raise InvalidInput("paste an email (Email JSON or raw MIME) or choose an .eml file")
    if raw.lstrip().startswith(b"{"):
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"this is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidInput("Email JSON must be an object")
        return email_from_json(data)
    return email_from_mime(raw)


def try_email(detector: Detector, raw: bytes, *, directory: Directory | None) -> TrialResult:
    """Classify one sample as the webhook would (without sender history), storing nothing."""
    email = parse_sample(raw)
    verdict = detector.classify(email, directory=directory)
    out = verdict.to_json()
    intents = [
        EvidenceView(intent=i.name, score=i.score, sentences=[display_text(s) for s in i.evidence])
        for i in verdict.intents
    ]
    needles = [s for i in intents for s in i.sentences]
    supplied = out.get("supplied_by_email") or {}
    return TrialResult(
        verdict=out,
        email=email,
        intents=intents,
        signals=[
            SignalView(
                name=s.name,
                title=labels.signal_title(s.name),
                detail=display_text(s.detail),
                high=s.name in HIGH_SEVERITY,
            )
            for s in verdict.signals
        ],
        subject=highlight(display_text(email.subject), needles),
        body=highlight(display_text(email.newest), needles),
        quoted=highlight(display_text(email.quoted), needles) if email.quoted.strip() else None,
        supplied={
            key: [display_text(str(v)) for v in supplied.get(key) or []]
            for key in ("accounts", "phones", "links")
        },
    )
