"""The HTTP API: create_app(settings) builds everything in lifespan, nothing at import time."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool

from app import __version__
from app.core.config import Settings
from app.core.db import build_engine, embedded_database_url, make_sessionmaker, ping
from app.core.errors import AppError, ServiceUnavailable, Unauthorized
from app.core.logs import configure_logging
from app.core.metrics import Metrics
from app.core.security import check_api_key
from app.detect.directory import Directory, load_directory
from app.detect.engine import SHIPPED_MODEL_DIR, Detector
from app.detect.model import load_model
from app.directory.cache import DirectoryCache
from app.ingest.request import EMAIL_BODY_OPENAPI, parse_request_email, read_body
from app.mail.parse import email_from_json

log = logging.getLogger("countersign")


def _start_database(app: FastAPI, settings: Settings, fallback: Directory) -> None:
    """Engine, sessions and directory cache; migrate on start when asked to."""
    url = settings.database_url or embedded_database_url(settings.data_dir)
    engine = build_engine(url, pool_size=settings.db_pool_size)
    app.state.engine = engine
    app.state.sessions = make_sessionmaker(engine)
    app.state.directory_cache = DirectoryCache(app.state.sessions, fallback=fallback)
    if settings.migrate_on_start:
        from app.core.migrate import upgrade

        try:
            upgrade(engine)
        except DBAPIError as exc:
            # Start anyway: /readyz reports the database and the webhook answers 503 until it is up.
            log.error("migration on start failed: %s", type(exc).__name__)


_WARM_UP_EMAIL = email_from_json(
    {"from": "warm-up@countersign.invalid", "subject": "warm-up", "text": "Please confirm."}
)


def create_app(settings: Settings) -> FastAPI:
    """Build the application for these settings."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        key = settings.fingerprint_key.get_secret_value().encode()
        fallback = (
            load_directory(settings.directory_file, key=key)
            if settings.directory_file
            else Directory()
        )
        model = load_model(settings.model_dir or SHIPPED_MODEL_DIR)
        app.state.detector = Detector(model, directory=fallback, fingerprint_key=key)
        # Warm the scorer (its transposed weights are built on first use) before taking traffic.
        await run_in_threadpool(app.state.detector.classify, _WARM_UP_EMAIL)
        log.info("model %s loaded", model.version)
        if settings.database:
            await run_in_threadpool(_start_database, app, settings, fallback)
        yield
        engine = getattr(app.state, "engine", None)
        if engine is not None:
            engine.dispose()

    app = FastAPI(
        title="Countersign",
        version=__version__,
        lifespan=lifespan,
        description="Out-of-band verification of risky requests in inbound email.",
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    access = logging.getLogger("countersign.access")

    @app.middleware("http")
    async def log_requests(request: Request, call_next: Any) -> Response:
        """One structured line per request: no headers, query strings or bodies (secrets)."""
        started = time.perf_counter()
        request_id = request.headers.get("x-request-id", "")[:64] or uuid.uuid4().hex[:16]
        response: Response = await call_next(request)
        response.headers["X-Request-ID"] = request_id
        route = request.scope.get("route")
        access.info(
            "request",
            extra={
                "request_id": request_id,
                "method": request.method,
                "route": getattr(route, "path", None) or "unmatched",
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return response

    app.state.webhook_sources = settings.webhook_sources()
    app.state.notifier_names = settings.notifier_names()
    app.state.sessions = None
    static_keys = [k.encode() for k in settings.api_key_list()]

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in err.get('loc', ()) if p != 'body')}: {err.get('msg')}"
            for err in exc.errors()[:10]
        ]
        return JSONResponse(
            {"error": "invalid_input", "detail": "; ".join(problems) or "invalid request"},
            status_code=422,
        )

    @app.exception_handler(AppError)
    async def app_error(_request: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.code, "detail": exc.detail},
            status_code=exc.status_code,
            headers={"Retry-After": "5"} if exc.status_code == 503 else None,
        )

    def require_api_key(
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> str:
        presented = x_api_key or ""
        if authorization and authorization.lower().startswith("bearer "):
            presented = authorization[7:].strip()
        sessions = request.app.state.sessions
        if sessions is None:
            actor = check_api_key(None, presented, static_keys)
        else:
            try:
                with sessions() as session, session.begin():
                    actor = check_api_key(session, presented, static_keys)
            except DBAPIError:
                # Environment keys still work while the database is down.
                try:
                    actor = check_api_key(None, presented, static_keys)
                except Unauthorized:
                    raise ServiceUnavailable("database unavailable, retry later") from None
        request.state.actor = actor
        return actor

    app.state.require_api_key = require_api_key

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
    def readyz(request: Request) -> JSONResponse:
        """Readiness: the model is loaded and the database answers."""
        detector = detector_of(request)
        engine = getattr(request.app.state, "engine", None)
        database = "disabled" if engine is None else ("ok" if ping(engine) else "unavailable")
        ready = database != "unavailable"
        return JSONResponse(
            {
                "status": "ready" if ready else "not_ready",
                "model_version": detector.model_version,
                "database": database,
            },
            status_code=200 if ready else 503,
        )

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
        openapi_extra=EMAIL_BODY_OPENAPI,
    )
    async def classify(request: Request) -> JSONResponse:
        """Dry run: the Verdict for one email (Email JSON or raw MIME); nothing is stored."""
        body = await read_body(request, settings.max_body_bytes)
        detector = detector_of(request)
        email = await run_in_threadpool(
            parse_request_email, body, request.headers.get("content-type", "")
        )
        cache = getattr(request.app.state, "directory_cache", None)
        directory = await run_in_threadpool(cache.get) if cache is not None else None
        m = request.app.state.metrics
        with m.latency.time():
            verdict = await run_in_threadpool(detector.classify, email, directory=directory)
        m.verdicts.labels(verdict.action).inc()
        return JSONResponse(verdict.to_json())

    from app.directory.router import router as directory_router
    from app.ingest.router import router as ingest_router
    from app.tickets.router import router as tickets_router

    app.include_router(ingest_router)
    app.include_router(tickets_router, dependencies=[Depends(require_api_key)])
    app.include_router(directory_router, dependencies=[Depends(require_api_key)])

    from app.dashboard.router import mount_static
    from app.dashboard.router import router as dashboard_router

    app.include_router(dashboard_router)
    mount_static(app)

    from app.verification.router import api_router as outbox_api_router
    from app.verification.router import router as verify_router

    app.include_router(verify_router)
    app.include_router(outbox_api_router, dependencies=[Depends(require_api_key)])

    # Publish the Email JSON schema for the raw-body endpoints above.
    from app.mail.schemas import EmailIn

    original_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original_openapi()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        email_schema = EmailIn.model_json_schema(
            by_alias=True, ref_template="#/components/schemas/{model}"
        )
        components.update(email_schema.pop("$defs", {}))
        components["EmailIn"] = email_schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """Factory for uvicorn: settings from the environment."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    return create_app(settings)
