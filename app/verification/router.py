"""HTTP: the verifier's one-time /verify pages and the outbox API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from app.core.deps import DbSession
from app.core.ratelimit import (
    VERIFY_PER_CLIENT,
    VERIFY_POST_PER_LINK,
    client_key,
    rate_limits_of,
    token_key,
)
from app.verification import service
from app.verification.schemas import NotifyIn, NotifyResult, OutboxItemRead, OutboxList
from app.verification.tokens import TokenUnavailable, form_check, form_check_ok

TEMPLATES = Path(__file__).parent / "templates"
MAX_FORM_BYTES = 16 * 1024
MAX_FORM_FIELDS = 20
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self' 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
}
CHANNELS = (
    "Phone call to the number on file",
    "In person",
    "Video call to a known contact",
    "Email to the address on file (new thread, not a reply)",
)

router = APIRouter(tags=["verification"])
api_router = APIRouter(tags=["outbox"])


# --- pages --------------------------------------------------------------------------------------


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@cache
def templates() -> Environment:
    """The page templates; autoescape is on for every one (ticket text comes from email)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    return env


def render(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page with the security headers every /verify response carries."""
    body = templates().get_template(name).render(**context)
    return HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)


def gone() -> HTMLResponse:
    """The one answer for unknown, used and expired links: the same status and bytes."""
    return render("verify_invalid.html", TokenUnavailable.status_code)


def refused(status_code: int, title: str, message: str) -> HTMLResponse:
    """A request that was refused before any token lookup (form checks, sizes, types)."""
    return render("verify_error.html", status_code, title=title, message=message)


def _form_page(
    view: service.VerificationView,
    token: str,
    *,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        "verify.html",
        status_code,
        view=view,
        token_check=form_check(token),
        form={"outcome": "", "verifier": "", "channel": "", "note": "", **(form or {})},
        errors=errors or {},
        channels=CHANNELS,
        outcomes=service.OUTCOMES,
    )


@dataclass(slots=True)
class PostedForm:
    """An urlencoded form read with size limits, or the reason it was refused."""

    fields: dict[str, str] = field(default_factory=dict)
    problem: tuple[int, str] | None = None


async def read_form(request: Request) -> PostedForm:
    """Read a small `application/x-www-form-urlencoded` body (at most 16 KB, 20 fields)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return PostedForm(problem=(415, "The form must be sent as a plain web form."))
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
        return PostedForm(problem=(413, "The form is too large."))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return PostedForm(problem=(413, "The form is too large."))
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        return PostedForm(problem=(400, "The form could not be read."))
    fields: dict[str, str] = {}
    for key, value in pairs:
        fields.setdefault(key, value)
    return PostedForm(fields=fields)


def _origin(url: str) -> str:
    """`scheme://host[:port]` of a URL, lower-case, default ports dropped ('' if unparseable)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ""
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if not scheme or not host:
        return ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


def cross_site(request: Request, public_url: str) -> bool:
    """Whether the POST evidently comes from another site (Sec-Fetch-Site, Origin, Referer).

    Our page sends `Referrer-Policy: no-referrer`, under which browsers send `Origin: null` on a
    form POST, so `null` (like a missing header) proves nothing either way; Sec-Fetch-Site is
    sent regardless of the referrer policy and is the strong signal in current browsers.
    """
    expected = _origin(public_url)
    site = request.headers.get("sec-fetch-site", "").strip().lower()
    if site in ("cross-site", "same-site"):
        return True
    origin = request.headers.get("origin", "").strip()
    if origin and origin.lower() != "null":
        return _origin(origin) != expected
    referer = request.headers.get("referer", "").strip()
    if referer:
        return _origin(referer) != expected
    return False


def throttled(request: Request, *, token: str | None = None) -> HTMLResponse | None:
    """A 429 page with Retry-After when this client (or, on a POST, this link) is over its limit."""
    checks: list[tuple[str, str | None]] = [(VERIFY_PER_CLIENT, client_key(request))]
    if token is not None:
        checks.append((VERIFY_POST_PER_LINK, token_key(token)))
    decision = rate_limits_of(request.app).hit(*checks)
    if decision.allowed:
        return None
    response = refused(
        429,
        "Too many requests",
        f"Wait {decision.retry_after} seconds, then open the link from your notice again.",
    )
    response.headers.update(decision.headers)
    return response


def _public_url(request: Request) -> str:
    settings = getattr(request.app.state, "settings", None)
    return str(getattr(settings, "public_url", "") or "")


@router.get("/verify/{token}", response_class=HTMLResponse)
def show_verification(token: str, request: Request, session: DbSession) -> HTMLResponse:
    """The request to verify and the outcome form; changes nothing (mail scanners prefetch)."""
    if (limited := throttled(request)) is not None:
        return limited
    view = service.view_verification(session, token=token)
    if view is None:
        return gone()
    return _form_page(view, token)


@router.post("/verify/{token}", response_class=HTMLResponse)
def record_verification(
    token: str,
    request: Request,
    session: DbSession,
    posted: Annotated[PostedForm, Depends(read_form)],
) -> HTMLResponse:
    """Record the verifier's outcome; the token is used up by the first valid submission."""
    if (limited := throttled(request, token=token)) is not None:
        return limited
    if posted.problem is not None:
        status_code, message = posted.problem
        return refused(status_code, "The form was not accepted", message)
    if cross_site(request, _public_url(request)) or not form_check_ok(
        token, posted.fields.get("token_check", "")
    ):
        return refused(
            403,
            "The form could not be checked",
            "Open the link from your notice again and submit the form from that page.",
        )
    f = posted.fields
    cleaned = service.clean_outcome_fields(
        f.get("outcome", ""), f.get("verifier", ""), f.get("channel", ""), f.get("note", "")
    )
    if cleaned.errors:
        view = service.view_verification(session, token=token)
        if view is None:
            return gone()
        form = {k: f.get(k, "")[: service.MAX_NOTE] for k in ("outcome", "verifier", "channel")}
        form["note"] = f.get("note", "")[: service.MAX_NOTE]
        return _form_page(view, token, form=form, errors=cleaned.errors, status_code=422)
    try:
        result = service.confirm_verification(
            session,
            token=token,
            outcome=cleaned.outcome,
            verifier=cleaned.verifier,
            channel=cleaned.channel,
            note=cleaned.note,
        )
    except TokenUnavailable:
        return gone()
    return render("verify_done.html", 200, result=result)


# --- outbox API ---------------------------------------------------------------------------------


def _actor(request: Request) -> str:
    return str(getattr(request.state, "actor", "") or "api")


def _notifier_names(request: Request) -> list[str]:
    names = getattr(request.app.state, "notifier_names", None)
    if names is None:
        settings = getattr(request.app.state, "settings", None)
        names = settings.notifier_names() if settings is not None else []
    return list(names)


@api_router.get("/v1/outbox", response_model=OutboxList)
def list_outbox(
    session: DbSession,
    status: Literal["pending", "delivered", "failed"] | None = None,
    ticket_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> OutboxList:
    """Notices, newest first, with attempts, last error and next attempt."""
    page = service.list_outbox(
        session, status=status, ticket_id=ticket_id, limit=limit, offset=offset
    )
    return OutboxList(
        items=[OutboxItemRead.model_validate(i) for i in page.items],
        total=page.total,
        counts=page.counts,
        limit=limit,
        offset=offset,
    )


@api_router.post("/v1/outbox/{item_id}/retry", response_model=OutboxItemRead)
def retry_outbox_item(
    item_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)],
    session: DbSession,
    request: Request,
) -> OutboxItemRead:
    """Put a failed notice back in the queue with a fresh attempt budget (409 unless failed)."""
    item = service.retry_outbox_item(session, item_id=item_id, actor=_actor(request))
    return OutboxItemRead.model_validate(item)


@api_router.post("/v1/tickets/{ticket_id}/notify", response_model=NotifyResult, status_code=202)
def notify_ticket(
    ticket_id: str, session: DbSession, request: Request, body: NotifyIn | None = None
) -> NotifyResult:
    """Queue a new notice with a fresh one-time link for an active ticket (a re-send)."""
    ticket, items = service.request_notice(
        session,
        ticket_id=ticket_id,
        notifiers=_notifier_names(request),
        actor=_actor(request),
        revoke_previous=bool(body and body.revoke_previous),
    )
    return NotifyResult(
        ticket_id=ticket.id, items=[OutboxItemRead.model_validate(i) for i in items]
    )
