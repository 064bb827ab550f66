"""The ticket page and the analyst's actions on it.

Each action is a plain form POST that redirects back to the page (works without JavaScript);
htmx posts the same form and swaps in the updated fragment instead (the work panel of the ticket
page, or the ticket's row in the queue).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.core.deps import DbSession
from app.dashboard import service, views
from app.dashboard.auth import Auth, CsrfAuth, CurrentAuth
from app.dashboard.web import dashboard_router, is_htmx, redirect, render, safe_next
from app.tickets.models import Ticket

router = dashboard_router()

NOTICES = {
    "claimed": "The ticket is assigned to you.",
    "released": "You gave the ticket back to the queue.",
    "started": "Verification started.",
    "outcome": "Outcome recorded: the ticket is closed.",
    "false_positive": "Marked as a false positive: the ticket is closed.",
    "reopened": "The ticket is open again.",
    "commented": "Comment added.",
}
Note = Annotated[str, Form(max_length=20_000)]
Partial = Annotated[str, Form(max_length=16)]
NextUrl = Annotated[str, Form(max_length=2000)]


@router.get("/tickets/{number}", name="dashboard-ticket")
def ticket_page(
    number: str, request: Request, session: DbSession, auth: CurrentAuth, done: str = ""
) -> Response:
    """One ticket: the email shown safely, why it was flagged, the playbook and the timeline."""
    view = views.ticket_view(session, number=service.ticket_number(number), user=auth.user)
    service.record_view(session, ticket=view.ticket, user=auth.user)
    return render(
        request,
        "ticket.html",
        {"nav": "queue", "view": view, "work": view.work, "work_notice": NOTICES.get(done, "")},
    )


def _done(
    request: Request,
    session: Session,
    auth: Auth,
    ticket: Ticket,
    *,
    done: str,
    partial: str = "",
    next_url: str = "",
) -> Response:
    """The fragment htmx swaps in, or a redirect back to the page for a plain form post."""
    back = safe_next(next_url)
    if is_htmx(request):
        if partial == "row":
            return render(
                request, "_queue_row.html", {"row": views.queue_row(ticket), "here": back}
            )
        return render(
            request,
            "_ticket_work.html",
            {
                "work": views.work_view(session, ticket, auth.user),
                "work_notice": NOTICES[done],
                "clear_flash": True,
            },
        )
    if partial == "row":
        return redirect(back)
    return redirect(f"/dashboard/tickets/{ticket.number}?done={done}#ticket-work")


@router.post("/tickets/{number}/claim")
def claim(
    number: str,
    request: Request,
    session: DbSession,
    auth: CsrfAuth,
    partial: Partial = "",
    next: NextUrl = "",
    take_over: Annotated[bool, Form()] = False,
) -> Response:
    """Assign the ticket to me (taking it over from someone else only when asked)."""
    ticket = service.claim_ticket(
        session, number=service.ticket_number(number), user=auth.user, take_over=take_over
    )
    return _done(request, session, auth, ticket, done="claimed", partial=partial, next_url=next)


@router.post("/tickets/{number}/release")
def release(
    number: str,
    request: Request,
    session: DbSession,
    auth: CsrfAuth,
    partial: Partial = "",
    next: NextUrl = "",
) -> Response:
    """Give the ticket back to the queue."""
    ticket = service.release_ticket(session, number=service.ticket_number(number), user=auth.user)
    return _done(request, session, auth, ticket, done="released", partial=partial, next_url=next)


@router.post("/tickets/{number}/start")
def start(number: str, request: Request, session: DbSession, auth: CsrfAuth) -> Response:
    """Start verification (in progress; claims the ticket if nobody has)."""
    ticket = service.start_verification(
        session, number=service.ticket_number(number), user=auth.user
    )
    return _done(request, session, auth, ticket, done="started")


@router.post("/tickets/{number}/outcome")
def outcome(
    number: str,
    request: Request,
    session: DbSession,
    auth: CsrfAuth,
    outcome: Annotated[str, Form(max_length=32)] = "",
    note: Note = "",
) -> Response:
    """Record the verification outcome (verified legitimate or confirmed fraud) with a note."""
    ticket = service.record_outcome(
        session, number=service.ticket_number(number), user=auth.user, outcome=outcome, note=note
    )
    return _done(request, session, auth, ticket, done="outcome")


@router.post("/tickets/{number}/false-positive")
def false_positive(
    number: str, request: Request, session: DbSession, auth: CsrfAuth, note: Note = ""
) -> Response:
    """Close the ticket as a false positive (no risky request in the email)."""
    ticket = service.mark_false_positive(
        session, number=service.ticket_number(number), user=auth.user, note=note
    )
    return _done(request, session, auth, ticket, done="false_positive")


@router.post("/tickets/{number}/reopen")
def reopen(
    number: str, request: Request, session: DbSession, auth: CsrfAuth, note: Note = ""
) -> Response:
    """Reopen a closed ticket."""
    ticket = service.reopen_ticket(
        session, number=service.ticket_number(number), user=auth.user, note=note
    )
    return _done(request, session, auth, ticket, done="reopened")


@router.post("/tickets/{number}/comment")
def comment(
    number: str, request: Request, session: DbSession, auth: CsrfAuth, text: Note = ""
) -> Response:
    """Add a comment to the timeline."""
    ticket = service.comment_on_ticket(
        session, number=service.ticket_number(number), user=auth.user, text=text
    )
    return _done(request, session, auth, ticket, done="commented")
