"""The queue: active tickets by priority and SLA, with filters, search, counts and pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import Response

from app.core.deps import DbSession
from app.dashboard import views
from app.dashboard.auth import CurrentAuth
from app.dashboard.web import dashboard_router, render
from app.users import service as users

router = dashboard_router()


@router.get("", name="dashboard-queue")
@router.get("/tickets")
def queue(
    request: Request,
    session: DbSession,
    auth: CurrentAuth,
    status: Annotated[list[str] | None, Query()] = None,
    intent: Annotated[str, Query(max_length=64)] = "",
    severity: Annotated[str, Query(max_length=16)] = "",
    assignee: Annotated[str, Query(max_length=120)] = "",
    mine: bool = False,
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1)] = 1,
) -> Response:
    """The verification queue."""
    filters = views.QueueFilters.parse(
        status=status[:10] if status else None,
        intent=intent,
        severity=severity,
        assignee=assignee,
        mine=mine,
        q=q,
        page=page,
    )
    names = [u.name for u in users.list_users(session) if not u.disabled]
    result = views.queue_page(session, filters=filters, user=auth.user, assignees=names)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return render(
        request, "queue.html", {"nav": "queue", "queue": result, "filters": filters, "here": here}
    )
