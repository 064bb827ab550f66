"""The soak test's notice receiver: a signed-webhook endpoint that records every delivery.

    SOAK_RECEIVER_SECRET=S python scripts/_soak_receiver.py --port P --log deliveries.jsonl

Run by scripts/soak.py as a subprocess. It stands in for the verifier's side of
COUNTERSIGN_NOTIFY_WEBHOOK_URL:

- `POST /notice`: checks the signature (`X-Countersign-Signature: v1=<hex HMAC-SHA256 of
  timestamp + "." + body>`, timestamp within 5 minutes) in constant time, checks the body against
  `X-Countersign-Delivery` and `X-Countersign-Attempt`, waits `--delay` seconds (a receiver is not
  instant, so a killed worker is often caught mid-delivery) and answers 200, or 503 while told to
  fail, or 401 for a bad signature. Every request is appended to the log as one JSON line with the
  outbox id, the attempt, the answer and the time, flushed at once.
- `POST /control/fail?seconds=N`: answer 503 to notices for the next N seconds (0 ends it).
- `GET /control/stats`: counts so far, for the soak's timeline.
- `GET /healthz`: 200.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOLERANCE = 300


class State:
    """What the receiver was told and what it saw, shared by the handler threads."""

    def __init__(self, secret: bytes, log_path: Path, delay: float) -> None:
        self.secret = secret
        self.delay = delay
        self.lock = threading.Lock()
        self.fail_until = 0.0
        self.log = log_path.open("a", encoding="utf-8")
        self.counts: dict[str, int] = {"ok": 0, "failed_on_purpose": 0, "bad_signature": 0}
        self.delivered_ids: set[int] = set()

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.log.write(json.dumps(entry) + "\n")
            self.log.flush()
            self.counts[entry["answer"]] = self.counts.get(entry["answer"], 0) + 1
            if entry["answer"] == "ok" and isinstance(entry.get("delivery"), int):
                self.delivered_ids.add(entry["delivery"])


def signature_ok(secret: bytes, timestamp: str, signature: str, body: bytes) -> bool:
    """Whether `signature` is v1=HMAC-SHA256(secret, timestamp + "." + body), timestamp fresh."""
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > TOLERANCE:
        return False
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    for part in signature.split(","):
        version, _, value = part.strip().partition("=")
        if version == "v1" and hmac.compare_digest(expected.encode(), value.strip().encode()):
            return True
    return False


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle(self) -> None:
            # A killed worker drops its keep-alive connection: not worth a traceback.
            with contextlib.suppress(ConnectionError):
                super().handle()

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/healthz":
                self._answer(200, {"status": "ok"})
            elif path == "/control/stats":
                with state.lock:
                    stats = {
                        **state.counts,
                        "distinct_delivered": len(state.delivered_ids),
                        "failing": time.time() < state.fail_until,
                    }
                self._answer(200, stats)
            else:
                self._answer(404, {"error": "not_found"})

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if parts.path == "/control/fail":
                seconds = float(parse_qs(parts.query).get("seconds", ["0"])[0])
                with state.lock:
                    state.fail_until = time.time() + seconds if seconds > 0 else 0.0
                self._answer(200, {"failing_for": seconds})
                return
            if parts.path != "/notice":
                self._answer(404, {"error": "not_found"})
                return
            received = time.time()
            headers = {k.lower(): v for k, v in self.headers.items()}
            delivery = headers.get("x-countersign-delivery", "")
            attempt = headers.get("x-countersign-attempt", "")
            entry: dict[str, Any] = {
                "t": received,
                "delivery": int(delivery) if delivery.isdigit() else delivery,
                "attempt": int(attempt) if attempt.isdigit() else attempt,
                "event": headers.get("x-countersign-event", ""),
            }
            if not signature_ok(
                state.secret,
                headers.get("x-countersign-timestamp", ""),
                headers.get("x-countersign-signature", ""),
                body,
            ):
                entry["answer"] = "bad_signature"
                state.record(entry)
                self._answer(401, {"error": "bad signature"})
                return
            problems = []
            try:
                notice = json.loads(body)
            except ValueError:
                notice = {}
                problems.append("body is not JSON")
            if notice.get("delivery_id") != entry["delivery"]:
                problems.append("delivery_id differs from X-Countersign-Delivery")
            if notice.get("attempt") != entry["attempt"]:
                problems.append("attempt differs from X-Countersign-Attempt")
            if not str(notice.get("verify_url", "")).startswith("http"):
                problems.append("no verify_url")
            ticket = notice.get("ticket") if isinstance(notice.get("ticket"), dict) else {}
            entry["ticket_id"] = ticket.get("ticket_id")
            entry["verify_url_sha"] = hashlib.sha256(
                str(notice.get("verify_url", "")).encode()
            ).hexdigest()[:16]
            if problems:
                entry["problems"] = problems
            with state.lock:
                failing = time.time() < state.fail_until
            if failing:
                entry["answer"] = "failed_on_purpose"
                state.record(entry)
                self._answer(503, {"error": "receiver told to fail"})
                return
            if state.delay > 0:
                time.sleep(state.delay)
            entry["answer"] = "ok"
            entry["answered_at"] = time.time()
            try:
                self._answer(200, {"status": "received"})
                entry["answer_sent"] = True
            except OSError:  # the sender went away (a killed worker) before hearing the 200
                entry["answer_sent"] = False
                self.close_connection = True
            state.record(entry)

    return Handler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds before answering 200")
    args = parser.parse_args()
    secret = os.environ.get("SOAK_RECEIVER_SECRET", "")
    if not secret:
        parser.error("set SOAK_RECEIVER_SECRET (the notify webhook secret)")
    state = State(secret.encode(), args.log, args.delay)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(state))
    server.daemon_threads = True
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        state.log.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
