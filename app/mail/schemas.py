"""The Email JSON contract (input) and the normalised Email every other part of the system reads.

The JSON input models (`EmailIn`, `AttachmentIn`) live in app.mail.email_in and are imported from
here on first use: they need pydantic, which classifying .eml files does not (it costs about a
tenth of a second at start-up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.mail.email_in import AttachmentIn, EmailIn, HeaderValue, ShortStr

__all__ = [
    "MAX_ATTACHMENTS",
    "MAX_HEADERS",
    "MAX_HEADER_VALUE",
    "MAX_RECIPIENTS",
    "MAX_TEXT_CHARS",
    "Address",
    "Attachment",
    "AttachmentIn",
    "AuthResults",
    "Email",
    "EmailIn",
    "HeaderValue",
    "ShortStr",
]

# Limits on every field of hostile input. The webhook caps the whole body separately.
MAX_TEXT_CHARS = 5_000_000
MAX_HEADER_VALUE = 16_384
MAX_HEADERS = 256
MAX_RECIPIENTS = 1_000
MAX_ATTACHMENTS = 500

_LAZY = frozenset({"AttachmentIn", "EmailIn", "HeaderValue", "ShortStr"})


def __getattr__(name: str) -> Any:
    # PEP 562: `from app.mail.schemas import EmailIn` imports pydantic only when it is asked for.
    if name in _LAZY:
        from app.mail import email_in

        return getattr(email_in, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
