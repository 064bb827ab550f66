"""Send one email to Countersign the way a mail gateway does, and print its verdict.

    export COUNTERSIGN_URL=http://127.0.0.1:8000  # the service (this is the default)
    export COUNTERSIGN_SOURCE=gateway             # this gateway's name in the service's
    export COUNTERSIGN_SECRET=...                 #   COUNTERSIGN_WEBHOOK_SECRETS, and its secret
    python gateway_example.py message.eml         # raw MIME (message/rfc822)
    python gateway_example.py message.json        # Email JSON (application/json)

Copy it and adapt it: it needs only httpx and the standard library. Every attempt is signed
afresh (the signature covers a timestamp the service accepts for five minutes). Retrying is safe
because the service stores each message once per source and Message-ID and answers a retry with
the first verdict. Unavailability (503, 502, 504, 429, connection errors, timeouts) is retried
with exponential backoff and jitter, waiting at least as long as the Retry-After header asks.

Exit status: 0 verdict printed; 1 request refused (4xx: fix the request or the configuration,
retrying will not help); 2 no verdict (service unavailable after every retry, or a 5xx). A real
gateway then applies its own policy for mail without a verdict: deliver it (fail open) or defer it.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import sys
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx

RETRY_STATUSES = {429, 502, 503, 504}
MAX_ATTEMPTS = 6
MAX_WAIT_SECONDS = 60.0


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """X-Countersign-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asked us to wait (Retry-After as seconds or as an HTTP date)."""
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def backoff(attempt: int) -> float:
    """1, 2, 4, 8 ... seconds, with jitter so that many senders do not retry in step."""
    return min(MAX_WAIT_SECONDS, 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)


def post_email(
    client: httpx.Client, url: str, source: str, secret: bytes, body: bytes, content_type: str
) -> httpx.Response | None:
    """POST the email, retrying while the service is unavailable; None when it never answered."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": content_type,
            "X-Countersign-Source": source,
            "X-Countersign-Timestamp": timestamp,
            "X-Countersign-Signature": sign(secret, timestamp, body),
        }
        try:
            response = client.post(url, content=body, headers=headers)
        except httpx.TransportError as exc:  # refused, reset, timed out
            problem, wait = type(exc).__name__, backoff(attempt)
        else:
            if response.status_code not in RETRY_STATUSES:
                return response
            problem = f"HTTP {response.status_code}"
            wait = max(retry_after(response) or 0.0, backoff(attempt))
        if attempt == MAX_ATTEMPTS:
            print(f"giving up after {attempt} attempts: {problem}", file=sys.stderr)
            return None
        wait = min(wait, MAX_WAIT_SECONDS)
        print(f"attempt {attempt}: {problem}; retrying in {wait:.1f} s", file=sys.stderr)
        time.sleep(wait)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description="Send one email to Countersign.")
    parser.add_argument("path", type=Path, help=".eml (raw MIME) or .json (Email JSON) file")
    parser.add_argument("--url", default=os.environ.get("COUNTERSIGN_URL", "http://127.0.0.1:8000"))
    args = parser.parse_args()
    source = os.environ.get("COUNTERSIGN_SOURCE", "")
    secret = os.environ.get("COUNTERSIGN_SECRET", "")
    if not source or not secret:
        print("set COUNTERSIGN_SOURCE and COUNTERSIGN_SECRET", file=sys.stderr)
        return 1

    body = args.path.read_bytes()
    is_json = args.path.suffix.lower() == ".json"
    content_type = "application/json" if is_json else "message/rfc822"
    url = args.url.rstrip("/") + "/v1/messages"
    with httpx.Client(timeout=httpx.Timeout(30.0, connect=5.0)) as client:
        response = post_email(client, url, source, secret.encode(), body, content_type)

    if response is None:
        return 2
    if response.is_success:
        verdict = response.json()
        print(json.dumps(verdict, indent=2, ensure_ascii=False))
        ticket = verdict.get("ticket") or {}
        replayed = response.headers.get("Idempotent-Replayed") == "true"
        needs = json.dumps(verdict.get("needs_verification"))
        print(
            f"action={verdict.get('action')} needs_verification={needs}"
            + (f" ticket=#{ticket.get('number')} ({ticket.get('url')})" if ticket else "")
            + (" (replayed: this message was ingested before)" if replayed else ""),
            file=sys.stderr,
        )
        return 0
    # Errors are JSON: {"error": code, "detail": text}.
    print(f"HTTP {response.status_code}: {response.text[:2000]}", file=sys.stderr)
    return 1 if 400 <= response.status_code < 500 else 2


if __name__ == "__main__":
    sys.exit(main())
