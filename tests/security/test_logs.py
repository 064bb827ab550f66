"""Logs are structured JSON lines and never carry credentials or email content."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.core.config import Settings
from app.core.logs import JsonFormatter
from app.main import create_app


def test_request_log_lines_are_json_without_secrets_or_content(
    bank_change_json: Callable[..., dict[str, Any]],
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        app = create_app(
            Settings(api_keys=SecretStr("super-secret-key-123"), env="test", database=False)
        )
        with TestClient(app) as client:
            r = client.post(
                "/v1/classify?token=query-secret",
                json=bank_change_json(),
                headers={"Authorization": "Bearer super-secret-key-123", "X-Request-ID": "req-1"},
            )
            assert r.status_code == 200
            assert r.headers["X-Request-ID"] == "req-1"
            client.post("/v1/classify", json={}, headers={"Authorization": "Bearer wrong-key-456"})
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    access = [x for x in lines if x["logger"] == "countersign.access"]
    assert access[0]["request_id"] == "req-1"
    assert access[0]["route"] == "/v1/classify"
    assert access[0]["status"] == 200
    assert access[1]["status"] == 401
    # The service's own lines (the test's HTTP client logs its requests too).
    text = "\n".join(json.dumps(x) for x in lines if not x["logger"].startswith("httpx"))
    for secret in ("super-secret-key-123", "wrong-key-456", "query-secret", "GB33", "5555"):
        assert secret not in text
