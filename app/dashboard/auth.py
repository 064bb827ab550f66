"""Signing in and out, the session cookie, and the dependencies that guard dashboard routes.

- `CurrentAuth`: a signed-in user (else a redirect to the sign-in page, or 401 for htmx).
- `AdminAuth`: an admin (403 for analysts); the directory-admin pages depend on `require_admin`.
- `CsrfAuth`: a signed-in user whose request carries this session's CSRF token, in the
  `X-CSRF-Token` header (htmx) or the `csrf_token` form field; every POST depends on it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Form, Request
from fastapi.responses import Response

from app.core.deps import DbSession
from app.core.ratelimit import (
    SIGN_IN_PER_ACCOUNT,
    SIGN_IN_PER_CLIENT,
    account_key,
    client_key,
    rate_limits_of,
)
from app.dashboard.csrf import issue_token, token_matches
from app.dashboard.exceptions import CsrfFailed, Forbidden, LoginRequired
from app.dashboard.web import LOGIN_PATH, dashboard_router, redirect, render, safe_next
from app.users import service as users
from app.users.models import User, UserSession

SESSION_COOKIE = "cs_session"
LOGIN_CSRF_COOKIE = "cs_login_csrf"
COOKIE_PATH = "/dashboard"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SIGN_IN_FAILED = (
    "Wrong user name or password, or the account is locked after too many attempts. "
    "Try again, or ask an admin."
)
SIGN_IN_THROTTLED = "Too many sign-in attempts. Wait {seconds} seconds and try again."


@dataclass(slots=True)
class Auth:
    """The signed-in user and their session (the session holds the CSRF secret)."""

    user: User
    login: UserSession


def _cookie_secure(request: Request) -> bool:
    settings = getattr(request.app.state, "settings", None)
    return bool(settings and settings.public_url.lower().startswith("https"))


def optional_auth(request: Request, session: DbSession) -> Auth | None:
    """The signed-in user, or None (also published on request.state for the templates)."""
    found = users.resolve_session(session, token=request.cookies.get(SESSION_COOKIE))
    if found is None:
        return None
    auth = Auth(user=found[0], login=found[1])
    request.state.auth = auth
    return auth


def current_user(auth: Annotated[Auth | None, Depends(optional_auth)]) -> Auth:
    """The signed-in user; anonymous requests are sent to the sign-in page."""
    if auth is None:
        raise LoginRequired("sign in to use the dashboard")
    return auth


CurrentAuth = Annotated[Auth, Depends(current_user)]


def require_admin(auth: CurrentAuth) -> Auth:
    """The signed-in user if they are an admin; 403 for analysts."""
    if not auth.user.is_admin:
        raise Forbidden("this page is for admins")
    return auth


AdminAuth = Annotated[Auth, Depends(require_admin)]


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_same_origin(request: Request) -> None:
    """Refuse a state change that a browser says comes from another site (defence in depth)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise CsrfFailed("this request came from another site")
    origin = request.headers.get("origin")
    if origin is None:
        return
    allowed = {_origin_of(str(request.base_url))}
    settings = getattr(request.app.state, "settings", None)
    if settings is not None:
        allowed.add(_origin_of(settings.public_url))
    if origin.lower() not in allowed:
        raise CsrfFailed("this request came from another site")


def verify_csrf(request: Request, auth: Auth, presented: str | None) -> None:
    """Refuse (403) a state change without this session's CSRF token or from another site."""
    check_same_origin(request)
    if not token_matches(auth.login.csrf_secret, presented):
        raise CsrfFailed("the form has expired or did not come from this dashboard: reload it")


async def require_csrf(request: Request, auth: CurrentAuth) -> Auth:
    """The signed-in user, if the request carries a valid CSRF token for their session."""
    presented = request.headers.get(CSRF_HEADER)
    if presented is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    verify_csrf(request, auth, presented)
    return auth


CsrfAuth = Annotated[Auth, Depends(require_csrf)]


# --- sign-in pages ------------------------------------------------------------------------------

router = dashboard_router()


def _login_page(
    request: Request, *, next_url: str, error: str = "", name: str = "", status_code: int = 200
) -> Response:
    # Before sign-in there is no session: the form's CSRF token is tied to a cookie instead
    # (double submit), which stops other sites from signing a browser in to their account.
    secret = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not 20 <= len(secret) <= 100:
        secret = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {
            "login_token": issue_token(secret),
            "next_url": next_url,
            "error": error,
            "name": name,
        },
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        secret,
        path=LOGIN_PATH,
        httponly=True,
        samesite="strict",
        secure=_cookie_secure(request),
    )
    return response


@router.get("/login", name="dashboard-login")
def login_form(
    request: Request, auth: Annotated[Auth | None, Depends(optional_auth)], next: str = ""
) -> Response:
    """The sign-in form (signed-in users go straight on)."""
    next_url = safe_next(next)
    if auth is not None:
        return redirect(next_url)
    return _login_page(request, next_url=next_url)


@router.post("/login")
def login(
    request: Request,
    session: DbSession,
    name: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=2048)] = "",
    csrf_token: Annotated[str, Form(max_length=512)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Check the password; on success start a session and go on, else the same generic error."""
    check_same_origin(request)
    next_url = safe_next(next)
    # Counted before the form check and the password hash; a successful sign-in is refunded.
    limits = rate_limits_of(request.app)
    throttle = ((SIGN_IN_PER_CLIENT, client_key(request)), (SIGN_IN_PER_ACCOUNT, account_key(name)))
    decision = limits.hit(*throttle)
    if not decision.allowed:
        response = _login_page(
            request,
            next_url=next_url,
            error=SIGN_IN_THROTTLED.format(seconds=decision.retry_after),
            name=name[:120],
            status_code=429,
        )
        response.headers.update(decision.headers)
        return response
    secret = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not secret or not token_matches(secret, csrf_token):
        raise CsrfFailed("the sign-in form has expired: reload the page and try again")
    user = users.authenticate(session, name=name, password=password)
    if user is None:
        # A normal response, not an exception: the failed attempt must be committed.
        return _login_page(
            request, next_url=next_url, error=SIGN_IN_FAILED, name=name[:120], status_code=401
        )
    limits.refund(*throttle)
    users.end_session(session, token=request.cookies.get(SESSION_COOKIE))
    token, _ = users.start_session(session, user=user)
    response = redirect(next_url)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        path=COOKIE_PATH,
        httponly=True,
        samesite="lax",
        secure=_cookie_secure(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=LOGIN_PATH)
    return response


@router.post("/logout")
def logout(
    request: Request,
    session: DbSession,
    auth: Annotated[Auth | None, Depends(optional_auth)],
    csrf_token: Annotated[str, Form(max_length=512)] = "",
) -> Response:
    """End the session (CSRF-checked) and go back to the sign-in page."""
    if auth is not None:
        verify_csrf(request, auth, request.headers.get(CSRF_HEADER) or csrf_token)
        users.end_session(session, token=request.cookies.get(SESSION_COOKIE))
    response = redirect(LOGIN_PATH)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response
