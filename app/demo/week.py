"""The demo week, run through the real code paths on a simulated clock.

Every email goes through `ingest_message` with the real Detector (so verdicts, signals, playbooks
and tickets are genuine), and analysts' and verifiers' work goes through the tickets and
verification services (so every event is a real, hash-chained event and every outcome leaves its
feedback labels). Those services stamp rows with the wall clock, so the simulation runs the week
in time order and, after each step, moves what the step wrote to the simulated time: messages'
`received_at`, tickets' `created_at`/`due_at` (recomputed with `sla_due`)/`updated_at`/
`closed_at`, events' `at`, labels and sender history. Moving an event's `at` changes its hash, so
each touched ticket's chain is recomputed in `seq` order with the tickets service's own hash
function; at the end every chain is checked with `verify_chain`.
"""

from __future__ import annotations

import heapq
import itertools
import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.demo.stories import Planned
from app.detect.directory import Directory
from app.detect.engine import Detector
from app.ingest.models import Message, SenderHistory
from app.ingest.service import IngestOptions, history_of, ingest_message
from app.mail.parse import email_from_json
from app.tickets import service as tickets
from app.tickets.exceptions import InvalidTransition
from app.tickets.models import Ticket, TicketEvent, TicketStatus
from app.verification.models import FeedbackLabel
from app.verification.service import confirm_verification, record_feedback
from app.verification.tokens import mint_token

SOURCE = "demo"
ADMIN = "admin"
ANALYST = "analyst"
VERIFIERS = {
    "payment_change": "Tom Hale",
    "urgent_transfer": "Priya Natarajan",
    "gift_card": "Priya Natarajan",
    "credential_request": "Anna Berg",
    "data_request": "Daniel Mensah",
}


class Week:
    """The simulated week: a queue of timed actions run in order, each restamped to its time."""

    def __init__(
        self,
        session: Session,
        *,
        detector: Detector,
        snapshot: Directory,
        options: IngestOptions,
        rng: random.Random,
        end: datetime,
    ) -> None:
        self.session = session
        self.detector = detector
        self.snapshot = snapshot
        self.options = options
        self.rng = rng
        self.end = end
        self.started = utcnow()
        self.queue: list[tuple[datetime, int, Callable[[datetime], None]]] = []
        self.order = itertools.count()
        self.mark = int(session.scalar(select(func.max(TicketEvent.id))) or 0)
        self.inbound = self.outbound = self.attached = 0
        self.stories: list[tuple[str, uuid.UUID | None]] = []

    # --- the clock -------------------------------------------------------------------------------

    def schedule(self, at: datetime, action: Callable[[datetime], None]) -> None:
        """Run `action` at simulated time `at` (never: anything after the end of the week)."""
        if at <= self.end:
            heapq.heappush(self.queue, (at.replace(microsecond=0), next(self.order), action))

    def run(self) -> None:
        """Run every action in time order."""
        while self.queue:
            at, _, action = heapq.heappop(self.queue)
            action(at)
            self.restamp(at)

    def restamp(self, at: datetime) -> None:
        """Move what the last step wrote with the wall clock to simulated time `at`."""
        s, fresh = self.session, self.started
        s.flush()
        s.execute(
            update(Message).where(Message.created_at >= fresh).values(received_at=at, created_at=at)
        )
        s.execute(
            update(SenderHistory).where(SenderHistory.last_seen >= fresh).values(last_seen=at)
        )
        s.execute(
            update(SenderHistory).where(SenderHistory.first_seen >= fresh).values(first_seen=at)
        )
        s.execute(
            update(SenderHistory)
            .where(SenderHistory.last_written_at >= fresh)
            .values(last_written_at=at)
        )
        for label in s.scalars(select(FeedbackLabel).where(FeedbackLabel.created_at >= fresh)):
            label.created_at = at
        for t in s.scalars(select(Ticket).where(Ticket.created_at >= fresh)):
            t.created_at = at
            t.due_at = tickets.sla_due(t.intent, t.severity, at)
        for t in s.scalars(select(Ticket).where(Ticket.closed_at >= fresh)):
            t.closed_at = at
        events = list(s.scalars(select(TicketEvent).where(TicketEvent.id > self.mark)))
        for e in events:
            e.at = at
            self.mark = max(self.mark, e.id)
        for ticket_id in {e.ticket_id for e in events}:
            ticket = s.get(Ticket, ticket_id)
            if ticket is not None:
                ticket.updated_at = at
            rechain(s, ticket_id)
        s.flush()
        # Each step reads fresh rows, as each request does in its own session (the services'
        # inserts and the updates above bypass the objects this session holds).
        s.expire_all()

    # --- email -----------------------------------------------------------------------------------

    def deliver(self, planned: Planned) -> None:
        """Schedule one email's arrival."""
        self.schedule(planned.at, lambda at: self._ingest(at, planned))

    def _ingest(self, at: datetime, planned: Planned) -> None:
        email = email_from_json(planned.email)
        history = history_of(self.session, email)
        verdict = self.detector.classify(email, history=history, directory=self.snapshot)
        response, _ = ingest_message(
            self.session,
            source=SOURCE,
            email=email,
            verdict=verdict,
            directory=self.snapshot,
            options=self.options,
        )
        if email.direction == "outbound":
            self.outbound += 1
            return
        self.inbound += 1
        ref = response.get("ticket")
        ticket_id = uuid.UUID(ref["id"]) if ref else None
        if planned.story:
            self.stories.append((planned.story, ticket_id))
        if ref is None:
            return
        if ref.get("relation") == "attached":
            self.attached += 1
            return
        assert ticket_id is not None
        self._plan_ticket(at, ticket_id, planned)

    # --- analysts and verifiers ------------------------------------------------------------------

    def _fate(self, planned: Planned, opened: datetime, due: datetime) -> str:
        if planned.fate:
            return planned.fate
        age = self.end - opened
        roll = self.rng.random()
        if age < timedelta(hours=4):
            return "open" if roll < 0.4 else ("claimed" if roll < 0.6 else "in_progress")
        if age < timedelta(hours=30):
            # Recent tickets may still wait for a callback, overdue until the worker's next run.
            if planned.truth != "benign" and roll < 0.25:
                return "in_progress"
            if roll < 0.32:
                return "claimed"
        if roll < 0.1 and due < self.end:
            return "expire"
        return {"benign": "false_positive", "fraud": "fraud", "legitimate": "legitimate"}[
            planned.truth
        ]

    def _minutes(self, low: float, mode: float, high: float) -> timedelta:
        return timedelta(minutes=self.rng.triangular(low, high, mode))

    def _plan_ticket(self, opened: datetime, ticket_id: uuid.UUID, planned: Planned) -> None:
        ticket = tickets.get_ticket(self.session, ticket_id)
        due = tickets.sla_due(ticket.intent, ticket.severity, opened)
        fate = self._fate(planned, opened, due)
        who = ANALYST if self.rng.random() < 0.7 else ADMIN
        if fate == "open":
            return
        if fate == "expire":
            self.schedule(due, lambda at: self._expire(at, ticket_id))
            return
        claim = opened + self._minutes(4, 20, 90)
        self.schedule(claim, lambda at: self._claim(at, ticket_id, who))
        if fate == "claimed":
            return
        if fate == "false_positive":
            decide = claim + self._minutes(3, 8, 40)
            note = planned.note or "No risky request in this email: closed as a false positive."
            self.schedule(decide, lambda at: self._false_positive(at, ticket_id, who, note))
            return
        start = claim + self._minutes(2, 8, 30)
        self.schedule(start, lambda at: self._start(at, ticket_id, who))
        if fate == "in_progress":
            return
        window = (due - opened).total_seconds() / 60
        if planned.decide_after is not None:
            decide = opened + planned.decide_after
        elif self.rng.random() < 0.15:
            decide = opened + timedelta(minutes=window * self.rng.uniform(1.1, 1.8))  # late
        else:
            decide = start + self._minutes(10, min(60, window / 3), max(20, window * 0.8))
        decide = max(decide, start + timedelta(minutes=5))
        via_link = self.rng.random() < 0.5
        self.schedule(
            decide - timedelta(minutes=2),
            lambda at: self._comment(at, ticket_id, who, fate),
        )
        self.schedule(
            decide, lambda at: self._decide(at, ticket_id, who, fate, planned.note, via_link)
        )

    def _locked(self, ticket_id: uuid.UUID) -> Ticket:
        return tickets.get_ticket(self.session, ticket_id, lock=True)

    def _claim(self, at: datetime, ticket_id: uuid.UUID, who: str) -> None:
        ticket = self._locked(ticket_id)
        if ticket.status in tickets.CLOSED or ticket.assignee:
            return
        tickets.assign_ticket(self.session, ticket, assignee=who, actor=f"user:{who}")

    def _start(self, at: datetime, ticket_id: uuid.UUID, who: str) -> None:
        ticket = self._locked(ticket_id)
        if ticket.status != TicketStatus.OPEN:
            return
        tickets.transition_ticket(
            self.session,
            ticket,
            to=TicketStatus.IN_PROGRESS,
            actor=f"user:{who}",
            reason="verification started",
        )

    def _comment(self, at: datetime, ticket_id: uuid.UUID, who: str, fate: str) -> None:
        ticket = self._locked(ticket_id)
        if ticket.status in tickets.CLOSED:
            return
        contacts = [c for c in (ticket.playbook or {}).get("known_good_contacts") or [] if c]
        phoned = next((c for c in contacts if c.get("phone")), None)
        if phoned is None:
            text_ = "No known-good number on file for the sender: checking with finance instead."
        else:
            since = str(phoned.get("added_at", ""))[:10]
            text_ = (
                f"Calling {phoned.get('name') or phoned.get('who')} on {phoned['phone']} "
                f"(on file since {since}), not the number in the email."
            )
        tickets.comment_ticket(self.session, ticket, text=text_, actor=f"user:{who}")

    def _decide(
        self, at: datetime, ticket_id: uuid.UUID, who: str, fate: str, note: str, via_link: bool
    ) -> None:
        ticket = self._locked(ticket_id)
        if ticket.status in tickets.CLOSED:
            return
        status = (
            TicketStatus.CONFIRMED_FRAUD if fate == "fraud" else TicketStatus.VERIFIED_LEGITIMATE
        )
        if not note:
            note = (
                "The sender, called on the number on file, made no such request. Reported to "
                "IT security."
                if fate == "fraud"
                else "Confirmed by phone on the number on file: the request is genuine."
            )
        if via_link:
            token, _ = mint_token(
                self.session, ticket_id=ticket.id, ttl_hours=72, now=at - timedelta(minutes=30)
            )
            confirm_verification(
                self.session,
                token=token,
                outcome="fraudulent" if fate == "fraud" else "legitimate",
                verifier=VERIFIERS.get(ticket.intent, "Tom Hale"),
                channel="phone call to the number on file",
                note=note,
                now=at,
            )
            return
        tickets.transition_ticket(
            self.session,
            ticket,
            to=status,
            actor=f"user:{who}",
            reason=note,
            data={"via": "dashboard", "outcome": status.value},
        )
        record_feedback(self.session, ticket, outcome=status.value, source="dashboard")

    def _false_positive(self, at: datetime, ticket_id: uuid.UUID, who: str, note: str) -> None:
        ticket = self._locked(ticket_id)
        if ticket.status in tickets.CLOSED:
            return
        tickets.transition_ticket(
            self.session,
            ticket,
            to=TicketStatus.VERIFIED_LEGITIMATE,
            actor=f"user:{who}",
            reason=note,
            outcome="false_positive",
            data={"via": "dashboard", "outcome": "false_positive"},
        )
        record_feedback(self.session, ticket, outcome="false_positive", source="dashboard")

    def _expire(self, at: datetime, ticket_id: uuid.UUID) -> None:
        ticket = self._locked(ticket_id)
        try:
            tickets.transition_ticket(
                self.session,
                ticket,
                to=TicketStatus.EXPIRED,
                actor="system",
                reason="SLA passed unanswered",
            )
        except InvalidTransition:
            return


def rechain(session: Session, ticket_id: uuid.UUID) -> None:
    """Recompute a ticket's event hashes in `seq` order (after their times were moved)."""
    prev = tickets.GENESIS
    for e in session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.seq)
    ):
        e.prev_hash = prev
        e.hash = tickets.event_hash(e, prev)
        prev = e.hash
