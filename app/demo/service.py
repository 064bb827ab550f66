"""`run_demo`: fill a database with the demo week (see `app.demo.week` for how it is run).

Only an empty database is filled (or one emptied with `reset`, which keeps users); the directory
is imported and put on file months before the week, and an admin and an analyst are created.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.core.errors import AppError
from app.demo.scenario import plan_week
from app.demo.week import ADMIN, ANALYST, Week
from app.detect.engine import Detector
from app.directory import service as directory
from app.directory.models import AccountOnFile, Contact, OrgDomain, Person, Vendor
from app.ingest.models import Message
from app.ingest.service import IngestOptions
from app.models import Base
from app.tickets import service as tickets
from app.tickets.models import ACTIVE_STATUSES, Ticket, TicketStatus
from app.users import service as users
from app.users.models import User, UserRole

DIRECTORY_ACTOR = "cli:demo"
KEEP_TABLES = frozenset({"app_user", "user_session", "api_key"})


class DemoRefused(AppError):
    """The database already holds messages or tickets (the demo fills only an empty one)."""

    status_code = 409
    code = "demo_refused"


@dataclass(slots=True)
class DemoUser:
    """A dashboard user the demo made (with its new password) or found (password None)."""

    name: str
    role: str
    password: str | None


@dataclass(slots=True)
class DemoResult:
    """What the demo put in the database."""

    inbound: int
    outbound: int
    tickets: int
    attached: int
    statuses: dict[str, int]
    false_positives: int
    overdue: int
    users: list[DemoUser]
    stories: list[tuple[str, int | None, str]] = field(default_factory=list)
    """(story, ticket number, ticket status) of the scripted stories."""


def data_counts(session: Session) -> tuple[int, int]:
    """(messages, tickets) in the database."""
    return (
        int(session.scalar(select(func.count()).select_from(Message)) or 0),
        int(session.scalar(select(func.count()).select_from(Ticket)) or 0),
    )


def reset_data(session: Session) -> None:
    """Empty every data table (messages, tickets, directory, outbox, audit); keep users."""
    names = [t.name for t in Base.metadata.sorted_tables if t.name not in KEEP_TABLES]
    quoted = ", ".join(f'"{n}"' for n in names)
    session.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))


def ensure_users(
    session: Session, *, admin_password: str | None, analyst_password: str | None
) -> list[DemoUser]:
    """An admin and an analyst, created with the given or a generated password if absent."""
    out = []
    for name, role, given in (
        (ADMIN, UserRole.ADMIN, admin_password),
        (ANALYST, UserRole.ANALYST, analyst_password),
    ):
        existing = session.scalars(select(User).where(User.name == name)).first()
        if existing is not None:
            out.append(DemoUser(existing.name, existing.role, None))
            continue
        password = given or secrets.token_urlsafe(12)
        user = users.create_user(session, name=name, password=password, role=role)
        out.append(DemoUser(user.name, user.role, password))
    return out


def _months_before(rng: random.Random, start: datetime) -> datetime:
    return start - timedelta(days=rng.randint(60, 400), hours=rng.randint(0, 9))


def backdate_directory(session: Session, rng: random.Random, start: datetime) -> None:
    """Put the imported directory on file weeks to months before the demo week."""
    vendors = {v.id: v for v in session.scalars(select(Vendor))}
    people = {p.id: p for p in session.scalars(select(Person))}
    for vendor in vendors.values():
        vendor.created_at = vendor.updated_at = _months_before(rng, start)
    for person in people.values():
        person.created_at = person.updated_at = _months_before(rng, start)
    for c in session.scalars(select(Contact)):
        owner = vendors.get(c.vendor_id) or people.get(c.person_id)  # type: ignore[arg-type]
        base = owner.created_at if owner else start - timedelta(days=200)
        c.created_at = base + timedelta(days=rng.randint(0, 30))
    for a in session.scalars(select(AccountOnFile)):
        a.created_at = vendors[a.vendor_id].created_at + timedelta(days=rng.randint(1, 40))
    for d in session.scalars(select(OrgDomain)):
        d.added_at = start - timedelta(days=rng.randint(400, 700))
    session.flush()


def _shown_status(ticket: Ticket) -> str:
    return "false_positive" if ticket.outcome == "false_positive" else str(ticket.status)


def run_demo(
    session: Session,
    *,
    directory_data: dict[str, Any],
    key: bytes,
    detector: Detector,
    seed: int,
    messages: int,
    reset: bool = False,
    admin_password: str | None = None,
    analyst_password: str | None = None,
    public_url: str = "http://127.0.0.1:8000",
    store_bodies: bool = True,
    now: datetime | None = None,
) -> DemoResult:
    """Fill the database with the demo week (refused if it holds messages or tickets, unless
    `reset`). The caller commits."""
    end = (now or utcnow()).replace(microsecond=0) - timedelta(minutes=10)
    if end >= utcnow():
        raise ValueError("the demo week must end in the past")
    found_messages, found_tickets = data_counts(session)
    if (found_messages or found_tickets) and not reset:
        raise DemoRefused(
            f"the database already holds {found_messages} messages and {found_tickets} tickets: "
            "the demo fills an empty one (--reset empties it first, keeping users)"
        )
    if reset:
        reset_data(session)
    demo_users = ensure_users(
        session, admin_password=admin_password, analyst_password=analyst_password
    )
    rng = random.Random(seed)  # noqa: S311 - a reproducible demo, not a secret
    week = plan_week(seed=seed, end=end, messages=messages)
    directory.import_directory(session, directory_data, key=key, actor=DIRECTORY_ACTOR)
    backdate_directory(session, rng, min(p.at for p in week))
    sim = Week(
        session,
        detector=detector,
        snapshot=directory.load_snapshot(session),
        options=IngestOptions(store_bodies=store_bodies, public_url=public_url, notifiers=()),
        rng=rng,
        end=end,
    )
    for planned in week:
        sim.deliver(planned)
    sim.run()
    return _result(session, sim, demo_users)


def _result(session: Session, sim: Week, demo_users: list[DemoUser]) -> DemoResult:
    all_tickets = list(session.scalars(select(Ticket)))
    for t in all_tickets:
        intact, broken_at = tickets.verify_chain(session, t.id)
        if not intact:
            raise RuntimeError(f"ticket #{t.number}: event chain broken at event {broken_at}")
    statuses = {s.value: 0 for s in TicketStatus}
    for t in all_tickets:
        statuses[t.status] = statuses.get(t.status, 0) + 1
    now = utcnow()
    by_id = {t.id: t for t in all_tickets}
    return DemoResult(
        inbound=sim.inbound,
        outbound=sim.outbound,
        tickets=len(all_tickets),
        attached=sim.attached,
        statuses=statuses,
        false_positives=sum(1 for t in all_tickets if t.outcome == "false_positive"),
        overdue=sum(1 for t in all_tickets if t.status in ACTIVE_STATUSES and t.due_at < now),
        users=demo_users,
        stories=[
            (story, by_id[tid].number, _shown_status(by_id[tid]))
            if tid in by_id
            else (story, None, "no ticket")
            for story, tid in sim.stories
        ],
    )
