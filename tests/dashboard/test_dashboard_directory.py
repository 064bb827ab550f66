"""Directory admin pages: admins list, add, edit, delete and import entries through plain forms."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.directory.models import AccountOnFile, Contact, OrgDomain, Person, Vendor
from app.users.models import User
from tests.dashboard.helpers import csrf_of, sign_in

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "directory.yaml"
IBAN = "GB29 NWBK 6016 1331 9268 19"


@pytest.fixture
def admin_client(client: TestClient, admin: User) -> TestClient:
    """The browser, signed in as the admin root."""
    assert sign_in(client, admin.name).status_code == 303
    return client


@pytest.fixture
def post_form(admin_client: TestClient) -> Callable[..., Any]:
    """POST a form as the page at `page` would (with that page's CSRF token), not following."""

    def post(url: str, data: dict[str, str], page: str = "/dashboard/directory", **kw: Any) -> Any:
        token = csrf_of(admin_client.get(page).text)
        return admin_client.post(
            url, data={**data, "csrf_token": token}, follow_redirects=False, **kw
        )

    return post


@pytest.fixture
def count(committed: sessionmaker[Session]) -> Callable[[Any], int]:
    """Rows of a directory table."""

    def rows(model: Any) -> int:
        with committed() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)

    return rows


def _vendor_id(location: str) -> str:
    found = re.search(r"/vendors/([0-9a-f-]{36})", location)
    assert found, location
    return found.group(1)


def test_analyst_gets_403_on_every_directory_page_and_cannot_post(
    signed_in: TestClient, count: Callable[[Any], int]
) -> None:
    for url in ("/dashboard/directory", "/dashboard/directory/import"):
        r = signed_in.get(url)
        assert r.status_code == 403
        assert "this page is for admins" in r.text
    token = csrf_of(signed_in.get("/dashboard").text)
    r = signed_in.post(
        "/dashboard/directory/vendors",
        data={"name": "Evil Corp", "domains": "evil.example", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert count(Vendor) == 0


def test_anonymous_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    r = client.get("/dashboard/directory", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/dashboard/login")


def test_a_form_without_the_csrf_token_is_refused(
    admin_client: TestClient, count: Callable[[Any], int]
) -> None:
    r = admin_client.post(
        "/dashboard/directory/people", data={"name": "Mallory"}, follow_redirects=False
    )
    assert r.status_code == 403
    assert count(Person) == 0


def test_admin_adds_and_edits_a_person_whose_number_shows_when_and_by_whom_it_was_filed(
    admin_client: TestClient, post_form: Callable[..., Any]
) -> None:
    r = post_form(
        "/dashboard/directory/people",
        {
            "name": "Sarah Okafor",
            "emails": "sarah.okafor@northgate.com, s.okafor@northgate-eng.com",
            "role": "CEO",
            "vip": "1",
            "phone": "+44 20 7946 0001",
        },
    )
    assert r.status_code == 303
    page = admin_client.get(r.headers["location"])
    assert "Person added." in page.text
    assert "+442079460001" in page.text
    assert 'by <span class="added-by">user:root</span>' in page.text
    listing = admin_client.get("/dashboard/directory?tab=people").text
    assert "Sarah Okafor" in listing
    assert "VIP" in listing
    assert "s.okafor@northgate-eng.com" in listing

    r = post_form(
        r.headers["location"].split("?")[0],
        {"name": "Sarah Okafor", "emails": "sarah.okafor@northgate.com", "role": "CEO"},
    )
    assert r.status_code == 303
    page = admin_client.get(r.headers["location"]).text
    assert "Person saved." in page
    assert "s.okafor@northgate-eng.com" not in page
    assert "No number on file" in page  # an empty phone field removes the number
    assert '<span class="tag warn">VIP</span>' not in page


def test_vendor_contacts_and_bank_accounts_are_managed_on_the_vendor_page(
    admin_client: TestClient,
    post_form: Callable[..., Any],
    count: Callable[[Any], int],
    committed: sessionmaker[Session],
) -> None:
    r = post_form(
        "/dashboard/directory/vendors", {"name": "Acme Supplies", "domains": "acme-supplies.com"}
    )
    assert r.status_code == 303
    page_url = r.headers["location"].split("?")[0]
    vid = _vendor_id(page_url)

    r = post_form(
        f"{page_url}/contacts",
        {
            "name": "Mark Ellis",
            "phone": "+44 20 7946 0002",
            "email": "mark.ellis@acme-supplies.com",
        },
        page=page_url,
    )
    assert r.status_code == 303
    assert r.headers["location"].endswith("done=contact_added")
    r = post_form(f"{page_url}/accounts", {"number": IBAN}, page=page_url)
    assert r.status_code == 303
    page = admin_client.get(page_url).text
    assert "Mark Ellis" in page
    assert "+442079460002" in page
    assert "IBAN ending <strong>6819</strong>" in page
    assert "NWBK" not in page
    assert "60161331" not in page
    assert page.count('<span class="added-by">user:root</span>') >= 3
    listing = admin_client.get("/dashboard/directory?tab=vendors").text
    assert "IBAN ending <strong>6819</strong>" in listing
    assert "Mark Ellis" in listing

    with committed() as s:
        contact = s.scalars(select(Contact).where(Contact.vendor_id == vid)).one()
        account = s.scalars(select(AccountOnFile)).one()
        filed_at = contact.created_at
    # A new number is a new claim: it is on file from the time of the change.
    r = post_form(
        f"{page_url}/contacts/{contact.id}",
        {
            "name": "Mark Ellis",
            "phone": "+44 20 7946 0999",
            "email": "mark.ellis@acme-supplies.com",
        },
        page=page_url,
    )
    assert r.status_code == 303
    with committed() as s:
        changed = s.get(Contact, contact.id)
        assert changed is not None
        assert changed.phone == "+442079460999"
        assert changed.created_at > filed_at

    r = post_form(f"{page_url}/accounts/{account.id}", {"number": "DE89 3704 0044 0532 0130 00"})
    assert r.status_code == 303
    assert "IBAN ending <strong>3000</strong>" in admin_client.get(page_url).text

    confirm = admin_client.get(f"{page_url}/contacts/{contact.id}/delete")
    assert confirm.status_code == 200
    assert "Mark Ellis" in confirm.text
    assert count(Contact) == 1  # asking changes nothing
    r = post_form(f"{page_url}/contacts/{contact.id}/delete", {}, page=page_url)
    assert r.status_code == 303
    assert count(Contact) == 0
    r = post_form(f"{page_url}/accounts/{account.id}/delete", {}, page=page_url)
    assert r.status_code == 303
    assert count(AccountOnFile) == 0

    r = post_form(
        page_url, {"name": "Acme Supplies Ltd", "domains": "acme-supplies.com acme.co.uk"}
    )
    assert r.status_code == 303
    assert "acme.co.uk" in admin_client.get(page_url).text
    assert "Acme Supplies Ltd" in admin_client.get(f"{page_url}/delete").text
    r = post_form(f"{page_url}/delete", {}, page=page_url)
    assert r.status_code == 303
    assert "Vendor deleted" in admin_client.get(r.headers["location"]).text
    assert count(Vendor) == 0


def test_service_errors_are_shown_in_the_form_with_what_was_typed(
    admin_client: TestClient, post_form: Callable[..., Any], count: Callable[[Any], int]
) -> None:
    r = post_form("/dashboard/directory/vendors", {"name": "Acme", "domains": "not a domain!"})
    assert r.status_code == 422
    assert 'id="error-vendor-add"' in r.text
    assert "not a domain" in r.text
    assert 'value="Acme"' in r.text
    assert count(Vendor) == 0

    assert post_form("/dashboard/directory/vendors", {"name": "Acme"}).status_code == 303
    r = post_form("/dashboard/directory/vendors", {"name": "Acme"})
    assert r.status_code == 409
    assert "is on file" in r.text
    assert count(Vendor) == 1


def test_a_mistyped_iban_is_refused_and_never_shown_back(
    admin_client: TestClient, post_form: Callable[..., Any], count: Callable[[Any], int]
) -> None:
    r = post_form("/dashboard/directory/vendors", {"name": "Acme"})
    page_url = r.headers["location"].split("?")[0]
    r = post_form(f"{page_url}/accounts", {"number": "GB00 NWBK 6016 1331 9268 19"})
    assert r.status_code == 422
    assert 'id="error-account-add"' in r.text
    assert "ending 6819 is not valid" in r.text
    assert "NWBK" not in r.text
    assert count(AccountOnFile) == 0


def test_a_refused_edit_keeps_nothing_of_the_change(
    admin_client: TestClient,
    post_form: Callable[..., Any],
    committed: sessionmaker[Session],
) -> None:
    post_form("/dashboard/directory/people", {"name": "Tom Hale", "emails": "tom@northgate.com"})
    r = post_form(
        "/dashboard/directory/people", {"name": "Anna Berg", "emails": "anna@northgate.com"}
    )
    anna_url = r.headers["location"].split("?")[0]
    r = post_form(anna_url, {"name": "Anna Renamed", "emails": "tom@northgate.com"})
    assert r.status_code == 409
    assert 'id="error-person-edit"' in r.text
    assert "tom@northgate.com is on file for Tom Hale" in r.text
    with committed() as s:
        names = set(s.scalars(select(Person.name)))
    assert names == {"Tom Hale", "Anna Berg"}


def test_organisation_domains_and_contacts_can_be_added_edited_and_deleted(
    admin_client: TestClient, post_form: Callable[..., Any], count: Callable[[Any], int]
) -> None:
    r = post_form("/dashboard/directory/org-domains", {"domain": "Northgate.com"})
    assert r.status_code == 303
    page = admin_client.get(r.headers["location"]).text
    assert "<code>northgate.com</code>" in page
    assert "Organisation domain added." in page
    r = post_form("/dashboard/directory/org-domains", {"domain": "northgate.com"})
    assert r.status_code == 409
    assert 'id="error-domain-add"' in r.text

    r = post_form(
        "/dashboard/directory/org-contacts",
        {"purpose": "finance", "name": "AP call-back line", "phone": "+44 20 7946 0120"},
    )
    assert r.status_code == 303
    page = admin_client.get("/dashboard/directory?tab=organisation").text
    assert "AP call-back line" in page
    contact_url = re.search(r'href="(/dashboard/directory/org-contacts/[0-9a-f-]{36})"', page)
    assert contact_url
    r = post_form(
        contact_url.group(1),
        {"purpose": "it_helpdesk", "name": "Service desk", "phone": "+44 20 7946 0100"},
    )
    assert r.status_code == 303
    assert "IT help desk" in admin_client.get(r.headers["location"]).text
    r = post_form(contact_url.group(1), {"purpose": "finance", "name": "x", "phone": ""})
    assert r.status_code == 422
    assert "needs a phone number or an email address" in r.text

    assert post_form(f"{contact_url.group(1)}/delete", {}).status_code == 303
    assert (
        "northgate.com"
        in admin_client.get("/dashboard/directory/org-domains/northgate.com/delete").text
    )
    assert post_form("/dashboard/directory/org-domains/northgate.com/delete", {}).status_code == 303
    assert count(OrgDomain) == 0
    assert count(Contact) == 0


def test_importing_a_file_shows_what_was_read_and_what_was_new(
    admin_client: TestClient, count: Callable[[Any], int]
) -> None:
    def upload(name: str, content: bytes) -> Any:
        token = csrf_of(admin_client.get("/dashboard/directory/import").text)
        return admin_client.post(
            "/dashboard/directory/import",
            data={"csrf_token": token},
            files={"file": (name, content, "application/octet-stream")},
            follow_redirects=False,
        )

    r = upload("directory.yaml", EXAMPLE.read_bytes())
    assert r.status_code == 303
    page = admin_client.get(r.headers["location"]).text
    table = page.split('id="import-result"')[1].split("</table>")[0]
    assert re.search(r"People</th><td>6</td><td>6</td>", table)
    assert re.search(r"Vendors</th><td>6</td><td>6</td>", table)
    assert re.search(r"Bank accounts</th><td>7</td><td>7</td>", table)
    assert count(Vendor) == 6

    again = admin_client.get(upload("directory.yaml", EXAMPLE.read_bytes()).headers["location"])
    assert re.search(r"People</th><td>6</td><td>0</td>", again.text)

    csv = (
        b"type,name,domains,contact_name,contact_phone\n"
        b"vendor,Csv Co,csv.example,Ann,+44 20 7946 0555\n"
    )
    r = upload("vendors.csv", csv)
    assert r.status_code == 303
    assert count(Vendor) == 7

    r = upload("notes.txt", b"hello")
    assert r.status_code == 415
    assert 'id="import-error"' in r.text
    r = upload("broken.yaml", b"people: [name: {")
    assert r.status_code == 422
    assert "cannot read broken.yaml" in r.text
    r = upload("bad.yaml", b"vendors:\n  - name: Bad\n    domains: ['not a domain!']\n")
    assert r.status_code == 422
    assert "vendors[0]" in r.text
    assert count(Vendor) == 7


def test_an_import_over_the_size_limit_is_refused(
    admin_client: TestClient, count: Callable[[Any], int]
) -> None:
    token = csrf_of(admin_client.get("/dashboard/directory/import").text)
    big = b"# padding\n" * (2 * 1024 * 1024 // 10 + 10)
    r = admin_client.post(
        "/dashboard/directory/import",
        data={"csrf_token": token},
        files={"file": ("big.yaml", big, "application/yaml")},
        follow_redirects=False,
    )
    assert r.status_code == 413
    assert count(OrgDomain) == 0


def test_a_malicious_vendor_name_is_shown_escaped(
    admin_client: TestClient, post_form: Callable[..., Any]
) -> None:
    name = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    r = post_form("/dashboard/directory/vendors", {"name": name})
    assert r.status_code == 303
    for url in ("/dashboard/directory?tab=vendors", r.headers["location"]):
        html = admin_client.get(url).text
        assert "<script>alert(1)" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_search_narrows_the_vendor_list(
    admin_client: TestClient, post_form: Callable[..., Any]
) -> None:
    post_form("/dashboard/directory/vendors", {"name": "Acme Supplies", "domains": "acme.example"})
    post_form("/dashboard/directory/vendors", {"name": "Harbour Steel", "domains": "steel.example"})
    html = admin_client.get("/dashboard/directory", params={"q": "steel"}).text
    assert "Harbour Steel" in html
    assert "Acme Supplies" not in html
    assert "1 vendor matching" in html


def test_writes_refresh_the_snapshot_detection_uses(
    admin_client: TestClient, post_form: Callable[..., Any]
) -> None:
    cache = admin_client.app.state.directory_cache  # type: ignore[attr-defined]
    assert cache.get().vendors == []
    post_form("/dashboard/directory/vendors", {"name": "Acme", "domains": "acme.example"})
    assert [v.name for v in cache.get().vendors] == ["Acme"]


def test_unknown_entries_are_404_pages_not_errors(
    admin_client: TestClient, post_form: Callable[..., Any]
) -> None:
    assert admin_client.get("/dashboard/directory/vendors/not-a-uuid").status_code == 404
    missing = "00000000-0000-0000-0000-000000000000"
    assert admin_client.get(f"/dashboard/directory/people/{missing}").status_code == 404
    assert post_form(f"/dashboard/directory/vendors/{missing}/delete", {}).status_code == 404
    assert post_form(f"/dashboard/directory/vendors/{missing}", {"name": "x"}).status_code == 404
