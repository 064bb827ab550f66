"""Email JSON and raw RFC 5322 MIME into one normalised `Email`."""

from __future__ import annotations

import email
import email.header
import email.message
import email.utils
import functools
import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy as email_policy
from typing import TYPE_CHECKING, Any

from app.core.errors import InvalidInput, PayloadTooLarge
from app.mail.html import html_to_text
from app.mail.quotes import split_quoted
from app.mail.schemas import (
    MAX_ATTACHMENTS,
    MAX_HEADER_VALUE,
    MAX_HEADERS,
    MAX_RECIPIENTS,
    Address,
    Attachment,
    AuthResults,
    Email,
)

if TYPE_CHECKING:
    from app.mail.schemas import EmailIn

MAX_RAW_BYTES = 25 * 1024 * 1024
MAX_PARTS = 500
MAX_DEPTH = 20
MAX_BODY_CHARS = 1_000_000
"""Text beyond this is not needed to judge intent and only costs time."""

_KEPT_HEADERS = (
    "authentication-results",
    "in-reply-to",
    "references",
    "return-path",
    "x-mailer",
    "list-id",
    "list-unsubscribe",
    "received-spf",
    "thread-index",
    "x-original-to",
)
_READ_HEADERS = frozenset(
    ("from", "sender", "message-id", "reply-to", "to", "cc", "subject", "date", *_KEPT_HEADERS)
)
_AUTH_RE = {
    mech: re.compile(rf"\b{mech}\s*=\s*([a-z]+)", re.IGNORECASE)
    for mech in ("spf", "dkim", "dmarc")
}
_ANGLE_ADDR = re.compile(r"<(?P<addr>[^<>@\s]+@[^<>\s]+)>\s*$")
_BARE_ADDR = re.compile(r"(?P<addr>[\w.+\-']+@[\w\-]+(?:\.[\w\-]+)+)")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SPACE_RUN = re.compile(r"\s+")


def _clean(value: str, limit: int = MAX_HEADER_VALUE) -> str:
    return _CONTROL.sub("", value)[:limit].strip()


_DOMAIN_CHARS = re.compile(r"[\w.\-]+")


def _make_address(name: str, addr: str, fallback: str) -> Address | None:
    addr = addr.strip().strip("<>").lower()
    if "@" not in addr:
        # A bare display name or garbage: keep the text as a name so the UI can show it.
        text = _clean(name or fallback, 256)
        return Address(name=text, address="", domain="") if text else None
    # Only the characters a domain can hold: junk after it ('>"', markup) must not reach the
    # domain comparisons of the signals.
    found = _DOMAIN_CHARS.match(addr.rsplit("@", 1)[1])
    domain = found.group(0).strip(".").lower() if found else ""
    return Address(name=_clean(name, 256), address=addr[:320], domain=domain[:253])


def parse_address(value: str | None) -> Address | None:
    """One mailbox from a header value; None when there is nothing usable."""
    if not value:
        return None
    if len(value) <= _REMEMBERED_CHARS:
        return _remembered_address(value)
    return _parse_address(value)


def parse_address_list(values: list[str]) -> list[Address]:
    """All mailboxes of several header values (each may hold a comma-separated list)."""
    if sum(map(len, values)) <= _REMEMBERED_CHARS:
        return list(_remembered_address_list(tuple(values)))
    return _parse_address_list(values)


# The same senders and recipients come back mail after mail, and an Address is immutable: short
# header values are parsed once (the stdlib address parser is slow pure Python).
_REMEMBERED_CHARS = 1_000


@functools.lru_cache(maxsize=4096)
def _remembered_address(value: str) -> Address | None:
    return _parse_address(value)


@functools.lru_cache(maxsize=4096)
def _remembered_address_list(values: tuple[str, ...]) -> tuple[Address, ...]:
    return tuple(_parse_address_list(list(values)))


def _parse_address(value: str) -> Address | None:
    cleaned = _clean(value)
    name, addr = email.utils.parseaddr(cleaned)
    if "@" not in addr:
        # Unquoted commas or other specials in the display name ("Smith, CPA <a@b.c>") defeat
        # parseaddr; gateways pass such headers through, so read them leniently.
        match = _ANGLE_ADDR.search(cleaned) or _BARE_ADDR.search(cleaned)
        if match:
            addr = match.group("addr")
            name = cleaned[: match.start()].strip().strip('"').strip()
    return _make_address(name, addr, cleaned)


def _parse_address_list(values: list[str]) -> list[Address]:
    out: list[Address] = []
    for name, addr in email.utils.getaddresses([_clean(v) for v in values])[:MAX_RECIPIENTS]:
        parsed = _make_address(name, addr, name)
        if parsed is not None:
            out.append(parsed)
    return out


def parse_auth_results(value: str | None) -> AuthResults:
    """SPF/DKIM/DMARC outcomes from an Authentication-Results header (first of each)."""
    if not value:
        return AuthResults()
    found = {}
    for mech, rx in _AUTH_RE.items():
        match = rx.search(value)
        found[mech] = match.group(1).lower() if match else None
    return AuthResults(**found)


def parse_date(value: str | None) -> datetime | None:
    """An RFC 5322 or ISO 8601 date; None when it cannot be read."""
    if not value:
        return None
    value = value.strip()[:200]
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def derive_message_id(*parts: str | bytes) -> str:
    """A stable Message-ID from the content when the email has none."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part)
        digest.update(b"\x00")
    return f"<derived.{digest.hexdigest()[:40]}@countersign.invalid>"


def _assemble(
    *,
    message_id: str,
    sender: Address | None,
    reply_to: Address | None,
    to: list[Address],
    cc: list[Address],
    subject: str,
    date: datetime | None,
    headers: dict[str, str],
    text: str | None,
    html: str | None,
    attachments: list[Attachment],
    direction: str,
    raw_sha256: str | None,
    defects: list[str],
) -> Email:
    links: list[tuple[str, str]] = []
    html_only = False
    body = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    html_source = None
    if html:
        if body.strip():
            # A plain part exists: the HTML is read later, and only for its links, only if the
            # email turns out risky (see `html_links_of`).
            html_source = html[:MAX_BODY_CHARS]
        else:
            body, links = html_to_text(html)
            html_only = True
    body = _CONTROL.sub("", body)[:MAX_BODY_CHARS]
    split = split_quoted(body)
    return Email(
        message_id=message_id,
        sender=sender,
        reply_to=reply_to,
        to=to,
        cc=cc,
        subject=subject,
        date=date,
        headers=headers,
        body=body,
        newest=split.newest,
        quoted=split.quoted,
        html_only=html_only,
        html_links=links,
        html_source=html_source,
        attachments=attachments,
        auth=parse_auth_results(headers.get("authentication-results")),
        direction=direction,
        raw_sha256=raw_sha256,
        defects=defects,
    )


def email_from_json(data: object) -> Email:
    """Normalise one Email JSON object; raises InvalidInput naming the problem."""
    # pydantic is imported with the JSON input models, on first use (.eml input does without).
    from pydantic import ValidationError

    from app.mail.schemas import EmailIn

    try:
        msg = EmailIn.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise InvalidInput(f"{where}: {first.get('msg', 'invalid')}") from None
    return email_from_model(msg)


def email_from_model(msg: EmailIn) -> Email:
    """Normalise a validated EmailIn."""
    headers = {k.lower()[:200]: _clean(v) for k, v in list(msg.headers.items())[:MAX_HEADERS]}
    sender = parse_address(msg.from_)
    if sender is None or not sender.address:
        raise InvalidInput("from: no email address found")
    message_id = _clean(msg.message_id or "", 998) or derive_message_id(
        msg.from_, msg.subject, msg.date or "", msg.text or "", msg.html or ""
    )
    attachments = [
        Attachment(
            filename=_clean(a.filename or "", 255),
            content_type=_clean(a.content_type or "application/octet-stream", 255).lower(),
            size=a.size,
        )
        for a in msg.attachments
    ]
    return _assemble(
        message_id=message_id,
        sender=sender,
        reply_to=parse_address(msg.reply_to),
        to=parse_address_list(msg.to),
        cc=parse_address_list(msg.cc),
        subject=_clean(msg.subject),
        date=parse_date(msg.date),
        headers=headers,
        text=msg.text,
        html=msg.html,
        attachments=attachments,
        direction=msg.direction,
        raw_sha256=None,
        defects=[],
    )


def decode_header_value(value: object) -> str:
    """Decode RFC 2047 encoded words, tolerating unknown charsets and broken encodings."""
    if value is None:
        return ""
    if isinstance(value, email.header.Header):
        # compat32 wraps raw 8-bit header bytes in a Header; str() would turn them into U+FFFD.
        raw = _header_text(value)
        if not raw.isascii():
            return _clean(_SPACE_RUN.sub(" ", raw[: MAX_HEADER_VALUE * 2]))
    else:
        raw = str(value)
    raw = raw[: MAX_HEADER_VALUE * 2]
    try:
        chunks = email.header.decode_header(raw)
    except (email.errors.HeaderParseError, ValueError, LookupError, AssertionError):
        return _clean(raw)
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, bytes):
            out.append(_decode_bytes(chunk, charset))
        else:
            out.append(chunk)
    # decode_header drops the whitespace between an encoded word and plain text.
    return _clean(_SPACE_RUN.sub(" ", "".join(out)))


def _header_text(value: email.header.Header) -> str:
    """A compat32 Header of raw 8-bit bytes as text: UTF-8 when it is, else Windows-1252."""
    try:
        chunks = email.header.decode_header(value)
    except (ValueError, LookupError, UnicodeError):
        return str(value)
    return "".join(
        _decode_bytes(chunk, None) if isinstance(chunk, bytes) else chunk for chunk, _ in chunks
    )


def _decode_bytes(data: bytes, charset: str | None, defects: list[str] | None = None) -> str:
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        try:
            return data.decode(candidate.strip().strip('"').lower())
        except (LookupError, UnicodeDecodeError, ValueError):
            if defects is not None and candidate == charset:
                defects.append(f"could not decode as {candidate[:40]!r}")
            continue
    return data.decode("cp1252", errors="replace")


def _walk(msg: email.message.Message) -> Iterator[tuple[email.message.Message, int, bool]]:
    """Parts depth-first without recursion; yields (part, depth, inside an attached message)."""
    stack: list[tuple[email.message.Message, int, bool]] = [(msg, 0, False)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, depth, embedded = stack.pop()
        seen += 1
        yield part, depth, embedded
        if depth >= MAX_DEPTH:
            continue
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            is_rfc822 = part.get_content_type() == "message/rfc822"
            children = [p for p in payload if isinstance(p, email.message.Message)]
            stack.extend((child, depth + 1, embedded or is_rfc822) for child in reversed(children))


def _part_payload(part: email.message.Message, defects: list[str]) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except (ValueError, TypeError, AssertionError):
        defects.append("undecodable part")
        return b""
    if isinstance(data, bytes):
        return data[: MAX_BODY_CHARS * 4]
    return b""


def _encoded_size(part: email.message.Message, defects: list[str]) -> int | None:
    """About the decoded size of a part, from its encoded payload (None when unreadable)."""
    try:
        payload = part.get_payload()
    except (TypeError, ValueError):
        # An 8-bit payload is decoded with the charset parameter, which a hostile header makes an
        # RFC 2231 tuple or an unsortable continuation: the stdlib raises TypeError.
        defects.append("malformed MIME parameters")
        return None
    return len(payload) * 3 // 4 if isinstance(payload, str) else None


def email_from_mime(raw: bytes, *, direction: str = "inbound") -> Email:
    """Parse a raw RFC 5322 message. Broken structure is tolerated; no sender at all is an error."""
    if len(raw) > MAX_RAW_BYTES:
        raise PayloadTooLarge(f"message is larger than {MAX_RAW_BYTES} bytes")
    if not raw.strip():
        raise InvalidInput("message is empty")
    raw_sha = hashlib.sha256(raw).hexdigest()
    # compat32 is about eight times faster than policy.default; headers are decoded here instead.
    try:
        msg = email.message_from_bytes(raw, policy=email_policy.compat32)
    except Exception as exc:  # the stdlib parser may raise anything on hostile input
        raise InvalidInput(f"unparseable MIME message: {type(exc).__name__}") from None
    defects = [type(d).__name__ for d in (msg.defects or [])][:20]
    # The headers read below, found in one pass: `msg.get` scans every header on each call.
    found: dict[str, list[tuple[str, Any]]] = {}
    for key, raw_value in msg.raw_items():
        lowered = key.lower()
        if lowered in _READ_HEADERS:
            found.setdefault(lowered, []).append((key, raw_value))
    fetch = msg.policy.header_fetch_parse  # what `msg.get` returns for a raw header

    def first(name: str) -> object:
        entries = found.get(name)
        return fetch(*entries[0]) if entries else None

    def header(name: str) -> str:
        value = first(name)
        return decode_header_value(value) if value is not None else ""

    def header_all(name: str) -> list[str]:
        entries = found.get(name, [])[:MAX_RECIPIENTS]
        return [decode_header_value(fetch(key, raw_value)) for key, raw_value in entries]

    sender = parse_address(header("from")) or parse_address(header("sender"))
    if sender is None or (not sender.address and not sender.name):
        if not msg.keys():
            raise InvalidInput("not an RFC 5322 message: no headers found")
        defects.append("no From header")
    headers: dict[str, str] = {}
    for key in _KEPT_HEADERS:
        value = first(key)
        if value is not None:
            headers[key] = decode_header_value(value)
    plain: list[str] = []
    html: list[str] = []
    attachments: list[Attachment] = []
    for part, _depth, embedded in _walk(msg):
        if part.is_multipart():
            continue
        # Control characters and folding whitespace of a hostile Content-Type must not reach storage
        # (Postgres refuses NUL in JSONB) or the dashboard.
        ctype = _clean("".join(part.get_content_type().split()), 255)
        # str(): a header holding raw 8-bit bytes comes back as a Header object, not a str.
        disposition = str(part.get("Content-Disposition") or "").lower()
        try:
            filename = (
                decode_header_value(part.get_filename())
                if part.get_param("name") or ("filename" in disposition)
                else ""
            )
            charset = part.get_content_charset()
        except (TypeError, ValueError):
            # RFC 2231 parameters mixing `p*0=` with `p*=` make the stdlib's decode_params sort
            # None against int: read the part without its parameters.
            defects.append("malformed MIME parameters")
            filename, charset = "", None
        is_attachment = "attachment" in disposition or bool(filename)
        if is_attachment or not ctype.startswith("text/"):
            if len(attachments) < MAX_ATTACHMENTS and (filename or ctype != "text/plain"):
                size = _encoded_size(part, defects)
                attachments.append(Attachment(filename[:255], ctype[:255], size))
            continue
        data = _part_payload(part, defects)
        text = _decode_bytes(data, charset, defects)
        if embedded:
            plain.append("\n---------- Forwarded message ---------\n" + text)
        elif ctype == "text/html":
            html.append(text)
        else:
            plain.append(text)
    message_id = header("message-id")[:998] or derive_message_id(raw)
    return _assemble(
        message_id=message_id,
        sender=sender,
        reply_to=parse_address(header("reply-to")),
        to=parse_address_list(header_all("to")),
        cc=parse_address_list(header_all("cc")),
        subject=header("subject"),
        date=parse_date(header("date")),
        headers=headers,
        text="\n\n".join(plain) if plain else None,
        html="\n".join(html) if html else None,
        attachments=attachments,
        direction=direction,
        raw_sha256=raw_sha,
        defects=defects,
    )
