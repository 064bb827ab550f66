"""Directory errors."""

from __future__ import annotations

from app.core.errors import AppError


class Conflict(AppError):
    """The entry clashes with one on file (same name, address, domain, contact or account)."""

    status_code = 409
    code = "conflict"
