"""The gateway webhook: POST /v1/messages (signed, idempotent, 503 while the database is down)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool

from app.core.db import is_outage, transaction
from app.core.errors import ServiceUnavailable
from app.core.security import verify_signature
from app.ingest.limits import large_message_slot
from app.ingest.request import EMAIL_BODY_OPENAPI, parse_request_email, read_body
from app.ingest.service import IngestOptions, history_of, ingest_message, stored_response

log = logging.getLogger("countersign.ingest")
router = APIRouter(tags=["ingest"])

SIGNATURE_HEADERS = {
    "parameters": [
        {
            "name": "X-Countersign-Source",
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
        },
        {
            "name": "X-Countersign-Timestamp",
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
        },
        {
            "name": "X-Countersign-Signature",
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": 'v1=<hex HMAC-SHA256 of timestamp + "." + body>',
        },
    ]
}


def _ingest(app: Any, source: str, body: bytes, content_type: str) -> tuple[dict[str, Any], bool]:
    """Parse, classify and store one message (runs in the thread pool)."""
    with large_message_slot(len(body)):
        return _ingest_parsed(app, source, body, content_type)


def _ingest_parsed(
    app: Any, source: str, body: bytes, content_type: str
) -> tuple[dict[str, Any], bool]:
    state = app.state
    email = parse_request_email(body, content_type)
    try:
        with transaction(state.sessions) as session:
            first = stored_response(session, source=source, message_id=email.message_id[:998])
            if first is not None:
                return first, False
            history = history_of(session, email)
        directory = state.directory_cache.get()
        with state.metrics.latency.time():
            verdict = state.detector.classify(email, history=history, directory=directory)
        options = IngestOptions(
            store_bodies=state.settings.store_bodies,
            public_url=state.settings.public_url,
            notifiers=tuple(state.notifier_names),
        )
        with transaction(state.sessions) as session:
            response, created = ingest_message(
                session,
                source=source,
                email=email,
                verdict=verdict,
                directory=directory,
                options=options,
            )
    except (DBAPIError, PoolTimeout) as exc:
        if is_outage(exc):
            state.metrics.ingested.labels("unavailable").inc()
            raise ServiceUnavailable("database unavailable, retry later") from None
        raise
    return response, created


@router.post("/v1/messages", openapi_extra={**EMAIL_BODY_OPENAPI, **SIGNATURE_HEADERS})
async def post_message(request: Request) -> JSONResponse:
    """Ingest one email from the gateway and return its Verdict (with its ticket, if any).

    Idempotent per source and Message-ID: a retry returns the first response.
    """
    settings = request.app.state.settings
    metrics = request.app.state.metrics
    body = await read_body(request, settings.max_body_bytes)
    source = request.headers.get("x-countersign-source", "")
    try:
        verify_signature(
            secrets_for_source=request.app.state.webhook_sources.get(source, []),
            timestamp=request.headers.get("x-countersign-timestamp"),
            signature=request.headers.get("x-countersign-signature"),
            body=body,
            tolerance=settings.webhook_tolerance_seconds,
        )
    except Exception:
        metrics.ingested.labels("rejected").inc()
        raise
    with metrics.ingest_latency.time():
        response, created = await run_in_threadpool(
            _ingest, request.app, source, body, request.headers.get("content-type", "")
        )
    metrics.ingested.labels("stored" if created else "duplicate").inc()
    metrics.verdicts.labels(response.get("action", "deliver")).inc()
    ticket = response.get("ticket")
    if created and ticket:
        metrics.tickets.labels(response["intents"][0]["name"], ticket.get("relation", "")).inc()
    return JSONResponse(response, headers={"Idempotent-Replayed": "false" if created else "true"})
