"""Notifiers: the signed webhook verifies with the gateway's scheme, Slack text is safe."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.errors import Unauthorized
from app.core.security import verify_signature
from app.verification.models import OutboxItem
from app.verification.notifiers import (
    DeliveryError,
    Notice,
    SlackNotifier,
    WebhookNotifier,
    build_notifiers,
    slack_text,
)
from app.verification.worker import WorkerConfig, run_worker

SECRET = b"receiver-shared-secret"
URL = "https://hooks.example/countersign"
LINK = "https://countersign.example/verify/abc_DEF-123"


def _notice(**payload: Any) -> Notice:
    base = {
        "ticket_id": "6f1c7f0e-0000-4000-8000-000000000001",
        "number": 1042,
        "intent": "payment_change",
        "severity": "high",
        "summary": "Confirm change of payment or bank details from Acme Supplies.",
        "subject": "New bank details",
        "counterparty": "Acme Supplies",
        "due_at": "2026-02-03T09:30:00+00:00",
        "known_good_contacts": [
            {
                "who": "vendor contact",
                "name": "Mark Ellis",
                "phone": "+44 20 7946 0018",
                "email": "mark.ellis@acme-supplies.com",
                "added_at": "2024-01-15T09:00:00+00:00",
                "added_by": "vendor-master import",
                "on_file_before_email": True,
            }
        ],
        "supplied_by_email": {
            "accounts": ["iban ending 5555"],
            "phones": ["+44 7700 900461"],
            "links": [],
            "note": "supplied by the email: do not use",
        },
    }
    base.update(payload)
    return Notice(
        delivery_id=77,
        attempt=2,
        kind="ticket_opened",
        payload=base,
        verify_url=LINK,
        link_expires_at=datetime(2026, 2, 5, 9, 30, tzinfo=UTC),
    )


class Captured:
    """Requests seen by a MockTransport, answered with a fixed status."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, text="ok" if self.status < 300 else "no_service")


def test_webhook_notifier_sends_a_signature_the_receiver_can_verify() -> None:
    seen = Captured()
    WebhookNotifier(URL, SECRET, transport=httpx.MockTransport(seen)).send(_notice())
    (request,) = seen.requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-countersign-delivery"] == "77"
    assert request.headers["x-countersign-attempt"] == "2"
    body = request.content
    verify_signature(
        secrets_for_source=[SECRET],
        timestamp=request.headers["x-countersign-timestamp"],
        signature=request.headers["x-countersign-signature"],
        body=body,
        tolerance=60,
    )
    data = json.loads(body)
    assert data["verify_url"] == LINK
    assert data["delivery_id"] == 77
    assert data["ticket"]["number"] == 1042
    with pytest.raises(Unauthorized):
        verify_signature(
            secrets_for_source=[SECRET],
            timestamp=request.headers["x-countersign-timestamp"],
            signature=request.headers["x-countersign-signature"],
            body=body.replace(b"1042", b"1043"),
            tolerance=60,
        )
    with pytest.raises(Unauthorized):
        verify_signature(
            secrets_for_source=[b"another secret"],
            timestamp=request.headers["x-countersign-timestamp"],
            signature=request.headers["x-countersign-signature"],
            body=body,
            tolerance=60,
        )


@pytest.mark.parametrize("status", [301, 400, 404, 429, 500, 503])
def test_any_non_2xx_answer_is_a_failed_delivery(status: int) -> None:
    notifier = WebhookNotifier(URL, SECRET, transport=httpx.MockTransport(Captured(status)))
    with pytest.raises(DeliveryError, match=f"HTTP {status}"):
        notifier.send(_notice())


def test_network_errors_are_failures_and_never_reveal_the_notifier_url() -> None:
    secret_url = "https://hooks.slack.example/services/T000/B000/very-secret-path"

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {secret_url}", request=request)

    notifier = SlackNotifier(secret_url, transport=httpx.MockTransport(refuse))
    with pytest.raises(DeliveryError) as info:
        notifier.send(_notice())
    assert "ConnectError" in str(info.value)
    assert "very-secret-path" not in str(info.value)


def test_webhook_without_a_secret_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="NOTIFY_WEBHOOK_SECRET"):
        WebhookNotifier(URL, b"")
    with pytest.raises(ValueError, match="http"):
        WebhookNotifier("ftp://hooks.example/x", SECRET)


def test_slack_message_has_the_contacts_the_do_not_use_line_and_the_link() -> None:
    seen = Captured()
    SlackNotifier(URL, transport=httpx.MockTransport(seen)).send(_notice())
    (request,) = seen.requests
    message = json.loads(request.content)
    assert set(message) == {"text"}
    text = message["text"]
    assert "ticket #1042" in text
    assert "Confirm change of payment or bank details from Acme Supplies." in text
    assert "Mark Ellis (vendor contact): +44 20 7946 0018, mark.ellis@acme-supplies.com" in text
    assert "on file since 2024-01-15, added by vendor-master import" in text
    do_not_use = next(line for line in text.splitlines() if "do not use" in line)
    assert "Supplied by the email: do not use" in do_not_use
    assert "+44 7700 900461" in do_not_use
    assert "iban ending 5555" in do_not_use
    assert f"<{LINK}|open the verification page>" in text


def test_slack_text_escapes_email_content_so_it_cannot_ping_or_link() -> None:
    text = slack_text(
        _notice(
            subject="<!channel> urgent <https://evil.example|click> & pay",
            counterparty="x",
            summary="Pay <@U123>",
        )
    )
    assert "<!channel>" not in text
    assert "<https://evil.example|click>" not in text
    assert "&lt;!channel&gt; urgent &lt;https://evil.example|click&gt; &amp; pay" in text
    assert "Pay &lt;@U123&gt;" in text
    # Only our own link is a Slack link.
    assert text.count("<") == 1


def test_slack_flags_a_contact_added_after_the_email() -> None:
    contact = {
        "who": "finance",
        "name": "AP desk",
        "phone": "+1 555 0100",
        "email": "",
        "added_at": "2026-02-02T10:00:00+00:00",
        "added_by": "analyst",
        "on_file_before_email": False,
    }
    text = slack_text(_notice(known_good_contacts=[contact]))
    assert "added after the email arrived: confirm it independently" in text


def test_build_notifiers_follows_the_settings() -> None:
    none = Settings(_env_file=None)
    assert build_notifiers(none) == {}
    both = Settings(
        _env_file=None,
        notify_webhook_url=URL,
        notify_webhook_secret="s3cret",
        notify_slack_url="https://hooks.slack.example/services/x",
    )
    notifiers = build_notifiers(both)
    assert sorted(notifiers) == ["slack", "webhook"]
    assert isinstance(notifiers["webhook"], WebhookNotifier)
    assert isinstance(notifiers["slack"], SlackNotifier)
    unsigned = Settings(_env_file=None, notify_webhook_url=URL)
    with pytest.raises(ValueError, match="NOTIFY_WEBHOOK_SECRET"):
        build_notifiers(unsigned)


# --- a real local receiver ----------------------------------------------------------------------


class Receiver:
    """A local HTTP server that checks each delivery's signature like a real receiver would."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.lock = threading.Lock()
        self.hits = 0
        self.accepted: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.hits += 1
                    hit = receiver.hits
                if hit <= receiver.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                try:
                    verify_signature(
                        secrets_for_source=[SECRET],
                        timestamp=self.headers.get("X-Countersign-Timestamp"),
                        signature=self.headers.get("X-Countersign-Signature"),
                        body=body,
                        tolerance=300,
                    )
                except Unauthorized as exc:
                    with receiver.lock:
                        receiver.rejected.append(exc.detail)
                    self.send_response(401)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.accepted.append(
                        {"delivery": self.headers.get("X-Countersign-Delivery"), **json.loads(body)}
                    )
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A signature-checking receiver that answers 503 to its first two deliveries."""
    with Receiver(fail_first=2) as r:
        yield r


def test_worker_delivers_to_a_real_receiver_that_verifies_the_signature(
    committed: sessionmaker[Session], queue_notices: Any, receiver: Receiver
) -> None:
    ((ticket_id, item_id),) = queue_notices(1)
    settings = Settings(
        _env_file=None,
        public_url="https://countersign.example",
        notify_webhook_url=receiver.url,
        notify_webhook_secret=SECRET.decode(),
    )
    config = WorkerConfig(worker_id="w", poll_interval=0.05, backoff_base=0, backoff_cap=0)
    assert run_worker(settings, committed, once=True, config=config) == 0
    assert receiver.hits == 3
    assert receiver.rejected == []
    (delivery,) = receiver.accepted
    assert delivery["delivery"] == str(item_id)
    assert delivery["attempt"] == 3
    assert delivery["ticket"]["ticket_id"] == str(ticket_id)
    assert delivery["verify_url"].startswith("https://countersign.example/verify/")
    with committed() as session:
        item = session.get_one(OutboxItem, item_id)
        assert (item.status, item.attempts, item.last_error) == ("delivered", 3, "HTTP 503")


def test_a_receiver_with_another_secret_rejects_the_delivery_and_it_is_retried(
    committed: sessionmaker[Session], queue_notices: Any
) -> None:
    ((_, item_id),) = queue_notices(1)
    with Receiver() as r:
        settings = Settings(
            _env_file=None,
            notify_webhook_url=r.url,
            notify_webhook_secret="not-the-receivers-secret",
        )
        config = WorkerConfig(worker_id="w", poll_interval=0.05, backoff_base=60, backoff_cap=60)
        run_worker(settings, committed, once=True, config=config)
        assert r.rejected == ["signature does not match"]
        assert r.accepted == []
    with committed() as session:
        item = session.get_one(OutboxItem, item_id)
        assert (item.status, item.attempts, item.last_error) == ("pending", 1, "HTTP 401")
