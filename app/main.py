"""The HTTP API: create_app(settings) builds everything in lifespan, nothing at import time."""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.concurrency import run_in_threadpool

from app import __version__
from app.core.config import Settings
from app.core.errors import (
    AppError,
    InvalidInput,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)
from app.detect.directory import Directory, load_directory
from app.detect.engine import SHIPPED_MODEL_DIR, Detector
from app.detect.model import load_model
from app.mail.parse import email_from_json, email_from_mime
from app.mail.schemas import Email

log = logging.getLogger("countersign")


class Metrics:
    """Prometheus metrics of one app instance (own registry, so tests can build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.verdicts = Counter(
            "countersign_verdicts_total", "Verdicts by action", ["action"], registry=self.registry
        )
        self.latency = Histogram(
            "countersign_classify_seconds", "Time to classify one email", registry=self.registry
        )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body is larger than {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_request_email(body: bytes, content_type: str) -> Email:
    """An Email from a JSON or message/rfc822 request body."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype in ("message/rfc822", "text/plain", "application/octet-stream"):
        return email_from_mime(body)
    if ctype in ("application/json", ""):
        import json

        try:
            data: Any = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidInput("body must be a JSON object (Email JSON)")
        return email_from_json(data)
    raise UnsupportedMediaType(
        f"unsupported content type {ctype!r}: use application/json or message/rfc822"
    )


def create_app(settings: Settings) -> FastAPI:
    """Build the application for these settings."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        key = settings.fingerprint_key.get_secret_value().encode()
        directory = (
            load_directory(settings.directory_file, key=key)
            if settings.directory_file
            else Directory()
        )
        model = load_model(settings.model_dir or SHIPPED_MODEL_DIR)
        app.state.detector = Detector(model, directory=directory, fingerprint_key=key)
        log.info("model %s loaded", model.version)
        yield

    app = FastAPI(
        title="Countersign",
        version=__version__,
        lifespan=lifespan,
        description="Out-of-band verification of risky requests in inbound email.",
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    api_keys = [k.encode() for k in settings.api_key_list()]

    @app.exception_handler(AppError)
    async def app_error(_request: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.code, "detail": exc.detail},
            status_code=exc.status_code,
            headers={"Retry-After": "5"} if exc.status_code == 503 else None,
        )

    def require_api_key(
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> None:
        presented = x_api_key or ""
        if authorization and authorization.lower().startswith("bearer "):
            presented = authorization[7:].strip()
        given = presented.encode()
        # Compare against every key in constant time, without stopping at the first match.
        ok = False
        for key in api_keys:
            ok |= hmac.compare_digest(given, key)
        if not presented or not ok:
            raise Unauthorized("a valid API key is required (Authorization: Bearer <key>)")

    def detector_of(request: Request) -> Detector:
        detector = getattr(request.app.state, "detector", None)
        if detector is None:
            raise ServiceUnavailable("model not loaded")
        return detector

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz(request: Request) -> dict[str, str]:
        """Readiness: the model is loaded."""
        return {"status": "ready", "model_version": detector_of(request).model_version}

    @app.get("/metrics", tags=["operations"])
    def metrics(request: Request) -> Response:
        """Prometheus metrics."""
        return Response(
            generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    @app.post(
        "/v1/classify",
        tags=["detection"],
        dependencies=[Depends(require_api_key)],
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/EmailIn"}},
                    "message/rfc822": {"schema": {"type": "string", "format": "binary"}},
                }
            }
        },
    )
    async def classify(request: Request) -> JSONResponse:
        """Dry run: the Verdict for one email (Email JSON or raw MIME); nothing is stored."""
        body = await read_body(request, settings.max_body_bytes)
        detector = detector_of(request)
        email = await run_in_threadpool(
            parse_request_email, body, request.headers.get("content-type", "")
        )
        m = request.app.state.metrics
        with m.latency.time():
            verdict = await run_in_threadpool(detector.classify, email)
        m.verdicts.labels(verdict.action).inc()
        return JSONResponse(verdict.to_json())

    # Publish the Email JSON schema for the raw-body endpoint above.
    from app.mail.schemas import EmailIn

    original_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original_openapi()
        schema.setdefault("components", {}).setdefault("schemas", {})["EmailIn"] = (
            EmailIn.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn: settings from the environment."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return create_app(Settings())
