"""Web plumbing shared by the dashboard's routers: templates, security headers, errors as pages.

Every dashboard route uses `DashboardRoute`: its responses (errors included) carry the strict
Content-Security-Policy and friends, application errors become HTML pages (or, for htmx, a
fragment swapped into the page's message area), and a missing session becomes a redirect to the
sign-in page (or a 401 that tells htmx to go there).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from app.core.errors import AppError
from app.dashboard import labels
from app.dashboard.csrf import issue_token
from app.dashboard.exceptions import LoginRequired

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/dashboard/static"
LOGIN_PATH = "/dashboard/login"
HOME_PATH = "/dashboard"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def apply_security_headers(response: Response, *, cache: str = "no-store") -> Response:
    """Add the security headers; pages are `no-store` (email content is confidential)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    response.headers["Cache-Control"] = cache
    return response


def is_htmx(request: Request) -> bool:
    """Whether htmx sent the request (and wants a fragment rather than a page)."""
    return (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-history-restore-request") != "true"
    )


def safe_next(value: str | None, default: str = HOME_PATH) -> str:
    """`value` if it is a path inside the dashboard, else `default` (no open redirects)."""
    if (
        value
        and len(value) <= 2000
        and (value == HOME_PATH or value.startswith((HOME_PATH + "/", HOME_PATH + "?")))
        and "\\" not in value
        and value.isprintable()
        and not value.startswith(LOGIN_PATH)
    ):
        return value
    return default


def redirect(url: str) -> RedirectResponse:
    """POST-redirect-GET."""
    return RedirectResponse(url, status_code=303)


# --- templates ----------------------------------------------------------------------------------


@functools.cache
def _static_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.glob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:10]


def static_url(path: str) -> str:
    """URL of a static file, versioned by content so browsers can cache it."""
    return f"{STATIC_PREFIX}/{path}?v={_static_version()}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        # Email content is attacker-controlled: everything is escaped unless it is Markup built
        # by app.dashboard.text from escaped pieces.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        time=labels.format_time,
        day=labels.format_day,
        intent_title=labels.intent_title,
        signal_title=labels.signal_title,
        status_label=labels.status_label,
        severity_label=labels.severity_label,
        action_label=labels.action_label,
        event_label=labels.event_label,
    )
    env.globals.update(
        static=static_url,
        money=labels.money,
        STATUS_LABELS=labels.STATUS_LABELS,
        INTENT_TITLES=labels.INTENT_TITLES,
        SEVERITY_LABELS=labels.SEVERITY_LABELS,
    )
    return env


templates = Jinja2Templates(env=_environment())


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render a template with the signed-in user and a fresh CSRF token in its context."""
    auth = getattr(request.state, "auth", None)
    base: dict[str, Any] = {
        "user": auth.user if auth is not None else None,
        "csrf_token": issue_token(auth.login.csrf_secret) if auth is not None else "",
        "nav": "",
        "notice": "",
    }
    response = templates.TemplateResponse(
        request,
        name,
        {**base, **(context or {})},
        status_code=status_code,
        headers=dict(headers) if headers else None,
    )
    assert isinstance(response, HTMLResponse)
    return response


# --- errors -------------------------------------------------------------------------------------

ERROR_TITLES = {
    400: "Bad request",
    401: "Sign-in needed",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    409: "Conflict",
    413: "Too large",
    415: "Unsupported content",
    422: "Please check the form",
    503: "Temporarily unavailable",
}


def error_response(
    request: Request, status_code: int, detail: str, headers: Mapping[str, str] | None = None
) -> HTMLResponse:
    """An error as a page, or for htmx as a message swapped into the page's #flash area."""
    title = ERROR_TITLES.get(status_code, "Something went wrong")
    extra = dict(headers or {})
    if status_code == 503:
        extra["Retry-After"] = "5"
    if is_htmx(request):
        extra.update({"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"})
        return render(
            request,
            "_error.html",
            {"title": title, "detail": detail},
            status_code=status_code,
            headers=extra,
        )
    return render(
        request,
        "error.html",
        {"title": title, "detail": detail, "status_code": status_code},
        status_code=status_code,
        headers=extra,
    )


def _local_path(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def login_redirect(request: Request) -> Response:
    """Send an anonymous browser to the sign-in page, coming back here afterwards."""
    if request.method in ("GET", "HEAD"):
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    elif is_htmx(request):
        back = _local_path(request.headers.get("hx-current-url")) or HOME_PATH
    else:
        back = _local_path(request.headers.get("referer")) or HOME_PATH
    target = f"{LOGIN_PATH}?{urlencode({'next': safe_next(back)})}"
    if is_htmx(request):
        # htmx follows HX-Redirect with a full page load; a 303 would be followed by the XHR.
        return Response(status_code=401, headers={"HX-Redirect": target})
    return redirect(target)


def _validation_detail(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "The request was incomplete."
    first = errors[0]
    field = str(first.get("loc", ("", "field"))[-1])
    return f"{field.replace('_', ' ')}: {first.get('msg', 'invalid')}"


class DashboardRoute(APIRoute):
    """A route whose every response carries the security headers and whose errors are pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The normal handler, wrapped to render errors and add the headers."""
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await original(request)
            except LoginRequired:
                response = login_redirect(request)
            except AppError as exc:
                response = error_response(request, exc.status_code, exc.detail)
            except RequestValidationError as exc:
                response = error_response(request, 422, _validation_detail(exc))
            except HTTPException as exc:
                response = error_response(request, exc.status_code, str(exc.detail), exc.headers)
            return apply_security_headers(response)

        return handler


# --- static files -------------------------------------------------------------------------------


class DashboardStaticFiles(StaticFiles):
    """The dashboard's CSS and JavaScript, with the same security headers as the pages."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The file, cacheable for an hour (URLs carry a content version)."""
        response = await super().get_response(path, scope)
        return apply_security_headers(response, cache="public, max-age=3600")


def dashboard_router() -> APIRouter:
    """A router for dashboard pages: under /dashboard, out of the OpenAPI schema, DashboardRoute."""
    return APIRouter(prefix=HOME_PATH, route_class=DashboardRoute, include_in_schema=False)


def mount_static(app: FastAPI) -> None:
    """Serve app/dashboard/static under /dashboard/static."""
    app.mount(STATIC_PREFIX, DashboardStaticFiles(directory=STATIC_DIR), name="dashboard-static")
