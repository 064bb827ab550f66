"""The metrics page: figures measured from tickets and emails, charts as safe SVG."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import utcnow
from app.dashboard import charts
from app.ingest.models import Message
from app.tickets.models import Ticket

NOW = utcnow()


@pytest.fixture
def add_ticket(committed: sessionmaker[Session]) -> Callable[..., Ticket]:
    """Insert a ticket with chosen times (committed, so the app sees it)."""

    def add(
        *,
        opened: datetime,
        status: str = "open",
        closed: datetime | None = None,
        outcome: str | None = None,
        due: datetime | None = None,
        intent: str = "payment_change",
    ) -> Ticket:
        with committed() as s, s.begin():
            ticket = Ticket(
                intent=intent,
                status=status,
                request_key=uuid.uuid4().hex,
                created_at=opened,
                updated_at=closed or opened,
                due_at=due or opened + timedelta(hours=24),
                closed_at=closed,
                outcome=outcome or (status if closed else None),
            )
            s.add(ticket)
        return ticket

    return add


@pytest.fixture
def add_message(committed: sessionmaker[Session]) -> Callable[..., None]:
    """Insert an ingested email received at a chosen time."""

    def add(
        *,
        received: datetime,
        relation: str | None = None,
        direction: str = "inbound",
        ticket: Ticket | None = None,
    ) -> None:
        with committed() as s, s.begin():
            s.add(
                Message(
                    source="gw",
                    message_id=f"<{uuid.uuid4().hex}@example.com>",
                    direction=direction,
                    received_at=received,
                    ticket_relation=relation,
                    ticket_id=ticket.id if ticket else None,
                    model_version="cs-test",
                )
            )

    return add


def _text_of(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    assert found, f"no element {element_id}"
    return " ".join(found.group(1).split())


def _svgs(html: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", html, re.S)


def _bar_value(svg: str, key: str) -> str:
    found = re.search(rf'class="bar bar-{key}" data-value="([^"]+)"', svg)
    assert found, f"no bar {key}"
    return found.group(1)


@pytest.fixture
def page(signed_in: TestClient) -> Callable[..., str]:
    """GET the metrics page (200) and return its HTML."""

    def get(**params: Any) -> str:
        r = signed_in.get("/dashboard/metrics", params=params)
        assert r.status_code == 200, r.text
        return r.text

    return get


def test_median_and_90th_percentile_time_to_verify_are_computed_from_closed_tickets(
    page: Callable[..., str], add_ticket: Callable[..., Ticket]
) -> None:
    opened = NOW - timedelta(hours=10)
    add_ticket(opened=opened, status="verified_legitimate", closed=opened + timedelta(hours=1))
    add_ticket(opened=opened, status="confirmed_fraud", closed=opened + timedelta(hours=3))
    add_ticket(opened=opened)  # still open: not decided
    html = page()
    assert _text_of(html, "stat-tickets") == "3"
    # Median of 1 h and 3 h; 90th percentile interpolated: 1 h + 0.9 × 2 h = 2 h 48 min.
    assert _text_of(html, "verify-median") == "2 h"
    assert _text_of(html, "verify-p90") == "2 h 48 min"
    assert _text_of(html, "verify-count") == "over 2 decided tickets"


def test_false_positives_are_an_outcome_but_not_a_time_to_verify(
    page: Callable[..., str], add_ticket: Callable[..., Ticket]
) -> None:
    opened = NOW - timedelta(hours=5)
    add_ticket(opened=opened, status="verified_legitimate", closed=opened + timedelta(hours=2))
    add_ticket(
        opened=opened,
        status="verified_legitimate",
        closed=opened + timedelta(minutes=5),
        outcome="false_positive",
    )
    add_ticket(opened=opened - timedelta(days=1), status="expired", closed=opened)
    html = page()
    assert _text_of(html, "verify-median") == "2 h"
    outcomes = next(s for s in _svgs(html) if 'id="chart-outcomes"' in s)
    assert _bar_value(outcomes, "false_positive") == "1"
    assert _bar_value(outcomes, "verified_legitimate") == "1"
    assert _bar_value(outcomes, "expired") == "1"
    assert _bar_value(outcomes, "confirmed_fraud") == "0"


def test_alert_share_is_measured_against_the_models_budget(
    page: Callable[..., str],
    add_message: Callable[..., None],
    add_ticket: Callable[..., Ticket],
    shipped_manifest: dict[str, Any],
) -> None:
    ticket = add_ticket(
        opened=NOW - timedelta(hours=1),
        status="verified_legitimate",
        closed=NOW,
        outcome="false_positive",
    )
    add_message(received=NOW - timedelta(hours=1), relation="opened", ticket=ticket)
    for _ in range(3):
        add_message(received=NOW - timedelta(hours=1))
    add_message(received=NOW - timedelta(hours=1), direction="outbound")
    html = page()
    budget = shipped_manifest["alert_budget_fpr"]
    assert _text_of(html, "alert-inbound") == "4"
    assert _text_of(html, "alert-count") == "1 (25%)"
    assert _text_of(html, "alert-false-positives") == "1 (25%)"
    assert _text_of(html, "alert-budget").startswith(f"{100 * budget:g}%")
    assert 'id="alert-over-budget"' in html
    alerts = next(s for s in _svgs(html) if 'id="chart-alerts"' in s)
    assert _bar_value(alerts, "alert-share") == "25%"
    assert 'class="budget-line"' in alerts
    messages = next(s for s in _svgs(html) if 'id="chart-messages"' in s)
    assert _bar_value(messages, "inbound") == "4"
    assert _bar_value(messages, "outbound") == "1"


def test_sla_breaches_count_expired_late_and_overdue_tickets(
    page: Callable[..., str], add_ticket: Callable[..., Ticket]
) -> None:
    opened = NOW - timedelta(hours=30)
    add_ticket(opened=opened, status="expired", closed=opened + timedelta(hours=24))
    add_ticket(
        opened=opened,
        status="confirmed_fraud",
        closed=opened + timedelta(hours=6),
        due=opened + timedelta(hours=4),
    )
    add_ticket(
        opened=opened,
        status="verified_legitimate",
        closed=opened + timedelta(hours=1),
        due=opened + timedelta(hours=4),
    )
    add_ticket(opened=opened, due=opened + timedelta(hours=2))  # open and overdue
    add_ticket(opened=NOW, due=NOW + timedelta(hours=2))  # open, on time
    html = page()
    assert _text_of(html, "sla-expired") == "1"
    assert _text_of(html, "sla-late") == "1"
    assert "1" in _text_of(html, "sla-overdue")
    assert _text_of(html, "stat-sla") == "2"


def test_the_window_selects_which_tickets_count(
    page: Callable[..., str], add_ticket: Callable[..., Ticket]
) -> None:
    add_ticket(opened=NOW - timedelta(days=20))
    add_ticket(opened=NOW - timedelta(hours=1))
    assert _text_of(page(days="7"), "stat-tickets") == "1"
    month = page(days="30")
    assert _text_of(month, "stat-tickets") == "2"
    assert 'id="window-30" aria-current="page"' in month
    # A window that is not offered falls back to seven days rather than failing.
    assert 'id="window-7" aria-current="page"' in page(days="13")


def test_charts_are_svg_with_titles_and_no_script_or_inline_style(
    page: Callable[..., str], add_ticket: Callable[..., Ticket]
) -> None:
    add_ticket(opened=NOW - timedelta(hours=2), intent="gift_card")
    html = page()
    svgs = _svgs(html)
    assert {"chart-tickets", "chart-outcomes", "chart-alerts", "chart-messages"} <= {
        m for s in svgs for m in re.findall(r'<svg[^>]*\bid="([^"]+)"', s)
    }
    for svg in svgs:
        assert "<script" not in svg.lower()
        assert "style=" not in svg
        assert re.search(r"\bon[a-z]+=", svg) is None
        assert 'role="img"' in svg
        assert "<title" in svg
    tickets = next(s for s in svgs if 'id="chart-tickets"' in s)
    assert _bar_value(tickets, "gift_card") == "1"
    assert "Gift cards: 1</title>" in tickets


def test_the_model_version_and_validation_figures_come_from_the_manifest(
    page: Callable[..., str], shipped_manifest: dict[str, Any]
) -> None:
    html = page()
    assert _text_of(html, "model-version") == shipped_manifest["model_version"]
    corpus_total = shipped_manifest["corpus"]["total"]
    assert _text_of(html, "model-corpus") == f"{corpus_total:,} labelled emails"
    for intent, figures in shipped_manifest["validation"]["per_intent"].items():
        row = html.split(f'id="model-intent-{intent}"', 1)[1].split("</tr>", 1)[0]
        recall = f"{100 * figures['recall']:.1f}".rstrip("0").rstrip(".") + "%"
        assert recall in row


def test_an_empty_database_renders_without_error(page: Callable[..., str]) -> None:
    html = page()
    assert _text_of(html, "stat-tickets") == "0"
    assert _text_of(html, "verify-median") == "no data"
    assert _text_of(html, "stat-alert-share") == "n/a"
    assert "No tickets opened in this window" in html
    assert "No inbound email in this window" in html


def test_anonymous_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    r = client.get("/dashboard/metrics", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/dashboard/login")


def test_chart_text_is_escaped() -> None:
    svg = str(
        charts.stacked_bars(
            chart_id="c",
            title="<script>alert(1)</script>",
            description='"><img src=x onerror=alert(1)>',
            labels=["<b>day</b>"],
            series=[charts.Series("k", "<i>x</i>", "#000", [2])],
        )
    )
    assert "<script" not in svg
    assert "<img" not in svg
    assert "&lt;script&gt;" in svg
    assert "&lt;i&gt;x&lt;/i&gt;" in svg
