"""The outbox worker on real Postgres: exactly-once under concurrency, retries, leases, upkeep."""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.db import transaction, utcnow
from app.ingest.models import Message
from app.tickets.models import Ticket
from app.verification.models import OutboxItem, VerificationToken
from app.verification.service import confirm_verification
from app.verification.tokens import find_valid_token
from app.verification.worker import (
    WorkerConfig,
    add_arguments,
    backoff_delay,
    claim_next,
    record_success,
    run_worker,
)

PUBLIC_URL = "https://countersign.example"
FAST: dict[str, Any] = {"poll_interval": 0.05, "backoff_base": 0.0, "backoff_cap": 0.0}

Queue = Callable[..., list[tuple[uuid.UUID, int]]]


def _token_of(url: str) -> str:
    prefix = f"{PUBLIC_URL}/verify/"
    assert url.startswith(prefix)
    return url[len(prefix) :]


def _items(committed: sessionmaker[Session]) -> list[OutboxItem]:
    with transaction(committed) as session:
        return list(session.scalars(select(OutboxItem).order_by(OutboxItem.id)))


def _database_text(committed: sessionmaker[Session]) -> str:
    """Every row of the tables a token could leak into, as text."""
    with transaction(committed) as session:
        return "\n".join(
            session.execute(
                text(f"select coalesce(string_agg(t::text, '|'), '') from {table} t")
            ).scalar_one()
            for table in ("verification_token", "outbox", "ticket", "ticket_event", "audit_log")
        )


def test_worker_delivers_a_notice_whose_link_works_and_is_not_stored(
    committed: sessionmaker[Session], settings: Settings, queue_notices: Queue, recorder: Any
) -> None:
    ((ticket_id, item_id),) = queue_notices(1)
    notifier = recorder()
    assert run_worker(settings, committed, once=True, notifiers={"webhook": notifier}) == 0
    (notice,) = notifier.delivered
    assert notice.delivery_id == item_id
    assert notice.attempt == 1
    assert notice.payload["ticket_id"] == str(ticket_id)
    assert notice.payload["known_good_contacts"][0]["phone"] == "+44 20 7946 0018"
    raw = _token_of(notice.verify_url)
    (item,) = _items(committed)
    assert (item.status, item.attempts) == ("delivered", 1)
    assert item.delivered_at is not None
    assert (item.locked_by, item.locked_until) == (None, None)
    assert raw not in _database_text(committed)
    with transaction(committed) as session:
        token = find_valid_token(session, raw)
        assert token is not None
        assert token.ticket_id == ticket_id
        assert abs(token.expires_at - (token.created_at + timedelta(hours=72))) < timedelta(
            seconds=1
        )
        confirm_verification(
            session, token=raw, outcome="legitimate", verifier="Ann", channel="phone", note=""
        )
        assert session.get_one(Ticket, ticket_id).status == "verified_legitimate"


def test_two_workers_draining_the_same_outbox_deliver_each_item_exactly_once(
    committed: sessionmaker[Session], settings: Settings, queue_notices: Queue, recorder: Any
) -> None:
    queued = queue_notices(40)
    notifier = recorder(delay=0.01)
    barrier = threading.Barrier(2)
    results: list[int] = []

    def work(name: str) -> None:
        barrier.wait()
        config = WorkerConfig(worker_id=name, **FAST)
        results.append(
            run_worker(
                settings, committed, once=True, notifiers={"webhook": notifier}, config=config
            )
        )

    threads = [threading.Thread(target=work, args=(n,), name=n) for n in ("w1", "w2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [0, 0]
    delivered = sorted(n.delivery_id for n in notifier.delivered)
    assert delivered == sorted(item_id for _, item_id in queued)
    assert notifier.calls == 40
    # Both workers took part, so the test did exercise the race.
    assert notifier.threads == {"w1", "w2"}
    items = _items(committed)
    assert {i.status for i in items} == {"delivered"}
    assert {i.attempts for i in items} == {1}
    with transaction(committed) as session:
        assert session.scalar(select(func.count()).select_from(VerificationToken)) == 40


def test_failing_notifier_is_retried_then_delivered_once_it_recovers(
    committed: sessionmaker[Session], settings: Settings, queue_notices: Queue, recorder: Any
) -> None:
    ((_, item_id),) = queue_notices(1)
    notifier = recorder(fail_first=3)
    config = WorkerConfig(worker_id="w", **FAST)
    run_worker(settings, committed, once=True, notifiers={"webhook": notifier}, config=config)
    assert notifier.calls == 4
    assert [n.attempt for n in notifier.failed] == [1, 2, 3]
    (notice,) = notifier.delivered
    assert notice.delivery_id == item_id
    (item,) = _items(committed)
    assert (item.status, item.attempts) == ("delivered", 4)
    assert item.last_error == "HTTP 503: receiver down"
    with transaction(committed) as session:
        # Each failed attempt's link was expired at once; only the delivered one works.
        for failed in notifier.failed:
            assert find_valid_token(session, _token_of(failed.verify_url)) is None
        assert find_valid_token(session, _token_of(notice.verify_url)) is not None
        assert session.scalar(select(func.count()).select_from(VerificationToken)) == 4
    # Draining again sends nothing twice.
    run_worker(settings, committed, once=True, notifiers={"webhook": notifier}, config=config)
    assert notifier.calls == 4


def test_a_failed_attempt_is_scheduled_later_with_backoff_and_not_sent_before(
    committed: sessionmaker[Session], settings: Settings, queue_notices: Queue, recorder: Any
) -> None:
    queue_notices(1)
    notifier = recorder(fail_first=1)
    config = WorkerConfig(worker_id="w", poll_interval=0.05, backoff_base=60, backoff_cap=900)
    started = utcnow()
    run_worker(settings, committed, once=True, notifiers={"webhook": notifier}, config=config)
    (item,) = _items(committed)
    assert (item.status, item.attempts) == ("pending", 1)
    assert item.last_error == "HTTP 503: receiver down"
    assert (item.locked_by, item.locked_until) == (None, None)
    delay = (item.next_attempt_at - started).total_seconds()
    assert 30 <= delay <= 61
    run_worker(settings, committed, once=True, notifiers={"webhook": notifier}, config=config)
    assert notifier.calls == 1


def test_backoff_grows_exponentially_is_capped_and_jittered() -> None:
    for attempts, low, high in ((1, 15, 30), (2, 30, 60), (4, 120, 240), (30, 450, 900)):
        samples = [backoff_delay(attempts, base=30, cap=900) for _ in range(50)]
        assert all(low <= s <= high for s in samples), (attempts, samples)
        assert len(set(samples)) > 1


def test_notice_fails_after_max_attempts_with_the_last_error_kept(
    committed: sessionmaker[Session], queue_notices: Queue, recorder: Any
) -> None:
    settings = Settings(_env_file=None, public_url=PUBLIC_URL, notify_max_attempts=3)
    queue_notices(1)
    notifier = recorder(fail_first=100)
    config = WorkerConfig(worker_id="w", **FAST)
    run_worker(settings, committed, once=True, notifiers={"webhook": notifier}, config=config)
    assert notifier.calls == 3
    (item,) = _items(committed)
    assert (item.status, item.attempts) == ("failed", 3)
    assert item.last_error == "HTTP 503: receiver down"
    with transaction(committed) as session:
        now = utcnow()
        tokens = list(session.scalars(select(VerificationToken)))
        assert len(tokens) == 3
        assert all(t.expires_at <= now for t in tokens)


def test_killed_worker_lease_expires_and_another_worker_delivers_once(
    committed: sessionmaker[Session], settings: Settings, queue_notices: Queue, recorder: Any
) -> None:
    ((_, item_id),) = queue_notices(1)
    dead = WorkerConfig(worker_id="dead", lease_seconds=0.6)
    claim = claim_next(committed, settings=settings, config=dead, names=["webhook"])
    assert claim is not None
    assert claim.item_id == item_id
    # The dead worker never sends nor records anything. While its lease runs, nobody else sends.
    notifier = recorder()
    live = WorkerConfig(worker_id="live", **FAST)
    run_worker(settings, committed, once=True, notifiers={"webhook": notifier}, config=live)
    assert notifier.calls == 0
    (item,) = _items(committed)
    assert (item.locked_by, item.status) == ("dead", "pending")
    time.sleep(0.8)
    run_worker(settings, committed, once=True, notifiers={"webhook": notifier}, config=live)
    (notice,) = notifier.delivered
    assert (notice.delivery_id, notice.attempt) == (item_id, 2)
    (item,) = _items(committed)
    assert (item.status, item.attempts) == ("delivered", 2)
    delivered_at = item.delivered_at
    # If the "dead" worker wakes up, its late result does not overwrite anything.
    assert record_success(committed, claim, worker_id="dead") is False
    (item,) = _items(committed)
    assert item.delivered_at == delivered_at
    run_worker(settings, committed, once=True, notifiers={"webhook": notifier}, config=live)
    assert notifier.calls == 1


def test_attempts_used_up_by_dying_workers_end_in_failure_not_a_loop(
    committed: sessionmaker[Session], queue_notices: Queue, recorder: Any
) -> None:
    settings = Settings(_env_file=None, public_url=PUBLIC_URL, notify_max_attempts=2)
    queue_notices(1)
    for _ in range(2):
        claim = claim_next(
            committed,
            settings=settings,
            config=WorkerConfig(worker_id="dies", lease_seconds=0),
            names=["webhook"],
        )
        assert claim is not None
    notifier = recorder()
    run_worker(
        settings, committed, once=True, notifiers={"webhook": notifier}, config=WorkerConfig(**FAST)
    )
    assert notifier.calls == 0
    (item,) = _items(committed)
    assert (item.status, item.attempts) == ("failed", 2)
    assert "attempts exhausted" in (item.last_error or "")


def test_notice_for_a_ticket_closed_meanwhile_is_not_sent(
    committed: sessionmaker[Session], settings: Settings, queue_notices: Queue, recorder: Any
) -> None:
    ((ticket_id, _),) = queue_notices(1)
    with transaction(committed) as session:
        session.execute(
            update(Ticket).where(Ticket.id == ticket_id).values(status="confirmed_fraud")
        )
    notifier = recorder()
    run_worker(settings, committed, once=True, notifiers={"webhook": notifier})
    assert notifier.calls == 0
    (item,) = _items(committed)
    assert item.status == "failed"
    assert "already confirmed_fraud" in (item.last_error or "")
    with transaction(committed) as session:
        assert session.scalar(select(func.count()).select_from(VerificationToken)) == 0


def test_rows_for_a_notifier_the_worker_lacks_stay_queued(
    committed: sessionmaker[Session], settings: Settings, queue_notices: Queue, recorder: Any
) -> None:
    queue_notices(1, notifier="slack")
    notifier = recorder()
    run_worker(settings, committed, once=True, notifiers={"webhook": notifier})
    assert notifier.calls == 0
    (item,) = _items(committed)
    assert (item.status, item.attempts) == ("pending", 0)


def test_a_notifier_that_crashes_counts_as_a_failed_attempt(
    committed: sessionmaker[Session], settings: Settings, queue_notices: Queue
) -> None:
    queue_notices(1)

    class Broken:
        name = "webhook"

        def send(self, notice: Any) -> None:
            raise RuntimeError("bug in notifier")

    config = WorkerConfig(worker_id="w", poll_interval=0.05, backoff_base=60, backoff_cap=60)
    assert (
        run_worker(settings, committed, once=True, notifiers={"webhook": Broken()}, config=config)
        == 0
    )
    (item,) = _items(committed)
    assert (item.status, item.attempts, item.last_error) == ("pending", 1, "bug in notifier")


def test_worker_loop_delivers_new_rows_and_stops_when_asked(
    committed: sessionmaker[Session], settings: Settings, queue_notices: Queue, recorder: Any
) -> None:
    notifier = recorder()
    stop = threading.Event()
    result: list[int] = []
    config = WorkerConfig(worker_id="loop", **FAST)
    thread = threading.Thread(
        target=lambda: result.append(
            run_worker(
                settings, committed, stop=stop, notifiers={"webhook": notifier}, config=config
            )
        )
    )
    thread.start()
    try:
        queue_notices(3)
        deadline = time.monotonic() + 10
        while len(notifier.delivered) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(notifier.delivered) == 3
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert result == [0]


def test_worker_runs_ticket_expiry_and_body_purge(
    committed: sessionmaker[Session],
    settings: Settings,
    make_ticket: Callable[..., Ticket],
    recorder: Any,
) -> None:
    with transaction(committed) as session:
        overdue = make_ticket(session, messages=1, due_at=utcnow() - timedelta(minutes=1))
        session.execute(
            update(Message)
            .where(Message.ticket_id == overdue.id)
            .values(received_at=utcnow() - timedelta(days=settings.body_retention_days + 1))
        )
        fresh = make_ticket(session, messages=1)
    run_worker(settings, committed, once=True, notifiers={"webhook": recorder()})
    with transaction(committed) as session:
        assert session.get_one(Ticket, overdue.id).status == "expired"
        assert session.get_one(Ticket, fresh.id).status == "open"
        old = session.scalars(select(Message).where(Message.ticket_id == overdue.id)).one()
        assert old.body is None
        assert old.body_purged_at is not None
        new = session.scalars(select(Message).where(Message.ticket_id == fresh.id)).one()
        assert new.body is not None


def test_worker_command_line_options() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--once", "--poll-interval", "0.5", "--worker-id", "w7"])
    assert (args.once, args.poll_interval, args.worker_id) == (True, 0.5, "w7")
    assert parser.parse_args([]).once is False


@pytest.mark.parametrize("attempts", [1, 5])
def test_backoff_never_exceeds_the_cap(attempts: int) -> None:
    assert backoff_delay(attempts, base=1000, cap=10) <= 10


def test_settling_rides_out_an_outage_until_just_before_the_lease_ends(monkeypatch: Any) -> None:
    from sqlalchemy.exc import OperationalError

    from app.verification import worker

    clock = [1000.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(worker.time, "sleep", sleep)
    monkeypatch.setattr(worker.time, "monotonic", lambda: clock[0])
    calls = {"n": 0}

    def record() -> str:
        calls["n"] += 1
        if calls["n"] < 6:
            raise OperationalError("UPDATE outbox", {}, Exception("server closed the connection"))
        return "delivered"

    # Five failures over 1+2+4+8+10 s of back-off: still inside a 110 s deadline.
    assert worker._settle(record, deadline=clock[0] + 110) == "delivered"
    assert sleeps == [1.0, 2.0, 4.0, 8.0, 10.0]

    calls["n"] = 0
    sleeps.clear()
    with pytest.raises(OperationalError):
        worker._settle(record, deadline=clock[0] + 5)
    assert sum(sleeps) < 5
