"""/dashboard/metrics: tickets, time to verify, outcomes, alert volume, SLA and the model."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import Response
from markupsafe import Markup

from app.core.db import utcnow
from app.core.deps import DbSession
from app.dashboard import charts, labels
from app.dashboard.auth import CurrentAuth
from app.dashboard.metrics_service import (
    OUTCOME_KEYS,
    WINDOWS,
    MetricsReport,
    build_report,
    shipped_manifest,
    window_days,
)
from app.dashboard.web import dashboard_router, render

router = dashboard_router()


def _manifest(request: Request) -> dict[str, Any]:
    """The manifest of the model the service has loaded, else the shipped one."""
    detector = getattr(request.app.state, "detector", None)
    manifest = getattr(getattr(detector, "model", None), "manifest", None)
    return manifest if isinstance(manifest, dict) and manifest else shipped_manifest()


def _day(d: date) -> str:
    return f"{d:%d %b}"


def duration(value: timedelta | None) -> str:
    """A time to verify in words ("no data" when nothing was decided)."""
    return "no data" if value is None else labels.duration_words(value)


def percent(value: float | None, digits: int = 1) -> str:
    """A share as a percentage ("n/a" when unknown)."""
    if value is None:
        return "n/a"
    shown = f"{100 * value:.{digits}f}"
    if "." in shown:
        shown = shown.rstrip("0").rstrip(".")
    return f"{shown}%"


def chart_set(report: MetricsReport) -> dict[str, Markup]:
    """The page's four charts, rendered as SVG."""
    days = [_day(d) for d in report.day_list]
    window = f"the last {report.days} days"
    intents = [
        charts.Series(
            key=name,
            label=labels.intent_title(name),
            colour=charts.INTENT_COLOURS.get(name, charts.FALLBACK),
            values=values,
        )
        for name, values in report.tickets_by_intent.items()
    ]
    outcome_bars = [
        charts.Bar(
            key=key,
            label=labels.status_label(key),
            colour=charts.OUTCOME_COLOURS[key],
            value=report.outcomes.get(key, 0),
        )
        for key in OUTCOME_KEYS
    ]
    budget_words = "alert budget"
    return {
        "tickets": charts.stacked_bars(
            chart_id="chart-tickets",
            title="Tickets opened per day, by request",
            description=(
                f"{report.tickets_opened} tickets opened in {window}, stacked by the kind of "
                "request that opened them."
            ),
            labels=days,
            series=intents,
            empty="No tickets opened in this window",
        ),
        "outcomes": charts.horizontal_bars(
            chart_id="chart-outcomes",
            title="How closed tickets ended",
            description=(
                f"{report.closed_total} tickets closed in {window}: "
                + ", ".join(f"{b.label.lower()} {int(b.value)}" for b in outcome_bars)
                + "."
            ),
            bars=outcome_bars,
            empty="No tickets closed in this window",
        ),
        "alerts": charts.rate_bars(
            chart_id="chart-alerts",
            title="Share of inbound email that opened or joined a ticket",
            description=(
                f"{report.alert_total} of {report.inbound_total} inbound emails "
                f"({percent(report.alert_share, 2)}) opened or joined a ticket in {window}; "
                f"the model's {budget_words} is {percent(report.model.alert_budget, 2)}."
            ),
            labels=days,
            rates=report.daily_alert_share,
            counts=list(zip(report.alerts, report.inbound, strict=True)),
            budget=report.model.alert_budget,
            bar_label="Emails that opened or joined a ticket",
            budget_label="Alert budget",
        ),
        "messages": charts.stacked_bars(
            chart_id="chart-messages",
            title="Emails ingested per day",
            description=(
                f"{report.inbound_total} inbound and {sum(report.outbound)} outbound emails "
                f"ingested in {window}."
            ),
            labels=days,
            series=[
                charts.Series("inbound", "Inbound", charts.INBOUND, report.inbound),
                charts.Series("outbound", "Outbound", charts.OUTBOUND, report.outbound),
            ],
            empty="No email ingested in this window",
        ),
    }


@router.get("/metrics", name="dashboard-metrics")
def metrics_page(
    request: Request,
    session: DbSession,
    auth: CurrentAuth,
    days: Annotated[str, Query(max_length=8)] = "",
) -> Response:
    """Measured figures for the last 7, 30 or 90 days (any signed-in user)."""
    report = build_report(
        session, days=window_days(days), now=utcnow(), manifest=_manifest(request)
    )
    return render(
        request,
        "metrics.html",
        {
            "nav": "metrics",
            "report": report,
            "charts": chart_set(report),
            "windows": WINDOWS,
            "duration": duration,
            "percent": percent,
            "day": _day,
        },
    )
