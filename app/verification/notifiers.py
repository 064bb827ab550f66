"""Notifiers that carry a verification notice to the verifier: a signed webhook and Slack."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx

from app import __version__
from app.core.config import Settings
from app.core.security import sign

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
ERROR_SNIPPET = 200


@dataclass(frozen=True, slots=True)
class Notice:
    """One delivery: the outbox row's payload plus the one-time link minted for this attempt."""

    delivery_id: int
    attempt: int
    kind: str
    payload: dict[str, Any]
    verify_url: str
    link_expires_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The webhook body."""
        return {
            "delivery_id": self.delivery_id,
            "attempt": self.attempt,
            "kind": self.kind,
            "ticket": self.payload,
            "verify_url": self.verify_url,
            "link_expires_at": self.link_expires_at.isoformat(),
        }


class DeliveryError(Exception):
    """The notice was not accepted (non-2xx or a network error); the worker retries."""


class Notifier(Protocol):
    """Delivers a notice or raises; anything it raises counts as a failed attempt."""

    name: str

    def send(self, notice: Notice) -> None:
        """Deliver `notice`; raise DeliveryError when it was not accepted."""


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in text)[:ERROR_SNIPPET].strip()


class HttpNotifier:
    """POSTs a body to a fixed URL; any non-2xx response or network error is a failure."""

    name = "http"

    def __init__(
        self,
        url: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{self.name} notifier needs an http(s) URL")
        self._url = url
        self._client = httpx.Client(
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": f"countersign/{__version__}"},
        )

    def _redact(self, text: str) -> str:
        # Webhook URLs can be secrets themselves (Slack): never put them in last_error or logs.
        return _printable(text.replace(self._url, "<notifier url>"))

    def post(self, body: bytes, headers: dict[str, str]) -> None:
        """Send `body`; raises DeliveryError unless the receiver answers 2xx."""
        try:
            with self._client.stream("POST", self._url, content=body, headers=headers) as resp:
                if 200 <= resp.status_code < 300:
                    return
                snippet = b""
                for chunk in resp.iter_bytes():
                    snippet += chunk
                    if len(snippet) >= ERROR_SNIPPET:
                        break
        except httpx.HTTPError as exc:
            raise DeliveryError(self._redact(f"{type(exc).__name__}: {exc}")) from None
        detail = self._redact(snippet.decode("utf-8", "replace"))
        raise DeliveryError(f"HTTP {resp.status_code}" + (f": {detail}" if detail else ""))

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()


class WebhookNotifier(HttpNotifier):
    """A generic JSON webhook, signed like the gateway's webhooks (app.core.security.sign).

    Headers: X-Countersign-Timestamp, X-Countersign-Signature (`v1=<hex HMAC-SHA256 of
    timestamp + "." + body>`), X-Countersign-Delivery (the outbox id, stable across retries, so a
    receiver can drop a repeated delivery) and X-Countersign-Attempt. A receiver that de-duplicates
    should keep the link of the highest attempt: the link of an attempt that failed (say, a
    timeout after the receiver had the body) is expired at once.
    """

    name = "webhook"

    def __init__(
        self,
        url: str,
        secret: bytes,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not secret:
            raise ValueError(
                "COUNTERSIGN_NOTIFY_WEBHOOK_SECRET must be set when a notify webhook URL is: "
                "the notice carries a live verification link"
            )
        super().__init__(url, timeout=timeout, transport=transport)
        self._secret = secret

    def send(self, notice: Notice) -> None:
        """POST the notice as signed JSON."""
        body = json.dumps(notice.to_json(), sort_keys=True, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        self.post(
            body,
            {
                "Content-Type": "application/json",
                "X-Countersign-Timestamp": timestamp,
                "X-Countersign-Signature": sign(self._secret, timestamp, body),
                "X-Countersign-Delivery": str(notice.delivery_id),
                "X-Countersign-Attempt": str(notice.attempt),
                "X-Countersign-Event": notice.kind,
            },
        )


def slack_escape(text: Any) -> str:
    """Slack mrkdwn escaping: email-derived text must not become links or @channel mentions."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _date(value: Any) -> str:
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d")
    except ValueError:
        return "an unknown date"


def slack_text(notice: Notice) -> str:
    """The Slack message: what to confirm, whom to call, what not to use, and the link."""
    p = notice.payload
    e = slack_escape
    lines = [
        f"*Countersign: verify ticket #{e(p.get('number', '?'))}* "
        f"({e(p.get('intent', ''))}, {e(p.get('severity', ''))} severity)",
        e(p.get("summary") or "A risky request needs out-of-band verification."),
    ]
    if p.get("subject"):
        lines.append(f"Email subject: {e(p['subject'])}")
    contacts = [c for c in p.get("known_good_contacts") or [] if isinstance(c, dict)]
    if contacts:
        lines.append("*Known-good contacts (call these, not the email's):*")
        for c in contacts:
            reach = ", ".join(e(v) for v in (c.get("phone"), c.get("email")) if v)
            who = e(c.get("name") or c.get("who") or "contact")
            role = f" ({e(c['who'])})" if c.get("who") and c.get("name") else ""
            since = f"on file since {_date(c.get('added_at'))}"
            if c.get("added_by"):
                since += f", added by {e(c['added_by'])}"
            if not c.get("on_file_before_email"):
                since += "; added after the email arrived: confirm it independently"
            lines.append(f"• {who}{role}: {reach or 'no phone or email on file'} ({since})")
    else:
        lines.append(
            "*No known-good contact on file:* find one through an independent source "
            "(a contract, an earlier invoice, the official website)."
        )
    supplied = p.get("supplied_by_email") or {}
    details = [
        str(v) for key in ("accounts", "phones", "links") for v in supplied.get(key) or [] if v
    ]
    lines.append(
        "*Supplied by the email: do not use:* "
        + ("; ".join(e(d) for d in details[:20]) if details else "none found")
    )
    if p.get("due_at"):
        lines.append(f"Verify by {e(p['due_at'])}.")
    lines.append(
        f"Record the outcome (one-time link, expires {notice.link_expires_at:%Y-%m-%d %H:%M} UTC): "
        f"<{notice.verify_url}|open the verification page>"
    )
    return "\n".join(lines)


class SlackNotifier(HttpNotifier):
    """A Slack-compatible incoming webhook (`{"text": ...}`)."""

    name = "slack"

    def send(self, notice: Notice) -> None:
        """POST the notice as a Slack message."""
        body = json.dumps({"text": slack_text(notice)}).encode()
        self.post(body, {"Content-Type": "application/json"})


def build_notifiers(
    settings: Settings, *, transport: httpx.BaseTransport | None = None
) -> dict[str, Notifier]:
    """The notifiers configured in `settings`, by name; raises ValueError on a bad configuration."""
    out: dict[str, Notifier] = {}
    for name in settings.notifier_names():
        if name == "webhook" and settings.notify_webhook_url:
            out[name] = WebhookNotifier(
                settings.notify_webhook_url,
                settings.notify_webhook_secret.get_secret_value().encode(),
                transport=transport,
            )
        elif name == "slack":
            out[name] = SlackNotifier(
                settings.notify_slack_url.get_secret_value(), transport=transport
            )
    return out


def close_notifiers(notifiers: dict[str, Notifier]) -> None:
    """Close the notifiers that hold resources."""
    for notifier in notifiers.values():
        close = getattr(notifier, "close", None)
        if callable(close):
            close()
