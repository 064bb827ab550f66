"""Signing in and out: sessions, cookie flags, failed attempts, lockout, redirects."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import utcnow
from app.users import service as users
from app.users.models import User, UserSession
from tests.dashboard.helpers import (
    PASSWORD,
    csrf_of,
    dashboard_app,
    dashboard_settings,
    sign_in,
)

GENERIC_ERROR = "Wrong user name or password"


def _session_rows(committed: sessionmaker[Session]) -> list[UserSession]:
    with committed() as s:
        return list(s.scalars(select(UserSession)))


def test_anonymous_page_request_redirects_to_login_and_back(client: TestClient) -> None:
    r = client.get("/dashboard/tickets?intent=gift_card", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == (
        "/dashboard/login?next=%2Fdashboard%2Ftickets%3Fintent%3Dgift_card"
    )


def test_anonymous_htmx_request_gets_401_telling_htmx_to_go_to_login(client: TestClient) -> None:
    r = client.post(
        "/dashboard/tickets/1001/claim",
        headers={
            "HX-Request": "true",
            "HX-Current-URL": "http://testserver/dashboard/tickets/1001",
        },
        follow_redirects=False,
    )
    assert r.status_code == 401
    assert r.headers["HX-Redirect"] == "/dashboard/login?next=%2Fdashboard%2Ftickets%2F1001"


def test_right_password_starts_a_session_and_returns_to_the_page_asked_for(
    client: TestClient, analyst: User, committed: sessionmaker[Session]
) -> None:
    r = sign_in(client, "alice", next_url="/dashboard/try")
    assert r.status_code == 303
    assert r.headers["location"] == "/dashboard/try"
    page = client.get("/dashboard/try")
    assert page.status_code == 200
    assert 'id="current-user">alice' in page.text
    with committed() as s:
        user = s.scalars(select(User).where(User.name == "alice")).one()
        assert user.last_login_at is not None
        assert user.failed_attempts == 0


def test_session_cookie_is_httponly_and_samesite_lax_and_not_secure_over_http(
    client: TestClient, analyst: User
) -> None:
    r = sign_in(client, "alice")
    cookie = next(
        c for c in r.headers.get_list("set-cookie") if c.startswith("cs_session=")
    ).lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/dashboard" in cookie
    assert "secure" not in cookie


def test_session_cookie_is_secure_when_the_public_url_is_https(
    committed: sessionmaker[Session], database_url: str, analyst: User
) -> None:
    app = dashboard_app(dashboard_settings(database_url, public_url="https://cs.example.com"))
    with TestClient(app, base_url="https://cs.example.com") as c:
        r = sign_in(c, "alice")
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("cs_session="))
    assert "secure" in cookie.lower()
    assert "httponly" in cookie.lower()


def test_only_a_hash_of_the_session_id_is_stored(
    client: TestClient, analyst: User, committed: sessionmaker[Session]
) -> None:
    sign_in(client, "alice")
    token = client.cookies.get("cs_session")
    assert token is not None
    assert len(token) >= 43  # 256 random bits, URL-safe base64
    (row,) = _session_rows(committed)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (row.token_hash, row.csrf_secret)
    assert row.expires_at > utcnow() + timedelta(hours=11)


def test_wrong_password_gets_a_generic_error_and_no_session(
    client: TestClient, analyst: User, committed: sessionmaker[Session]
) -> None:
    r = sign_in(client, "alice", password="not the password at all")
    assert r.status_code == 401
    assert GENERIC_ERROR in r.text
    assert "cs_session" not in client.cookies
    assert _session_rows(committed) == []
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_unknown_user_gets_exactly_the_same_answer_as_a_wrong_password(
    client: TestClient, analyst: User
) -> None:
    wrong_password = sign_in(client, "alice", password="not the password at all")
    unknown_user = sign_in(client, "mallory", password="not the password at all")
    assert unknown_user.status_code == wrong_password.status_code == 401
    error = '<p class="error" role="alert" id="login-error">'
    assert (
        wrong_password.text.split(error)[1].split("</p>")[0]
        == (unknown_user.text.split(error)[1].split("</p>")[0])
    )


def test_five_wrong_passwords_lock_the_account_even_against_the_right_one(
    client: TestClient, analyst: User, committed: sessionmaker[Session]
) -> None:
    for _ in range(users.MAX_FAILED_ATTEMPTS):
        assert sign_in(client, "alice", password="guess " * 3).status_code == 401
    r = sign_in(client, "alice", password=PASSWORD)
    assert r.status_code == 401
    assert GENERIC_ERROR in r.text
    assert "cs_session" not in client.cookies
    with committed() as s:
        user = s.scalars(select(User).where(User.name == "alice")).one()
        assert user.locked_until is not None
        assert user.locked_until - utcnow() > timedelta(minutes=14)


def test_lockout_ends_after_fifteen_minutes_and_a_success_resets_the_count(db: Session) -> None:
    users.create_user(db, name="bob", password=PASSWORD)
    start = utcnow()
    for _ in range(users.MAX_FAILED_ATTEMPTS):
        assert users.authenticate(db, name="bob", password="wrong wrong wrong", now=start) is None
    assert users.authenticate(db, name="bob", password=PASSWORD, now=start) is None
    later = start + users.LOCKOUT - timedelta(seconds=1)
    assert users.authenticate(db, name="bob", password=PASSWORD, now=later) is None
    after = start + users.LOCKOUT + timedelta(seconds=1)
    user = users.authenticate(db, name="BOB ", password=PASSWORD, now=after)
    assert user is not None
    assert user.failed_attempts == 0
    assert user.locked_until is None


def test_disabled_user_cannot_sign_in_and_existing_sessions_end(
    client: TestClient, analyst: User, committed: sessionmaker[Session]
) -> None:
    assert sign_in(client, "alice").status_code == 303
    with committed() as s, s.begin():
        users.set_user_disabled(s, name="alice", disabled=True)
    assert client.get("/dashboard", follow_redirects=False).status_code == 303
    assert sign_in(client, "alice").status_code == 401


def test_logout_ends_the_session_on_the_server(
    client: TestClient, analyst: User, committed: sessionmaker[Session]
) -> None:
    sign_in(client, "alice")
    old_cookie = client.cookies.get("cs_session")
    page = client.get("/dashboard")
    r = client.post(
        "/dashboard/logout", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/dashboard/login"
    assert _session_rows(committed) == []
    # Replaying the old cookie does not get back in.
    replay = TestClient(client.app, cookies={"cs_session": old_cookie or ""})
    assert replay.get("/dashboard", follow_redirects=False).status_code == 303


def test_logout_without_the_csrf_token_is_refused(
    client: TestClient, analyst: User, committed: sessionmaker[Session]
) -> None:
    sign_in(client, "alice")
    r = client.post("/dashboard/logout", data={}, follow_redirects=False)
    assert r.status_code == 403
    assert len(_session_rows(committed)) == 1


def test_login_form_post_without_its_token_is_refused(
    client: TestClient, analyst: User, committed: sessionmaker[Session]
) -> None:
    client.get("/dashboard/login")
    r = client.post(
        "/dashboard/login",
        data={"name": "alice", "password": PASSWORD, "csrf_token": "forged", "next": "/dashboard"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert _session_rows(committed) == []


def test_login_next_cannot_send_the_browser_to_another_site(
    client: TestClient, analyst: User
) -> None:
    for target in ("https://evil.example/", "//evil.example/dashboard", "/\\evil.example"):
        client.cookies.clear()
        r = sign_in(client, "alice", next_url=target)
        assert r.status_code == 303
        assert r.headers["location"] == "/dashboard"


def test_state_change_from_another_site_is_refused_even_with_a_token(
    signed_in: TestClient, ticket_number: int, ticket_state: Callable[[int], dict]
) -> None:
    page = signed_in.get(f"/dashboard/tickets/{ticket_number}")
    r = signed_in.post(
        f"/dashboard/tickets/{ticket_number}/claim",
        data={"csrf_token": csrf_of(page.text)},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert ticket_state(ticket_number)["assignee"] is None


def test_already_signed_in_user_skips_the_login_form(signed_in: TestClient) -> None:
    r = signed_in.get("/dashboard/login?next=/dashboard/try", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/dashboard/try"
