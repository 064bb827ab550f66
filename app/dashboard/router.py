"""The dashboard's router (every page under /dashboard) and its static files.

Wire it in create_app:

    from app.dashboard.router import mount_static, router as dashboard_router
    app.include_router(dashboard_router)
    mount_static(app)
"""

from __future__ import annotations

from fastapi import APIRouter

from app.dashboard import admin, auth, directory_admin, metrics, queue, tickets, try_email
from app.dashboard.web import mount_static

router = APIRouter()
router.include_router(auth.router)
router.include_router(queue.router)
router.include_router(tickets.router)
router.include_router(try_email.router)
router.include_router(admin.router)
router.include_router(metrics.router)
router.include_router(directory_admin.router)

__all__ = ["mount_static", "router"]
