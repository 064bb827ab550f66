"""Every route declares who may call it, and calls without those credentials are refused.

The route list is read from the app, so a new route without an entry here fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.users import service as users
from tests.dashboard.helpers import PASSWORD, dashboard_app, dashboard_settings, sign_in

PUBLIC = "public"  # operators and developers: no credentials
SIGNATURE = "gateway signature"
API_KEY = "api key"
SESSION = "dashboard session"
ADMIN = "dashboard admin"
TOKEN = "one-time token in the path"

# (method, path pattern) -> required authentication
EXPECTED: dict[tuple[str, str], str] = {
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/dashboard/login"): PUBLIC,
    ("POST", "/dashboard/login"): PUBLIC,
    ("POST", "/dashboard/logout"): PUBLIC,  # ends the session if there is one
    ("POST", "/v1/messages"): SIGNATURE,
    ("GET", "/verify/{token}"): TOKEN,
    ("POST", "/verify/{token}"): TOKEN,
}
API_PREFIX = "/v1/"
ADMIN_PREFIXES = ("/dashboard/admin", "/dashboard/directory")


def routes_of(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path) of every endpoint, including those of included routers."""
    for route in app.routes:
        contexts: Any = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for ctx in contexts() if callable(contexts) else contexts:
                path = getattr(ctx, "path_format", None) or ctx.path
                for method in sorted(ctx.methods or []):
                    yield method, path
        elif getattr(route, "methods", None):
            for method in sorted(route.methods):
                if method != "HEAD":
                    yield method, route.path


def requirement(method: str, path: str) -> str:
    """What the route must require."""
    if (method, path) in EXPECTED:
        return EXPECTED[(method, path)]
    if path.startswith(API_PREFIX):
        return API_KEY
    if path.startswith(ADMIN_PREFIXES):
        return ADMIN
    if path.startswith("/dashboard"):
        return SESSION
    raise AssertionError(f"{method} {path}: new route, declare its authentication in this test")


def concrete(path: str) -> str:
    """The path with its parameters filled in."""
    return re.sub(r"\{[^}]+\}", "1001", path)


@pytest.fixture
def app(committed: sessionmaker[Session], database_url: str) -> FastAPI:
    return dashboard_app(dashboard_settings(database_url))


def test_every_route_has_a_declared_requirement(app: FastAPI) -> None:
    routes = list(routes_of(app))
    assert len(routes) > 40
    for method, path in routes:
        requirement(method, path)


def test_calls_without_credentials_are_refused(app: FastAPI) -> None:
    with TestClient(app) as client:
        for method, path in routes_of(app):
            need = requirement(method, path)
            if need in (PUBLIC, TOKEN):
                continue
            r = client.request(method, concrete(path), follow_redirects=False, json={})
            if need in (SIGNATURE, API_KEY):
                assert r.status_code == 401, (method, path, r.status_code)
            else:
                # Refused: sent to the sign-in page (a browser), 401 (htmx) or 403.
                assert r.status_code in (303, 401, 403), (method, path, r.status_code)
                if r.status_code == 303:
                    assert r.headers["location"].startswith("/dashboard/login")


def test_a_wrong_api_key_is_refused_everywhere(app: FastAPI) -> None:
    with TestClient(app) as client:
        for method, path in routes_of(app):
            if requirement(method, path) != API_KEY:
                continue
            r = client.request(
                method, concrete(path), headers={"Authorization": "Bearer wrong"}, json={}
            )
            assert r.status_code == 401, (method, path)


def test_analysts_cannot_reach_admin_pages(app: FastAPI, committed: sessionmaker[Session]) -> None:
    with committed() as s, s.begin():
        users.create_user(s, name="alice", password=PASSWORD, role="analyst")
    with TestClient(app) as client:
        assert sign_in(client, "alice").status_code == 303
        admin_gets = [
            path
            for method, path in routes_of(app)
            if method == "GET" and requirement(method, path) == ADMIN and "{" not in path
        ]
        assert admin_gets
        for path in admin_gets:
            assert client.get(path, follow_redirects=False).status_code == 403, path


def test_unknown_verification_tokens_get_the_neutral_answer(app: FastAPI) -> None:
    with TestClient(app) as client:
        r = client.get("/verify/not-a-real-token")
        assert r.status_code == 410
        assert "Content-Security-Policy" in r.headers
