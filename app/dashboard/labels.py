"""The words and formats the pages use: titles of intents, signals and statuses, times, SLAs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

INTENT_TITLES: dict[str, str] = {
    "payment_change": "Payment change",
    "credential_request": "Credential request",
    "urgent_transfer": "Urgent transfer",
    "gift_card": "Gift cards",
    "data_request": "Sensitive data request",
}
STATUS_LABELS: dict[str, str] = {
    "open": "Open",
    "in_progress": "In progress",
    "verified_legitimate": "Verified legitimate",
    "confirmed_fraud": "Confirmed fraud",
    "expired": "Expired",
}
OUTCOME_LABELS: dict[str, str] = {
    **STATUS_LABELS,
    "false_positive": "False positive",
}
SEVERITY_LABELS: dict[str, str] = {
    "high": "High",
    "medium": "Medium",
    "low": "Low",
    "none": "None",
}
ACTION_LABELS: dict[str, str] = {
    "deliver": "Deliver",
    "banner": "Deliver with a warning banner",
    "hold": "Hold",
}
SIGNAL_TITLES: dict[str, str] = {
    "reply_to_mismatch": "Replies go somewhere else",
    "display_name_impersonation": "Uses the name of someone in the directory",
    "display_name_address": "Misleading address in the display name",
    "lookalike_domain": "Look-alike domain",
    "first_contact": "First contact",
    "auth_failure": "Sender authentication failed",
    "freemail_org_claim": "Free-mail address writing for an organisation",
    "details_differ_from_file": "Details differ from those on file",
    "link_text_mismatch": "A link hides where it goes",
    "shortened_link": "Shortened link",
}
EVENT_LABELS: dict[str, str] = {
    "opened": "Ticket opened",
    "status": "Status changed",
    "assign": "Assignment",
    "comment": "Comment",
    "message_attached": "Another email about this request",
    "different_details": "Same sender, different details",
}


def _words(name: str) -> str:
    return name.replace("_", " ").strip().capitalize() or "Unknown"


def intent_title(name: str | None) -> str:
    """A short human title for an intent name."""
    return INTENT_TITLES.get(name or "", _words(name or ""))


def signal_title(name: str | None) -> str:
    """A short human title for a signal name."""
    return SIGNAL_TITLES.get(name or "", _words(name or ""))


def status_label(status: str | None) -> str:
    """A ticket status or outcome in words."""
    return OUTCOME_LABELS.get(status or "", _words(status or ""))


def severity_label(severity: str | None) -> str:
    """A severity in words."""
    return SEVERITY_LABELS.get(severity or "", _words(severity or ""))


def action_label(action: str | None) -> str:
    """A gateway action in words."""
    return ACTION_LABELS.get(action or "", _words(action or ""))


def event_label(kind: str | None) -> str:
    """A timeline event kind in words."""
    return EVENT_LABELS.get(kind or "", _words(kind or ""))


def _as_datetime(value: datetime | str | None) -> datetime | None:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return value


def format_time(value: datetime | str | None) -> str:
    """`2026-02-02 09:30 UTC` (every time on the dashboard is UTC)."""
    moment = _as_datetime(value)
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def format_day(value: datetime | str | None) -> str:
    """`2026-02-02` (UTC)."""
    moment = _as_datetime(value)
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d}"


def duration_words(delta: timedelta) -> str:
    """`2 d 3 h`, `3 h 20 min`, `45 min`, `less than 1 min`."""
    minutes = int(abs(delta.total_seconds()) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min" if mins else "less than 1 min"


def sla_words(due_at: datetime, now: datetime) -> tuple[str, str]:
    """The time left to verify (`3 h 20 min left`, `overdue by 2 h`) and a state for styling."""
    delta = due_at - now
    if delta >= timedelta(0):
        return f"{duration_words(delta)} left", ("soon" if delta < timedelta(hours=1) else "ok")
    return f"overdue by {duration_words(delta)}", "overdue"


def money(amount: object, currency: str | None) -> str:
    """`EUR 12,500.00`."""
    if amount is None:
        return ""
    try:
        shown = f"{Decimal(str(amount)):,.2f}"
    except InvalidOperation:
        shown = str(amount)
    return f"{currency} {shown}" if currency else shown
