"""Ticket errors."""

from __future__ import annotations

from app.core.errors import AppError


class InvalidTransition(AppError):
    """The requested status change is not allowed from the ticket's current status."""

    status_code = 409
    code = "invalid_transition"
