"""User errors."""

from __future__ import annotations

from app.core.errors import AppError


class UserExists(AppError):
    """A user with this name exists already."""

    status_code = 409
    code = "user_exists"
