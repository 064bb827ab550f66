"""The Email JSON contract as pydantic models: what the API and `countersign classify` accept.

Import these from app.mail.schemas (which loads this module, and pydantic, on first use).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.mail.schemas import (
    MAX_ATTACHMENTS,
    MAX_HEADER_VALUE,
    MAX_HEADERS,
    MAX_RECIPIENTS,
    MAX_TEXT_CHARS,
)

ShortStr = Annotated[str, StringConstraints(max_length=4_096)]
HeaderValue = Annotated[str, StringConstraints(max_length=MAX_HEADER_VALUE)]


class AttachmentIn(BaseModel):
    """Attachment metadata as sent by the gateway (content is never sent)."""

    model_config = ConfigDict(extra="ignore")

    filename: ShortStr | None = None
    content_type: ShortStr | None = None
    size: int | None = Field(default=None, ge=0)


class EmailIn(BaseModel):
    """Email JSON as defined in DESIGN.md; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    message_id: ShortStr | None = None
    from_: ShortStr = Field(alias="from")
    reply_to: ShortStr | None = None
    to: list[ShortStr] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    cc: list[ShortStr] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    subject: Annotated[str, StringConstraints(max_length=MAX_HEADER_VALUE)] = ""
    date: ShortStr | None = None
    headers: dict[ShortStr, HeaderValue] = Field(default_factory=dict, max_length=MAX_HEADERS)
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)] | None = None
    html: Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)] | None = None
    attachments: list[AttachmentIn] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    direction: Literal["inbound", "outbound"] = "inbound"
