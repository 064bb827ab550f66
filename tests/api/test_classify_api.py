"""The HTTP API without a database: health, readiness, auth, /v1/classify, metrics and OpenAPI."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.core.config import Settings
from app.main import create_app

BEARER_K1 = {"Authorization": "Bearer k1"}
SMALL_LIMIT = 600


@pytest.fixture(scope="module")
def client(shipped_manifest) -> Iterator[TestClient]:
    app = create_app(Settings(api_keys=SecretStr("k1,k2"), env="test", database=False))
    with TestClient(app) as test_client:
        yield test_client


def _post_json(client: TestClient, payload: object, headers: dict[str, str] | None = None):
    return client.post(
        "/v1/classify",
        content=json.dumps(payload),
        headers={"Content-Type": "application/json", **(headers or BEARER_K1)},
    )


def test_healthz_answers_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_the_loaded_model_version(client, shipped_manifest):
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["model_version"] == shipped_manifest["model_version"]


def test_classify_without_api_key_is_unauthorized_json(client, lunch_json):
    response = client.post("/v1/classify", json=lunch_json())

    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "unauthorized"
    assert body["detail"]


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer nope"}, {"X-API-Key": "k3"}, {"Authorization": "k1"}],
    ids=["wrong-bearer", "wrong-x-api-key", "no-bearer-scheme"],
)
def test_classify_with_a_wrong_api_key_is_unauthorized(client, lunch_json, headers):
    response = _post_json(client, lunch_json(), headers)

    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer k1"},
        {"Authorization": "Bearer k2"},
        {"X-API-Key": "k1"},
        {"X-API-Key": "k2"},
    ],
    ids=["bearer-k1", "bearer-k2", "x-api-key-k1", "x-api-key-k2"],
)
def test_classify_with_either_key_returns_the_verdict(
    client, bank_change_json, shipped_manifest, headers
):
    response = _post_json(client, bank_change_json(), headers)

    assert response.status_code == 200
    verdict = response.json()
    assert verdict["message_id"] == "<bank-change@acme-supplies.com>"
    assert verdict["needs_verification"] is True
    assert verdict["intents"][0]["name"] == "payment_change"
    assert verdict["action"] in {"banner", "hold"}
    assert verdict["ticket"] is None
    assert verdict["model_version"] == shipped_manifest["model_version"]


def test_classify_of_a_benign_email_json_delivers(client, lunch_json):
    response = _post_json(client, lunch_json())

    assert response.status_code == 200
    assert response.json()["needs_verification"] is False
    assert response.json()["action"] == "deliver"


def test_classify_accepts_raw_rfc822_bytes(client, eml_bytes, bank_change_ask):
    raw = eml_bytes(
        sender="Mark Ellis <mark.ellis@acme-supplies.com>",
        subject="New bank details",
        text=f"Hello,\n\n{bank_change_ask}\n\nThanks,\nMark",
        message_id="<raw-1@acme-supplies.com>",
    )

    response = client.post(
        "/v1/classify", content=raw, headers={"Content-Type": "message/rfc822", **BEARER_K1}
    )

    assert response.status_code == 200
    assert response.json()["message_id"] == "<raw-1@acme-supplies.com>"
    assert response.json()["needs_verification"] is True


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ('{"from": "a@b.com", "text": ', "JSON"),
        ('[{"from": "a@b.com"}]', "object"),
        ('{"subject": "hi", "text": "no sender"}', "from"),
        ('{"from": "a@b.com", "subject": 42}', "subject"),
        ('{"from": "a@b.com", "to": "ap@corp.example"}', "to"),
        ('{"from": "a@b.com", "headers": ["x"]}', "headers"),
        ('{"from": "nobody at all"}', "from"),
    ],
    ids=[
        "malformed-json",
        "json-array",
        "missing-from",
        "subject-not-a-string",
        "to-not-a-list",
        "headers-not-an-object",
        "from-without-address",
    ],
)
def test_bad_email_json_is_422_naming_the_problem(client, body, names):
    response = client.post(
        "/v1/classify", content=body, headers={"Content-Type": "application/json", **BEARER_K1}
    )

    assert response.status_code == 422
    error = response.json()
    assert error["error"]
    assert names in error["detail"]


def test_unsupported_content_type_is_415(client):
    response = client.post(
        "/v1/classify", content=b"a,b,c\n", headers={"Content-Type": "text/csv", **BEARER_K1}
    )

    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_body_over_the_configured_limit_is_413(shipped_manifest, lunch_json):
    settings = Settings(
        api_keys=SecretStr("k1"), env="test", max_body_bytes=SMALL_LIMIT, database=False
    )
    small = lunch_json()
    big = lunch_json(text="x" * (SMALL_LIMIT * 2))
    with TestClient(create_app(settings)) as client:
        ok = _post_json(client, small)
        too_big = _post_json(client, big)

    assert len(json.dumps(small)) < SMALL_LIMIT
    assert ok.status_code == 200
    assert too_big.status_code == 413
    assert too_big.json()["error"] == "payload_too_large"


def test_metrics_count_verdicts_after_a_classify(client, lunch_json):
    assert _post_json(client, lunch_json()).status_code == 200

    response = client.get("/metrics")

    assert response.status_code == 200
    delivered = [
        line
        for line in response.text.splitlines()
        if line.startswith('countersign_verdicts_total{action="deliver"}')
    ]
    assert delivered
    assert float(delivered[0].split()[-1]) >= 1.0


def test_openapi_lists_the_classify_endpoint_with_both_body_types(client):
    response = client.get("/openapi.json")

    assert response.status_code == 200
    schema = response.json()
    assert "/v1/classify" in schema["paths"]
    content = schema["paths"]["/v1/classify"]["post"]["requestBody"]["content"]
    assert {"application/json", "message/rfc822"} <= set(content)
    assert "EmailIn" in schema["components"]["schemas"]
