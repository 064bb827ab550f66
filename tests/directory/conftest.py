"""Directory fixtures: the example files, their bank numbers, and a minimal app with the router."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.errors import AppError
from app.directory.router import router
from app.directory.service import parse_directory_file
from tests.directory.helpers import ADMIN, EXAMPLE_CSV, EXAMPLE_YAML, RecordingCache


@pytest.fixture
def example_yaml() -> dict[str, Any]:
    """The parsed example YAML directory."""
    return parse_directory_file(EXAMPLE_YAML.name, EXAMPLE_YAML.read_bytes())


@pytest.fixture
def example_csv() -> dict[str, Any]:
    """The parsed example CSV directory."""
    return parse_directory_file(EXAMPLE_CSV.name, EXAMPLE_CSV.read_bytes())


def _actor_from_header(
    request: Request, x_test_actor: Annotated[str | None, Header()] = None
) -> None:
    """What main's API-key dependency does: name the caller in request.state.actor."""
    if x_test_actor:
        request.state.actor = x_test_actor


@pytest.fixture
def api(committed: sessionmaker[Session], database_url: str) -> Iterator[TestClient]:
    """A minimal app with the directory router over committed sessions (tables emptied after)."""
    app = FastAPI()
    app.state.sessions = committed
    app.state.settings = Settings(database_url=database_url, env="test")
    app.state.directory_cache = RecordingCache(committed)

    @app.exception_handler(AppError)
    async def app_error(_request: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.code, "detail": exc.detail},
            status_code=exc.status_code,
            headers={"Retry-After": "5"} if exc.status_code == 503 else None,
        )

    app.include_router(router, dependencies=[Depends(_actor_from_header)])
    with TestClient(app, headers={"X-Test-Actor": ADMIN}) as client:
        yield client
