"""Email request bodies: JSON or raw MIME (read with the size limit of app.core.http)."""

from __future__ import annotations

import json
from typing import Any

from app.core.errors import InvalidInput, UnsupportedMediaType
from app.core.http import read_body
from app.mail.parse import email_from_json, email_from_mime
from app.mail.schemas import Email


def parse_request_email(body: bytes, content_type: str) -> Email:
    """An Email from a JSON or message/rfc822 request body."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype in ("message/rfc822", "text/plain", "application/octet-stream"):
        return email_from_mime(body)
    if ctype in ("application/json", ""):
        try:
            data: Any = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidInput("body must be a JSON object (Email JSON)")
        return email_from_json(data)
    raise UnsupportedMediaType(
        f"unsupported content type {ctype!r}: use application/json or message/rfc822"
    )


EMAIL_BODY_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/EmailIn"}},
            "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
        }
    }
}


__all__ = ["EMAIL_BODY_OPENAPI", "parse_request_email", "read_body"]
