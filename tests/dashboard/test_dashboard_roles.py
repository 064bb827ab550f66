"""Roles: admin-only pages refuse analysts; admins see them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.users.models import User
from tests.dashboard.helpers import sign_in


def test_analyst_gets_403_on_the_admin_users_page(signed_in: TestClient) -> None:
    r = signed_in.get("/dashboard/admin/users")
    assert r.status_code == 403
    assert "this page is for admins" in r.text
    assert 'id="users-table"' not in r.text


def test_analyst_does_not_see_the_users_link(signed_in: TestClient) -> None:
    assert 'href="/dashboard/admin/users"' not in signed_in.get("/dashboard").text


def test_admin_sees_every_user_with_role_and_state(
    client: TestClient, admin: User, analyst: User
) -> None:
    assert sign_in(client, "root").status_code == 303
    r = client.get("/dashboard/admin/users")
    assert r.status_code == 200
    assert 'href="/dashboard/admin/users"' in r.text
    table = r.text.split('id="users-table"')[1]
    assert '<tr id="user-alice">' in table
    assert '<tr id="user-root">' in table
    assert "<td>admin</td>" in table
    assert "<td>analyst</td>" in table


def test_anonymous_request_to_an_admin_page_goes_to_login(client: TestClient) -> None:
    r = client.get("/dashboard/admin/users", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/dashboard/login?next=")
