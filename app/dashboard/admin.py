"""Admin-only pages: the users of the dashboard."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from app.core.db import utcnow
from app.core.deps import DbSession
from app.dashboard.auth import AdminAuth
from app.dashboard.web import dashboard_router, render
from app.users import service as users

router = dashboard_router()


@router.get("/admin/users", name="dashboard-admin-users")
def user_list(request: Request, session: DbSession, auth: AdminAuth) -> Response:
    """Every user with role, state and last sign-in (admins only)."""
    now = utcnow()
    rows = [
        {
            "user": u,
            "state": "disabled"
            if u.disabled
            else ("locked" if users.is_locked(u, now) else "active"),
        }
        for u in users.list_users(session)
    ]
    return render(request, "admin_users.html", {"nav": "users", "rows": rows})
