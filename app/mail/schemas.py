"""The Email JSON contract (input) and the normalised Email every other part of the system reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Limits on every field of hostile input. The webhook caps the whole body separately.
MAX_TEXT_CHARS = 5_000_000
MAX_HEADER_VALUE = 16_384
MAX_HEADERS = 256
MAX_RECIPIENTS = 1_000
MAX_ATTACHMENTS = 500

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


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox: display name, address and its domain (lower-cased)."""

    name: str
    address: str
    domain: str

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>" if self.name else self.address


@dataclass(frozen=True, slots=True)
class Attachment:
    """Attachment metadata; content is never kept."""

    filename: str
    content_type: str
    size: int | None


@dataclass(frozen=True, slots=True)
class AuthResults:
    """SPF, DKIM and DMARC outcomes from the receiving gateway's Authentication-Results."""

    spf: str | None = None
    dkim: str | None = None
    dmarc: str | None = None

    def failures(self) -> list[str]:
        """Mechanisms whose outcome is a failure."""
        bad = {"fail", "softfail", "permerror", "temperror"}
        return [
            name
            for name, value in (("spf", self.spf), ("dkim", self.dkim), ("dmarc", self.dmarc))
            if value in bad
        ]


@dataclass(slots=True)
class Email:
    """A normalised email: what detection, storage and display work from."""

    message_id: str
    sender: Address | None
    reply_to: Address | None
    to: list[Address]
    cc: list[Address]
    subject: str
    date: datetime | None
    headers: dict[str, str]
    body: str
    """The whole body as text (HTML converted when there is no plain part)."""
    newest: str
    """The newest message only: what the sender of this email is saying now."""
    quoted: str
    """Quoted or forwarded history below (or interleaved with) the newest message."""
    html_only: bool = False
    html_links: list[tuple[str, str]] = field(default_factory=list)
    """(link text, href) pairs from the HTML part."""
    html_source: str | None = None
    """The HTML alternative of a mail that also has a plain part (never rendered)."""
    attachments: list[Attachment] = field(default_factory=list)
    auth: AuthResults = field(default_factory=AuthResults)
    direction: str = "inbound"
    raw_sha256: str | None = None
    defects: list[str] = field(default_factory=list)
    """Problems met while parsing (bad charset, truncated part, ...); parsing went on."""
