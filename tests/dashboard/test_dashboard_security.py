"""Security headers on every dashboard response, and templates that cannot render raw HTML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Headers

from app.dashboard.web import STATIC_DIR, TEMPLATES_DIR

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def _assert_security_headers(headers: Headers, what: str) -> None:
    assert headers["content-security-policy"] == CSP, what
    assert headers["x-content-type-options"] == "nosniff", what
    assert headers["x-frame-options"] == "DENY", what
    assert headers["referrer-policy"] == "same-origin", what


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard",
        "/dashboard/login",
        "/dashboard/static/app.css",
        "/dashboard/static/htmx.min.js",
    ],
)
def test_anonymous_responses_carry_the_security_headers(client: TestClient, path: str) -> None:
    r = client.get(path, follow_redirects=False)
    assert r.status_code in (200, 303)
    _assert_security_headers(r.headers, path)


def test_signed_in_pages_and_errors_carry_the_security_headers_and_are_not_cached(
    signed_in: TestClient, ticket_number: int
) -> None:
    for path, status in [
        ("/dashboard", 200),
        (f"/dashboard/tickets/{ticket_number}", 200),
        ("/dashboard/try", 200),
        ("/dashboard/tickets/424242", 404),
        ("/dashboard/admin/users", 403),
    ]:
        r = signed_in.get(path)
        assert r.status_code == status, path
        _assert_security_headers(r.headers, path)
        assert r.headers["cache-control"] == "no-store", path
    refused = signed_in.post(f"/dashboard/tickets/{ticket_number}/claim", data={})
    assert refused.status_code == 403
    _assert_security_headers(refused.headers, "csrf refusal")


def test_static_files_are_served_locally_with_their_types(client: TestClient) -> None:
    js = client.get("/dashboard/static/htmx.min.js")
    assert js.status_code == 200
    assert "javascript" in js.headers["content-type"]
    assert js.content == (STATIC_DIR / "htmx.min.js").read_bytes()
    assert client.get("/dashboard/static/app.css").headers["content-type"].startswith("text/css")


def _templates() -> list[Path]:
    return sorted(TEMPLATES_DIR.glob("*.html"))


@pytest.mark.parametrize("template", _templates(), ids=lambda p: p.name)
def test_templates_never_bypass_escaping_or_inline_code(template: Path) -> None:
    source = template.read_text()
    assert "|safe" not in source.replace(" ", "")
    assert "autoescape" not in source
    assert "Markup" not in source
    assert not re.search(r"<script(?![^>]*\bsrc=)", source), "inline <script>"
    assert "<style" not in source
    assert not re.search(r"\sstyle=", source), "inline style attribute"
    assert not re.search(r"\son[a-z]+=", source), "inline event handler"
    assert not re.search(r"""(?:src|href)=["']https?://""", source), "resource from another site"


def test_rendered_pages_load_only_local_scripts_and_styles(
    signed_in: TestClient, ticket_number: int
) -> None:
    html = signed_in.get(f"/dashboard/tickets/{ticket_number}").text
    scripts = re.findall(r"<script[^>]*>", html)
    assert len(scripts) == 1
    assert re.fullmatch(r'<script src="/dashboard/static/htmx\.min\.js\?v=\w+" defer>', scripts[0])
    assert re.findall(r'<link rel="stylesheet" href="([^"]+)"', html)[0].startswith(
        "/dashboard/static/app.css?v="
    )
