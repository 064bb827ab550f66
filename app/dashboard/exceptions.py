"""Dashboard errors: each renders as a page (or an htmx message) with its status code."""

from __future__ import annotations

from app.core.errors import AppError, Unauthorized


class LoginRequired(Unauthorized):
    """No current session: the dashboard sends the browser to the sign-in page."""

    code = "login_required"


class Forbidden(AppError):
    """Signed in, but not allowed to do this (an analyst on an admin page)."""

    status_code = 403
    code = "forbidden"


class CsrfFailed(Forbidden):
    """A state-changing request without a valid CSRF token, or from another site."""

    code = "csrf_failed"


class ClaimConflict(AppError):
    """Someone else has claimed the ticket."""

    status_code = 409
    code = "claimed_by_someone_else"
