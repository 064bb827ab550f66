"""Reading email request bodies: size limits and content types (JSON or raw MIME)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from app.core.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from app.mail.parse import email_from_json, email_from_mime
from app.mail.schemas import Email


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body is larger than {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


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
