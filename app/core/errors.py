"""Application errors with a stable code and an HTTP status; one handler renders them."""

from __future__ import annotations


class AppError(Exception):
    """Base error: `code` is stable for clients, `detail` is for humans."""

    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class InvalidInput(AppError):
    """The payload is malformed or violates a limit."""

    status_code = 422
    code = "invalid_input"


class PayloadTooLarge(AppError):
    """The payload exceeds the configured size limit."""

    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(AppError):
    """The request body has a content type the endpoint does not accept."""

    status_code = 415
    code = "unsupported_media_type"


class Unauthorized(AppError):
    """Missing or invalid credentials."""

    status_code = 401
    code = "unauthorized"


class NotFound(AppError):
    """The resource does not exist."""

    status_code = 404
    code = "not_found"


class ServiceUnavailable(AppError):
    """A dependency (database, model) is not available; the client should retry."""

    status_code = 503
    code = "unavailable"
