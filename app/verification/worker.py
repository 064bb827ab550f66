"""The outbox worker (`countersign worker`): delivers notices, retries, runs periodic upkeep.

Delivery is at least once, never concurrent: a row is claimed with `FOR UPDATE SKIP LOCKED` and a
lease committed before anything is sent, so several workers never send the same row at the same
time, and a killed worker's row is picked up once its lease runs out. The one-time token is minted
in the claim transaction (only its hash is stored) and travels only in the notice; when the
attempt fails, that token is expired at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType
from typing import Any, TypeVar

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.db import is_outage, transaction, utcnow
from app.core.logs import configure_logging
from app.tickets.models import Ticket
from app.tickets.service import CLOSED, expire_overdue
from app.verification.models import OutboxItem, OutboxStatus
from app.verification.notifiers import Notice, Notifier, build_notifiers, close_notifiers
from app.verification.tokens import expire_token, mint_token

log = logging.getLogger("countersign.worker")
MAX_ERROR = 2000
T = TypeVar("T")


@dataclass(slots=True)
class WorkerConfig:
    """Tuning of one worker process."""

    worker_id: str = ""
    poll_interval: float = 2.0
    lease_seconds: float = 120.0
    """Longer than one delivery can take (the HTTP timeouts are 10 s)."""
    backoff_base: float = 30.0
    backoff_cap: float = 15 * 60.0
    maintenance_interval: float = 60.0

    def __post_init__(self) -> None:
        if not self.worker_id:
            self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def backoff_delay(attempts: int, *, base: float, cap: float) -> float:
    """Seconds before the next attempt: exponential, capped, with jitter (half fixed, half random).

    The jitter spreads out retries of many rows that failed together (a notifier outage).
    """
    ceiling = min(cap, base * (2 ** max(0, attempts - 1)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not a secret


@dataclass(slots=True)
class Claim:
    """A leased outbox row ready to send, with the token minted for this attempt."""

    item_id: int
    notifier: str
    attempts: int
    notice: Notice
    token_id: uuid.UUID


def _give_up(item: OutboxItem, reason: str, now: datetime) -> None:
    item.status = OutboxStatus.FAILED
    item.last_error = reason[:MAX_ERROR]
    item.locked_by = None
    item.locked_until = None
    item.next_attempt_at = now


def _sendable(session: Session, item: OutboxItem, max_attempts: int) -> tuple[Ticket | None, str]:
    """The row's ticket when it may be sent, else None and why not."""
    if item.attempts >= max_attempts:
        # Earlier attempts started and never finished (killed workers): stop here.
        return None, item.last_error or "attempts exhausted (no worker finished an attempt)"
    ticket = session.get(Ticket, item.ticket_id) if item.ticket_id is not None else None
    if ticket is None:
        return None, "not sent: the ticket no longer exists"
    if ticket.status in CLOSED:
        return None, f"not sent: ticket #{ticket.number} is already {ticket.status}"
    return ticket, ""


def claim_next(
    sessions: sessionmaker[Session],
    *,
    settings: Settings,
    config: WorkerConfig,
    names: list[str],
    now: datetime | None = None,
) -> Claim | None:
    """Claim one due row for one of `names`, lease it and mint its token, all committed.

    Rows that must not be sent (ticket closed or gone, attempts used up by workers that died)
    are failed on the way, with the reason in last_error. None when nothing is due.
    """
    if not names:
        return None
    with transaction(sessions) as session:
        now = now or utcnow()
        while True:
            item = session.scalars(
                select(OutboxItem)
                .where(
                    OutboxItem.status == OutboxStatus.PENDING,
                    OutboxItem.next_attempt_at <= now,
                    or_(OutboxItem.locked_until.is_(None), OutboxItem.locked_until < now),
                    OutboxItem.notifier.in_(names),
                )
                .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if item is None:
                return None
            ticket, reason = _sendable(session, item, settings.notify_max_attempts)
            if ticket is not None:
                break
            _give_up(item, reason, now)
            session.flush()
            log.warning("outbox %s failed without sending: %s", item.id, reason)
        raw, token = mint_token(
            session, ticket_id=ticket.id, ttl_hours=settings.token_ttl_hours, now=now
        )
        item.attempts += 1
        item.locked_by = config.worker_id
        item.locked_until = now + timedelta(seconds=config.lease_seconds)
        notice = Notice(
            delivery_id=item.id,
            attempt=item.attempts,
            kind=item.kind,
            payload=dict(item.payload or {}),
            verify_url=f"{settings.public_url.rstrip('/')}/verify/{raw}",
            link_expires_at=token.expires_at,
        )
        return Claim(item.id, item.notifier, item.attempts, notice, token.id)


def record_success(
    sessions: sessionmaker[Session], claim: Claim, *, worker_id: str, now: datetime | None = None
) -> bool:
    """Mark the claimed row delivered; False when the lease was lost to another worker."""
    with transaction(sessions) as session:
        now = now or utcnow()
        result = session.execute(
            update(OutboxItem)
            .where(
                OutboxItem.id == claim.item_id,
                OutboxItem.locked_by == worker_id,
                OutboxItem.status == OutboxStatus.PENDING,
            )
            .values(
                status=OutboxStatus.DELIVERED,
                delivered_at=now,
                locked_by=None,
                locked_until=None,
            )
        )
        return bool(getattr(result, "rowcount", 0))


def record_failure(
    sessions: sessionmaker[Session],
    claim: Claim,
    error: str,
    *,
    worker_id: str,
    max_attempts: int,
    config: WorkerConfig,
    now: datetime | None = None,
) -> str:
    """Expire the attempt's token and schedule a retry, or fail the row; returns its status."""
    with transaction(sessions) as session:
        now = now or utcnow()
        expire_token(session, claim.token_id, now=now)
        exhausted = claim.attempts >= max_attempts
        status = OutboxStatus.FAILED if exhausted else OutboxStatus.PENDING
        delay = (
            0.0
            if exhausted
            else backoff_delay(claim.attempts, base=config.backoff_base, cap=config.backoff_cap)
        )
        result = session.execute(
            update(OutboxItem)
            .where(
                OutboxItem.id == claim.item_id,
                OutboxItem.locked_by == worker_id,
                OutboxItem.status == OutboxStatus.PENDING,
            )
            .values(
                status=status,
                last_error=error[:MAX_ERROR],
                next_attempt_at=now + timedelta(seconds=delay),
                locked_by=None,
                locked_until=None,
            )
        )
        if not getattr(result, "rowcount", 0):
            return "lease_lost"
        return str(status)


def _settle(record: Callable[[], T], *, deadline: float) -> T:
    """Record an attempt's result, riding out a database outage until `deadline` (monotonic).

    While this worker holds the lease no other worker takes the row, so retrying until just before
    the lease ends is safe; giving up leaves the row leased and it is sent again once the lease
    ends (at least once).
    """
    delay = 1.0
    while True:
        try:
            return record()
        except (DBAPIError, PoolTimeout) as exc:
            if not is_outage(exc) or time.monotonic() + delay >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def deliver_one(
    sessions: sessionmaker[Session],
    notifiers: dict[str, Notifier],
    *,
    settings: Settings,
    config: WorkerConfig,
) -> bool:
    """Claim, send and settle one row; False when nothing was due."""
    claim = claim_next(sessions, settings=settings, config=config, names=sorted(notifiers))
    if claim is None:
        return False
    # Settle before the lease runs out, with a margin for the last write itself.
    deadline = time.monotonic() + max(5.0, config.lease_seconds - 10.0)
    try:
        notifiers[claim.notifier].send(claim.notice)
    except Exception as exc:  # any failure of a notifier is a failed attempt, never a crash
        error = str(exc) or type(exc).__name__
        status = _settle(
            lambda: record_failure(
                sessions,
                claim,
                error,
                worker_id=config.worker_id,
                max_attempts=settings.notify_max_attempts,
                config=config,
            ),
            deadline=deadline,
        )
        log.warning(
            "outbox %s via %s: attempt %s failed (%s), now %s",
            claim.item_id,
            claim.notifier,
            claim.attempts,
            error[:200],
            status,
        )
        return True
    if _settle(
        lambda: record_success(sessions, claim, worker_id=config.worker_id), deadline=deadline
    ):
        log.info("outbox %s delivered via %s", claim.item_id, claim.notifier)
    else:
        log.warning("outbox %s sent, but its lease had passed to another worker", claim.item_id)
    return True


def drain(
    sessions: sessionmaker[Session],
    notifiers: dict[str, Notifier],
    *,
    settings: Settings,
    config: WorkerConfig,
    stop: threading.Event,
) -> int:
    """Deliver due rows until none is due (or `stop` is set); returns how many were handled."""
    handled = 0
    while not stop.is_set() and deliver_one(sessions, notifiers, settings=settings, config=config):
        handled += 1
    return handled


def run_maintenance(
    sessions: sessionmaker[Session], *, settings: Settings, names: list[str]
) -> dict[str, int]:
    """Expire overdue tickets and purge old bodies, each in its own transaction."""
    # Imported here: app.ingest.service loads the model stack, which `countersign --help` and
    # the parser that cli.py builds from add_arguments() should not pay for.
    from app.ingest.service import purge_bodies

    out: dict[str, int] = {}
    with transaction(sessions) as session:
        out["expired_tickets"] = expire_overdue(session)
    with transaction(sessions) as session:
        out["purged_bodies"] = purge_bodies(session, older_than_days=settings.body_retention_days)
    from app.users.service import purge_sessions

    with transaction(sessions) as session:
        out["purged_sessions"] = purge_sessions(session)
    with transaction(sessions) as session:
        orphaned = session.scalar(
            select(func.count())
            .select_from(OutboxItem)
            .where(OutboxItem.status == OutboxStatus.PENDING, OutboxItem.notifier.not_in(names))
        )
    if orphaned:
        log.warning(
            "%s pending notices are for notifiers this worker does not have (it has: %s)",
            orphaned,
            ", ".join(names) or "none",
        )
    out["unhandled_notices"] = int(orphaned or 0)
    return out


def run_worker(
    settings: Settings,
    sessions: sessionmaker[Session],
    *,
    once: bool = False,
    stop: threading.Event | None = None,
    notifiers: dict[str, Notifier] | None = None,
    config: WorkerConfig | None = None,
) -> int:
    """The worker loop; with `once`, do the upkeep, drain what is due and return.

    Returns 0, or 1 when `once` met an error. Database outages are waited out in the loop.
    """
    stop = stop or threading.Event()
    config = config or WorkerConfig()
    owned = notifiers is None
    notifiers = build_notifiers(settings) if notifiers is None else notifiers
    names = sorted(notifiers)
    if not names:
        log.warning("no notifier configured: notices stay queued; only upkeep runs")
    log.info("worker %s started (notifiers: %s)", config.worker_id, ", ".join(names) or "none")
    last_upkeep: float | None = None
    try:
        while not stop.is_set():
            try:
                mono = time.monotonic()
                if last_upkeep is None or mono - last_upkeep >= config.maintenance_interval:
                    last_upkeep = mono
                    done = run_maintenance(sessions, settings=settings, names=names)
                    if done["expired_tickets"] or done["purged_bodies"]:
                        log.info("upkeep: %s", done)
                drain(sessions, notifiers, settings=settings, config=config, stop=stop)
            except DBAPIError as exc:
                if once:
                    log.error("database error: %s", type(exc).__name__)
                    return 1
                level = logging.WARNING if is_outage(exc) else logging.ERROR
                log.log(level, "database error, retrying: %s", type(exc).__name__)
            except Exception:
                if once:
                    log.exception("worker error")
                    return 1
                log.exception("worker error, retrying")
            if once:
                return 0
            stop.wait(config.poll_interval)
        return 0
    finally:
        if owned:
            close_notifiers(notifiers)
        log.info("worker %s stopped", config.worker_id)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `countersign worker`."""
    parser.add_argument("--once", action="store_true", help="run upkeep, drain due notices, exit")
    parser.add_argument("--poll-interval", type=float, default=2.0, help="seconds between polls")
    parser.add_argument(
        "--lease-seconds", type=float, default=120.0, help="how long a claimed notice stays leased"
    )
    parser.add_argument(
        "--maintenance-interval",
        type=float,
        default=60.0,
        help="seconds between runs of ticket expiry and body purge",
    )
    parser.add_argument("--worker-id", default="", help="name in locked_by (default host:pid)")


def run(args: argparse.Namespace) -> int:
    """Entry point of `countersign worker`: stops cleanly on SIGTERM and SIGINT."""
    from app.core.runtime import open_database

    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    try:
        notifiers = build_notifiers(settings)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    engine, sessions = open_database(settings)
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: finishing the current notice, then stopping", signum)
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, _stop)
    config = WorkerConfig(
        worker_id=args.worker_id,
        poll_interval=args.poll_interval,
        lease_seconds=args.lease_seconds,
        maintenance_interval=args.maintenance_interval,
    )
    try:
        return run_worker(
            settings, sessions, once=args.once, stop=stop, notifiers=notifiers, config=config
        )
    finally:
        close_notifiers(notifiers)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        engine.dispose()
