"""The outbox API: list with filters, retry a failed notice, re-send a ticket's notice."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.db import transaction, utcnow
from app.core.errors import AppError
from app.core.models import AuditLog
from app.tickets.models import Ticket, TicketEvent
from app.verification.models import OutboxItem, VerificationToken
from app.verification.router import api_router
from app.verification.tokens import find_valid_token, mint_token
from app.verification.worker import run_worker

Queue = Callable[..., list[tuple[uuid.UUID, int]]]


def _app(committed: sessionmaker[Session], settings: Settings, notifiers: list[str]) -> FastAPI:
    app = FastAPI()
    app.state.sessions = committed
    app.state.settings = settings
    app.state.notifier_names = notifiers

    @app.exception_handler(AppError)
    async def app_error(_request: Request, exc: AppError) -> JSONResponse:
        return JSONResponse({"error": exc.code, "detail": exc.detail}, status_code=exc.status_code)

    @app.middleware("http")
    async def actor(request: Request, call_next: Any) -> Any:
        request.state.actor = "api-key:ops"
        return await call_next(request)

    app.include_router(api_router)
    return app


@pytest.fixture
def api(committed: sessionmaker[Session], settings: Settings) -> Iterator[TestClient]:
    """The outbox API with the webhook notifier configured."""
    with TestClient(_app(committed, settings, ["webhook"])) as client:
        yield client


def _fail(committed: sessionmaker[Session], item_id: int, error: str = "HTTP 500") -> None:
    with transaction(committed) as session:
        session.execute(
            update(OutboxItem)
            .where(OutboxItem.id == item_id)
            .values(status="failed", attempts=12, last_error=error)
        )


def test_outbox_list_shows_delivery_state_with_status_filter_and_pagination(
    api: TestClient, committed: sessionmaker[Session], queue_notices: Queue
) -> None:
    queued = queue_notices(5)
    _fail(committed, queued[0][1], "HTTP 502: bad gateway")
    everything = api.get("/v1/outbox").json()
    assert everything["total"] == 5
    assert everything["counts"] == {"pending": 4, "failed": 1}
    assert [i["id"] for i in everything["items"]] == sorted((q[1] for q in queued), reverse=True)
    first = everything["items"][0]
    for field in ("attempts", "last_error", "next_attempt_at", "status", "notifier", "ticket_id"):
        assert field in first
    assert "payload" not in first
    failed = api.get("/v1/outbox", params={"status": "failed"}).json()
    assert failed["total"] == 1
    (item,) = failed["items"]
    assert (item["attempts"], item["last_error"]) == (12, "HTTP 502: bad gateway")
    page = api.get("/v1/outbox", params={"limit": 2, "offset": 2}).json()
    assert [i["id"] for i in page["items"]] == [i["id"] for i in everything["items"][2:4]]
    one = api.get("/v1/outbox", params={"ticket_id": str(queued[1][0])}).json()
    assert [i["id"] for i in one["items"]] == [queued[1][1]]
    assert api.get("/v1/outbox", params={"status": "lost"}).status_code == 422
    assert api.get("/v1/outbox", params={"limit": 1000}).status_code == 422


def test_failed_notice_is_retried_with_a_fresh_budget_and_then_delivered(
    api: TestClient,
    committed: sessionmaker[Session],
    settings: Settings,
    queue_notices: Queue,
    recorder: Any,
) -> None:
    ((_, item_id),) = queue_notices(1)
    _fail(committed, item_id)
    r = api.post(f"/v1/outbox/{item_id}/retry")
    assert r.status_code == 200
    body = r.json()
    assert (body["status"], body["attempts"]) == ("pending", 0)
    assert body["last_error"] == "HTTP 500"
    with transaction(committed) as session:
        audit = session.scalars(select(AuditLog)).one()
        assert (audit.actor, audit.action, audit.target) == (
            "api-key:ops",
            "outbox.retry",
            str(item_id),
        )
    notifier = recorder()
    run_worker(settings, committed, once=True, notifiers={"webhook": notifier})
    assert [n.delivery_id for n in notifier.delivered] == [item_id]
    again = api.post(f"/v1/outbox/{item_id}/retry")
    assert again.status_code == 409
    assert again.json()["error"] == "outbox_conflict"


def test_retry_refuses_pending_unknown_and_closed_ticket_items(
    api: TestClient, committed: sessionmaker[Session], queue_notices: Queue
) -> None:
    (pending, closed) = queue_notices(2)
    assert api.post(f"/v1/outbox/{pending[1]}/retry").status_code == 409
    assert api.post("/v1/outbox/999999/retry").status_code == 404
    assert api.post(f"/v1/outbox/{2**63}/retry").status_code == 422
    _fail(committed, closed[1])
    with transaction(committed) as session:
        session.execute(update(Ticket).where(Ticket.id == closed[0]).values(status="expired"))
    r = api.post(f"/v1/outbox/{closed[1]}/retry")
    assert r.status_code == 409
    assert "reopen" in r.json()["detail"]


def test_notify_queues_a_new_notice_whose_fresh_link_works(
    api: TestClient,
    committed: sessionmaker[Session],
    settings: Settings,
    make_ticket: Callable[..., Ticket],
    recorder: Any,
) -> None:
    with transaction(committed) as session:
        ticket = make_ticket(session)
        old, _ = mint_token(session, ticket_id=ticket.id, ttl_hours=72)
    r = api.post(f"/v1/tickets/{ticket.number}/notify")
    assert r.status_code == 202
    body = r.json()
    assert body["ticket_id"] == str(ticket.id)
    (item,) = body["items"]
    assert (item["notifier"], item["kind"], item["status"]) == (
        "webhook",
        "ticket_resend",
        "pending",
    )
    with transaction(committed) as session:
        event = session.scalars(
            select(TicketEvent).where(TicketEvent.kind == "notice_requested")
        ).one()
        assert event.actor == "api-key:ops"
        assert event.data["outbox_ids"] == [item["id"]]
        # Without revoke_previous, the earlier link keeps working.
        assert find_valid_token(session, old) is not None
    notifier = recorder()
    run_worker(settings, committed, once=True, notifiers={"webhook": notifier})
    (notice,) = notifier.delivered
    assert notice.kind == "ticket_resend"
    new = notice.verify_url.rsplit("/", 1)[1]
    with transaction(committed) as session:
        assert find_valid_token(session, new) is not None


def test_notify_can_revoke_the_earlier_links(
    api: TestClient, committed: sessionmaker[Session], make_ticket: Callable[..., Ticket]
) -> None:
    with transaction(committed) as session:
        ticket = make_ticket(session)
        old, _ = mint_token(session, ticket_id=ticket.id, ttl_hours=72)
    r = api.post(f"/v1/tickets/{ticket.id}/notify", json={"revoke_previous": True})
    assert r.status_code == 202
    with transaction(committed) as session:
        assert find_valid_token(session, old) is None
        token = session.scalars(select(VerificationToken)).one()
        assert token.used_at is None
        assert token.expires_at <= utcnow()


def test_notify_refuses_closed_unknown_tickets_and_a_missing_notifier(
    api: TestClient,
    committed: sessionmaker[Session],
    settings: Settings,
    make_ticket: Callable[..., Ticket],
) -> None:
    with transaction(committed) as session:
        closed = make_ticket(session, status="confirmed_fraud", closed_at=utcnow())
        active = make_ticket(session)
    r = api.post(f"/v1/tickets/{closed.id}/notify")
    assert r.status_code == 409
    assert r.json()["error"] == "notice_refused"
    assert api.post(f"/v1/tickets/{uuid.uuid4()}/notify").status_code == 404
    with TestClient(_app(committed, settings, [])) as bare:
        r = bare.post(f"/v1/tickets/{active.id}/notify")
        assert r.status_code == 409
        assert r.json()["error"] == "no_notifier"
    with transaction(committed) as session:
        assert session.scalars(select(OutboxItem)).all() == []
