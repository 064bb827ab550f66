"""Request-body plumbing shared by the routers: size limits enforced while reading."""

from __future__ import annotations

from fastapi import Request

from app.core.errors import PayloadTooLarge


def refuse_declared_oversize(request: Request, limit: int) -> None:
    """Refuse a body whose declared Content-Length is over `limit`, before reading any of it."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body is larger than {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes without reading it all."""
    refuse_declared_oversize(request, limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
