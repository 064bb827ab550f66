"""What the metrics page reports, measured in SQL from tickets and messages over a window of days.

Every figure is computed from the stored rows (DESIGN: "every figure the product reports about
itself is measured, not assumed"); the model's validation figures come from its manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Date, cast, func, select
from sqlalchemy.orm import Session

from app.detect.engine import SHIPPED_MODEL_DIR
from app.detect.intents import INTENTS
from app.detect.model import MANIFEST_NAME
from app.ingest.models import Message
from app.tickets.models import ACTIVE_STATUSES, Ticket, TicketStatus

WINDOWS = (7, 30, 90)
DEFAULT_WINDOW = 7
FALSE_POSITIVE = "false_positive"
OUTCOME_KEYS = ("confirmed_fraud", "verified_legitimate", FALSE_POSITIVE, "expired")
DECIDED = (TicketStatus.VERIFIED_LEGITIMATE.value, TicketStatus.CONFIRMED_FRAUD.value)


def window_days(raw: str | int | None) -> int:
    """The window asked for, if it is one of WINDOWS; else the default."""
    try:
        days = int(str(raw))
    except ValueError:
        return DEFAULT_WINDOW
    return days if days in WINDOWS else DEFAULT_WINDOW


def window_start(days: int, now: datetime) -> datetime:
    """Midnight UTC `days - 1` days before today: the window holds `days` whole calendar days."""
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    return datetime(first.year, first.month, first.day, tzinfo=UTC)


def _utc_day(column: Any) -> Any:
    return cast(func.timezone("UTC", column), Date)


@dataclass(slots=True)
class IntentFigures:
    """The model's validation figures for one intent (from its manifest)."""

    intent: str
    precision: float | None
    recall: float | None
    false_positive_rate: float | None
    support: int | None
    threshold: float | None


@dataclass(slots=True)
class ModelFacts:
    """The loaded model and how it measured on its held-out validation split."""

    version: str
    alert_budget: float | None
    corpus_total: int | None
    validation_emails: int | None
    validation_risky: int | None
    validation_benign: int | None
    recall: float | None
    false_positive_rate: float | None
    hard_negative_fpr: float | None
    per_intent: list[IntentFigures]
    seen: list[tuple[str, int]] = field(default_factory=list)
    """Model versions that gave the verdicts of the window's messages, with counts."""


@dataclass(slots=True)
class MetricsReport:
    """Everything the metrics page shows for one window."""

    days: int
    since: datetime
    now: datetime
    day_list: list[date]
    tickets_by_intent: dict[str, list[int]]
    tickets_opened: int
    verified_count: int
    verify_median: timedelta | None
    verify_p90: timedelta | None
    outcomes: dict[str, int]
    inbound: list[int]
    outbound: list[int]
    alerts: list[int]
    false_positive_emails: int
    expired: int
    closed_late: int
    overdue_now: int
    model: ModelFacts

    @property
    def inbound_total(self) -> int:
        """Inbound emails ingested in the window."""
        return sum(self.inbound)

    @property
    def alert_total(self) -> int:
        """Inbound emails of the window that opened or joined a ticket."""
        return sum(self.alerts)

    @property
    def alert_share(self) -> float | None:
        """Share of inbound emails that opened or joined a ticket (None without email)."""
        return self.alert_total / self.inbound_total if self.inbound_total else None

    @property
    def false_positive_share(self) -> float | None:
        """Share of inbound emails on tickets closed as false positives."""
        return self.false_positive_emails / self.inbound_total if self.inbound_total else None

    @property
    def daily_alert_share(self) -> list[float | None]:
        """The alert share per day (None on days without inbound email)."""
        return [a / n if n else None for a, n in zip(self.alerts, self.inbound, strict=True)]

    @property
    def closed_total(self) -> int:
        """Tickets closed in the window, whatever the outcome."""
        return sum(self.outcomes.values())

    @property
    def sla_breaches(self) -> int:
        """Expired tickets plus tickets decided after their due time."""
        return self.expired + self.closed_late

    @property
    def over_budget(self) -> bool | None:
        """Whether the alert share is above the model's alert budget (None if either is unknown)."""
        share, budget = self.alert_share, self.model.alert_budget
        if share is None or budget is None:
            return None
        return share > budget


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _integer(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def shipped_manifest() -> dict[str, Any]:
    """The manifest of the model shipped with the package ({} when it cannot be read)."""
    try:
        data = json.loads((Path(SHIPPED_MODEL_DIR) / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def model_facts(manifest: dict[str, Any]) -> ModelFacts:
    """The version and validation figures of a model manifest (missing figures are None)."""
    validation = manifest.get("validation") if isinstance(manifest.get("validation"), dict) else {}
    assert isinstance(validation, dict)
    per_intent = validation.get("per_intent") or {}
    thresholds = manifest.get("thresholds") or {}
    corpus = manifest.get("corpus") or {}
    names = [str(n) for n in manifest.get("intents") or INTENTS]
    rows = []
    for name in names:
        figures = per_intent.get(name) if isinstance(per_intent, dict) else None
        figures = figures if isinstance(figures, dict) else {}
        rows.append(
            IntentFigures(
                intent=name,
                precision=_number(figures.get("precision")),
                recall=_number(figures.get("recall")),
                false_positive_rate=_number(figures.get("false_positive_rate")),
                support=_integer(figures.get("support")),
                threshold=_number(thresholds.get(name)) if isinstance(thresholds, dict) else None,
            )
        )
    return ModelFacts(
        version=str(manifest.get("model_version") or "unknown"),
        alert_budget=_number(manifest.get("alert_budget_fpr")),
        corpus_total=_integer(corpus.get("total")) if isinstance(corpus, dict) else None,
        validation_emails=_integer(validation.get("emails")),
        validation_risky=_integer(validation.get("risky")),
        validation_benign=_integer(validation.get("benign")),
        recall=_number(validation.get("recall")),
        false_positive_rate=_number(validation.get("false_positive_rate")),
        hard_negative_fpr=_number(validation.get("hard_negative_fpr")),
        per_intent=rows,
    )


def _tickets_by_intent(
    session: Session, since: datetime, index: dict[date, int]
) -> dict[str, list[int]]:
    day = _utc_day(Ticket.created_at)
    out = {name: [0] * len(index) for name in INTENTS}
    rows = session.execute(
        select(day, Ticket.intent, func.count())
        .where(Ticket.created_at >= since)
        .group_by(day, Ticket.intent)
    )
    for when, intent, count in rows:
        if when in index:
            out.setdefault(str(intent), [0] * len(index))[index[when]] += int(count)
    return out


def _time_to_verify(
    session: Session, since: datetime
) -> tuple[int, timedelta | None, timedelta | None]:
    """How many tickets were decided (legitimate or fraud; false positives excluded) in the
    window, and the median and 90th percentile of created → closed, computed by Postgres."""
    seconds = func.extract("epoch", Ticket.closed_at - Ticket.created_at)
    count, median, p90 = session.execute(
        select(
            func.count(),
            func.percentile_cont(0.5).within_group(seconds),
            func.percentile_cont(0.9).within_group(seconds),
        ).where(
            Ticket.status.in_(DECIDED),
            Ticket.outcome.is_distinct_from(FALSE_POSITIVE),
            Ticket.closed_at >= since,
        )
    ).one()

    def span(value: Any) -> timedelta | None:
        return None if value is None else timedelta(seconds=float(value))

    return int(count), span(median), span(p90)


def _outcomes(session: Session, since: datetime) -> dict[str, int]:
    out = dict.fromkeys(OUTCOME_KEYS, 0)
    rows = session.execute(
        select(Ticket.status, Ticket.outcome, func.count())
        .where(Ticket.closed_at >= since, Ticket.status.not_in([s.value for s in ACTIVE_STATUSES]))
        .group_by(Ticket.status, Ticket.outcome)
    )
    for status, outcome, count in rows:
        key = FALSE_POSITIVE if outcome == FALSE_POSITIVE else str(status)
        if key in out:
            out[key] += int(count)
    return out


def _messages(
    session: Session, since: datetime, index: dict[date, int]
) -> tuple[list[int], list[int], list[int]]:
    """Inbound and outbound emails per day, and inbound emails that opened or joined a ticket."""
    day = _utc_day(Message.received_at)
    inbound, outbound, alerts = [0] * len(index), [0] * len(index), [0] * len(index)
    rows = session.execute(
        select(
            day,
            Message.direction,
            func.count(),
            func.count().filter(Message.ticket_relation.in_(("opened", "attached"))),
        )
        .where(Message.received_at >= since)
        .group_by(day, Message.direction)
    )
    for when, direction, count, flagged in rows:
        if when not in index:
            continue
        if direction == "outbound":
            outbound[index[when]] += int(count)
        else:
            inbound[index[when]] += int(count)
            alerts[index[when]] += int(flagged)
    return inbound, outbound, alerts


def _false_positive_emails(session: Session, since: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Message)
            .join(Ticket, Ticket.id == Message.ticket_id)
            .where(
                Message.received_at >= since,
                Message.direction == "inbound",
                Ticket.outcome == FALSE_POSITIVE,
            )
        )
        or 0
    )


def _sla(session: Session, since: datetime, now: datetime) -> tuple[int, int, int]:
    """(expired in the window, decided after the due time in the window, overdue right now)."""
    expired, late = session.execute(
        select(
            func.count().filter(Ticket.status == TicketStatus.EXPIRED.value),
            func.count().filter(Ticket.status.in_(DECIDED), Ticket.closed_at > Ticket.due_at),
        ).where(Ticket.closed_at >= since)
    ).one()
    overdue = session.scalar(
        select(func.count())
        .select_from(Ticket)
        .where(
            Ticket.status.in_([s.value for s in ACTIVE_STATUSES]),
            Ticket.due_at < now,
        )
    )
    return int(expired), int(late), int(overdue or 0)


def _versions_seen(session: Session, since: datetime) -> list[tuple[str, int]]:
    rows = session.execute(
        select(Message.model_version, func.count())
        .where(Message.received_at >= since)
        .group_by(Message.model_version)
        .order_by(func.count().desc(), Message.model_version)
        .limit(10)
    )
    return [(str(v or "unknown"), int(n)) for v, n in rows]


def build_report(
    session: Session, *, days: int, now: datetime, manifest: dict[str, Any]
) -> MetricsReport:
    """The metrics of the last `days` days (whole UTC days, today included)."""
    since = window_start(days, now)
    day_list = [since.date() + timedelta(days=i) for i in range(days)]
    index = {d: i for i, d in enumerate(day_list)}
    by_intent = _tickets_by_intent(session, since, index)
    verified, median, p90 = _time_to_verify(session, since)
    inbound, outbound, alerts = _messages(session, since, index)
    expired, late, overdue = _sla(session, since, now)
    facts = model_facts(manifest)
    facts.seen = _versions_seen(session, since)
    return MetricsReport(
        days=days,
        since=since,
        now=now,
        day_list=day_list,
        tickets_by_intent=by_intent,
        tickets_opened=sum(sum(v) for v in by_intent.values()),
        verified_count=verified,
        verify_median=median,
        verify_p90=p90,
        outcomes=_outcomes(session, since),
        inbound=inbound,
        outbound=outbound,
        alerts=alerts,
        false_positive_emails=_false_positive_emails(session, since),
        expired=expired,
        closed_late=late,
        overdue_now=overdue,
        model=facts,
    )
