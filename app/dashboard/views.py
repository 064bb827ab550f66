"""What the dashboard's pages show: the queue and the ticket page, built from the tickets domain.

Email content is attacker-controlled: everything shown from it goes through app.dashboard.text
(masked, defanged) and reaches the templates either as plain strings (escaped by Jinja) or as
Markup assembled from escaped pieces (the evidence marks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.dashboard import labels
from app.dashboard.text import defang_text, display_text, highlight
from app.detect.signals import HIGH_SEVERITY
from app.ingest.models import Message
from app.tickets import service as tickets
from app.tickets.models import Ticket, TicketEvent, TicketStatus
from app.users.models import User

PAGE_SIZE = 25
MAX_PAGE = 10_000
MAX_THREAD = 50
ACTIVE = [TicketStatus.OPEN.value, TicketStatus.IN_PROGRESS.value]
STATUSES = [s.value for s in TicketStatus]
SEVERITIES = ["high", "medium", "low"]


# --- queue --------------------------------------------------------------------------------------


@dataclass(slots=True)
class QueueFilters:
    """What the analyst filters the queue by (all from the query string)."""

    status: list[str] = field(default_factory=list)
    """Statuses to show; empty means the active ones, ["all"] means every status."""
    intent: str = ""
    severity: str = ""
    assignee: str = ""
    """A user name, `unassigned`, or empty for anyone."""
    mine: bool = False
    q: str = ""
    page: int = 1

    @classmethod
    def parse(
        cls,
        *,
        status: list[str] | None,
        intent: str | None,
        severity: str | None,
        assignee: str | None,
        mine: bool,
        q: str | None,
        page: int,
    ) -> QueueFilters:
        """Filters from query parameters; unknown values are dropped rather than refused."""
        wanted = [s for s in (status or []) if s in STATUSES or s == "all"]
        if "all" in wanted:
            wanted = ["all"]
        return cls(
            status=wanted,
            intent=intent if intent in labels.INTENT_TITLES else "",
            severity=severity if severity in SEVERITIES else "",
            assignee=(assignee or "").strip()[:120],
            mine=mine,
            q=(q or "").strip()[:200],
            page=min(max(page, 1), MAX_PAGE),
        )

    @property
    def statuses(self) -> list[str] | None:
        """The statuses to query (None: every status)."""
        if self.status == ["all"]:
            return None
        return self.status or ACTIVE

    @property
    def status_key(self) -> str:
        """Which status tab is selected: `active`, `all` or one status."""
        if self.status == ["all"]:
            return "all"
        if not self.status or sorted(self.status) == sorted(ACTIVE):
            return "active"
        return self.status[0] if len(self.status) == 1 else "custom"

    def query(self, **changes: Any) -> str:
        """This query string with some filters changed (page goes back to 1 unless given)."""
        values: dict[str, Any] = {
            "status": self.status,
            "intent": self.intent,
            "severity": self.severity,
            "assignee": self.assignee,
            "mine": "1" if self.mine else "",
            "q": self.q,
            "page": "",
        }
        values.update(changes)
        pairs: list[tuple[str, str]] = []
        for key, value in values.items():
            if isinstance(value, list):
                pairs += [(key, str(v)) for v in value]
            elif value not in ("", None) and not (key == "page" and value == 1):
                pairs.append((key, str(value)))
        return "?" + urlencode(pairs) if pairs else "?"


@dataclass(slots=True)
class QueueRow:
    """One ticket in the queue."""

    ticket: Ticket
    sla: str
    sla_state: str
    reasons: list[str] = field(default_factory=list)
    """Why the sender side looks suspicious, most serious first (signal titles)."""


@dataclass(slots=True)
class QueuePage:
    """One page of the queue with the counts per status."""

    rows: list[QueueRow]
    total: int
    counts: dict[str, int]
    filters: QueueFilters
    page: int
    pages: int
    first: int
    last: int
    assignees: list[str]

    @property
    def active_count(self) -> int:
        """Open plus in-progress tickets (under the other filters)."""
        return sum(self.counts.get(s, 0) for s in ACTIVE)

    @property
    def all_count(self) -> int:
        """Tickets of every status (under the other filters)."""
        return sum(self.counts.values())


def queue_row(ticket: Ticket, now: datetime | None = None) -> QueueRow:
    """A ticket with its time left in words."""
    sla, state = sla_of(ticket, now or utcnow())
    names = [str(s.get("name", "")) for s in ticket.signals or []]
    names.sort(key=lambda n: n not in HIGH_SEVERITY)
    reasons = [labels.signal_title(n) for n in dict.fromkeys(names)][:3]
    return QueueRow(ticket=ticket, sla=sla, sla_state=state, reasons=reasons)


def sla_of(ticket: Ticket, now: datetime) -> tuple[str, str]:
    """Time left to verify, or when the ticket closed."""
    if ticket.status in tickets.CLOSED:
        when = labels.format_day(ticket.closed_at) if ticket.closed_at else ""
        return (f"closed {when}".strip(), "closed")
    return labels.sla_words(ticket.due_at, now)


def queue_page(
    session: Session, *, filters: QueueFilters, user: User, assignees: list[str]
) -> QueuePage:
    """The tickets matching the filters, most urgent first (priority, then the SLA)."""
    if filters.mine:
        assignee: str | None = user.name
    elif filters.assignee == "unassigned":
        assignee = ""
    else:
        assignee = filters.assignee or None
    result = tickets.list_tickets(
        session,
        status=filters.statuses,
        intent=filters.intent or None,
        severity=filters.severity or None,
        assignee=assignee,
        q=filters.q or None,
        sort="priority",
        limit=PAGE_SIZE,
        offset=(filters.page - 1) * PAGE_SIZE,
    )
    now = utcnow()
    pages = max(1, -(-result.total // PAGE_SIZE))
    first = (filters.page - 1) * PAGE_SIZE + 1 if result.items else 0
    return QueuePage(
        rows=[queue_row(t, now) for t in result.items],
        total=result.total,
        counts=result.counts,
        filters=filters,
        page=filters.page,
        pages=pages,
        first=first,
        last=first + len(result.items) - 1 if result.items else 0,
        assignees=assignees,
    )


# --- the ticket page ----------------------------------------------------------------------------


@dataclass(slots=True)
class MessageView:
    """One email of the ticket, made safe to show: masked, defanged, escaped, evidence marked."""

    message: Message
    subject: Markup
    body: Markup | None
    quoted: Markup | None
    to: list[str]
    cc: list[str]
    attachments: list[dict[str, Any]]
    links: list[str]
    reply_to_differs: bool


@dataclass(slots=True)
class EvidenceView:
    """An intent the model found, with the sentences that show it."""

    intent: str
    score: float
    sentences: list[str]


@dataclass(slots=True)
class SignalView:
    """A sender or metadata signal in plain words."""

    name: str
    title: str
    detail: str
    high: bool


@dataclass(slots=True)
class ContactView:
    """A known-good contact from the directory, with its provenance."""

    who: str
    name: str
    phone: str
    email: str
    added_at: str
    added_by: str
    on_file_before_email: bool


@dataclass(slots=True)
class WorkView:
    """The part of the ticket page that actions change: status, assignee, actions, timeline."""

    ticket: Ticket
    sla: str
    sla_state: str
    events: list[TicketEvent]
    chain_intact: bool
    chain_broken_at: int | None
    mine: bool
    is_closed: bool
    can_claim: bool
    can_release: bool
    can_start: bool
    can_decide: bool
    can_reopen: bool


@dataclass(slots=True)
class TicketView:
    """Everything the ticket page shows."""

    ticket: Ticket
    work: WorkView
    messages: list[MessageView]
    evidence: list[EvidenceView]
    signals: list[SignalView]
    steps: list[str]
    playbook_note: str
    contacts: list[ContactView]
    supplied: dict[str, list[str]]
    supersedes: Ticket | None


def work_view(session: Session, ticket: Ticket, user: User) -> WorkView:
    """Status, assignment, the actions open to `user` and the verified timeline."""
    events = tickets.list_events(session, ticket.id)
    intact, broken_at = tickets.verify_chain(session, ticket.id)
    sla, state = sla_of(ticket, utcnow())
    closed = ticket.status in tickets.CLOSED
    mine = ticket.assignee == user.name
    return WorkView(
        ticket=ticket,
        sla=sla,
        sla_state=state,
        events=events,
        chain_intact=intact,
        chain_broken_at=broken_at,
        mine=mine,
        is_closed=closed,
        can_claim=not closed and not mine,
        can_release=not closed and mine,
        can_start=TicketStatus.IN_PROGRESS in tickets.TRANSITIONS.get(ticket.status, set()),
        can_decide=not closed,
        can_reopen=TicketStatus.OPEN in tickets.TRANSITIONS.get(ticket.status, set()) and closed,
    )


def _evidence_needles(ticket: Ticket) -> tuple[list[EvidenceView], list[str]]:
    views = []
    needles: list[str] = []
    for item in ticket.evidence or []:
        if not isinstance(item, dict):
            continue
        # Evidence was taken from the unmasked text: mask it like the stored body before showing.
        sentences = [display_text(str(s)) for s in item.get("sentences") or [] if s]
        needles += sentences
        try:
            score = float(item.get("score") or 0.0)
        except (TypeError, ValueError):
            score = 0.0
        views.append(
            EvidenceView(intent=str(item.get("intent", "")), score=score, sentences=sentences)
        )
    return views, needles


def _message_view(message: Message, needles: list[str]) -> MessageView:
    recipients = message.recipients or {}
    body = None if message.body is None else highlight(display_text(message.body), needles)
    quoted = None
    if message.quoted:
        quoted = highlight(display_text(message.quoted), needles)
    links = [
        defang_text(str(link.get("url", "")))
        for link in (message.artifacts or {}).get("links", [])
        if isinstance(link, dict)
    ]
    return MessageView(
        message=message,
        subject=highlight(display_text(message.subject), needles),
        body=body,
        quoted=quoted,
        to=[str(a) for a in recipients.get("to", [])],
        cc=[str(a) for a in recipients.get("cc", [])],
        attachments=[a for a in message.attachments or [] if isinstance(a, dict)],
        links=links,
        reply_to_differs=bool(
            message.reply_to and message.reply_to.lower() != message.sender_address.lower()
        ),
    )


def _contacts(playbook: dict[str, Any]) -> list[ContactView]:
    out = []
    for c in playbook.get("known_good_contacts") or []:
        if not isinstance(c, dict):
            continue
        out.append(
            ContactView(
                who=str(c.get("who", "")),
                name=str(c.get("name", "")),
                phone=str(c.get("phone", "")),
                email=str(c.get("email", "")),
                added_at=str(c.get("added_at", "")),
                added_by=str(c.get("added_by", "")),
                on_file_before_email=bool(c.get("on_file_before_email")),
            )
        )
    return out


def _supplied(supplied: dict[str, Any]) -> dict[str, list[str]]:
    return {
        key: [display_text(str(v)) for v in supplied.get(key) or []]
        for key in ("accounts", "phones", "links")
    }


def ticket_view(session: Session, *, number: int, user: User) -> TicketView:
    """The ticket with its emails, evidence, signals, playbook and timeline."""
    ticket = tickets.get_ticket(session, str(number))
    messages = list(
        session.scalars(
            select(Message)
            .where(Message.ticket_id == ticket.id)
            .order_by(Message.received_at, Message.id)
            .limit(MAX_THREAD)
        )
    )
    evidence, needles = _evidence_needles(ticket)
    signals = [
        SignalView(
            name=str(s.get("name", "")),
            title=labels.signal_title(str(s.get("name", ""))),
            detail=display_text(str(s.get("detail", ""))),
            high=s.get("name") in HIGH_SEVERITY,
        )
        for s in ticket.signals or []
        if isinstance(s, dict)
    ]
    playbook = ticket.playbook or {}
    supersedes = None
    if ticket.supersedes_id is not None:
        supersedes = session.get(Ticket, ticket.supersedes_id)
    return TicketView(
        ticket=ticket,
        work=work_view(session, ticket, user),
        messages=[_message_view(m, needles) for m in messages],
        evidence=evidence,
        signals=signals,
        steps=[str(s) for s in playbook.get("steps") or []],
        playbook_note=str(playbook.get("note") or ""),
        contacts=_contacts(playbook),
        supplied=_supplied(ticket.supplied_by_email or {}),
        supersedes=supersedes,
    )
