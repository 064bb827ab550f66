"""The directory HTTP API: listing with provenance, CRUD, errors, imports, cache invalidation."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from app.core.config import Settings
from app.core.models import AuditLog
from tests.directory.helpers import ADMIN, EXAMPLE_ACCOUNTS, EXAMPLE_CSV, EXAMPLE_YAML, compact

BASE = "/v1/directory"
FENWICK = {
    "name": "Fenwick Tooling Ltd",
    "domains": ["Fenwick-Tooling.co.uk"],
    "contacts": [
        {
            "name": "Sales ledger",
            "phone": "+44 114 496 0321",
            "email": "ledger@fenwick-tooling.co.uk",
        }
    ],
    "bank_accounts": [{"number": "GB15 BARC 2004 1538 2900 16"}],
}


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _upload_example(api) -> dict:
    with EXAMPLE_YAML.open("rb") as fh:
        response = api.post(
            f"{BASE}/import", files={"file": ("directory.yaml", fh, "application/yaml")}
        )
    assert response.status_code == 200, response.text
    return response.json()


def _entries_with_provenance(body: dict) -> list[dict]:
    entries = [*body["org_domains"], *body["org_contacts"]]
    for person in body["people"]:
        entries += [person, *person["contacts"]]
    for vendor in body["vendors"]:
        entries += [vendor, *vendor["contacts"], *vendor["bank_accounts"]]
    return entries


def test_directory_lists_everything_with_provenance_and_bank_accounts_masked(api):
    started = datetime.now().astimezone() - timedelta(seconds=5)
    counts = _upload_example(api)
    assert (counts["people"], counts["vendors"], counts["org_contacts"]) == (6, 6, 3)

    response = api.get(BASE)

    assert response.status_code == 200
    body = response.json()
    assert len(body["people"]) == 6
    assert len(body["vendors"]) == 6
    entries = _entries_with_provenance(body)
    assert len(entries) == 2 + 3 + 6 + 6 + 6 + 7 + 7
    for entry in entries:
        assert entry["added_by"] == ADMIN
        assert _when(entry["added_at"]) >= started
    acme = next(v for v in body["vendors"] if v["name"] == "Acme Supplies")
    assert [(a["kind"], a["last4"], a["masked"]) for a in acme["bank_accounts"]] == [
        ("iban", "6819", "iban ending 6819")
    ]
    ceo = next(p for p in body["people"] if p["role"] == "CEO")
    assert (ceo["name"], ceo["vip"], ceo["phone"]) == ("Sarah Okafor", True, "+442079460001")
    assert "fingerprint" not in response.text
    for number in EXAMPLE_ACCOUNTS:
        assert compact(number)[:-4] not in response.text.upper()


def test_viewing_the_directory_is_audited_with_the_viewer(api, committed):
    api.get(BASE, headers={"X-Test-Actor": "api-key:auditor"})

    with committed() as session:
        views = session.scalars(select(AuditLog).where(AuditLog.action == "directory.view")).all()
    assert [v.actor for v in views] == ["api-key:auditor"]


def test_person_round_trip_create_read_update_delete(api, committed):
    created = api.post(
        f"{BASE}/people",
        json={
            "name": "Grace Lin",
            "emails": ["Grace.Lin@Northgate.com"],
            "role": "Treasurer",
            "vip": True,
            "phone": "+44 20 7946 0444",
        },
    )
    assert created.status_code == 201, created.text
    person = created.json()
    assert person["emails"] == ["grace.lin@northgate.com"]
    assert person["phone"] == "+442079460444"
    assert person["added_by"] == ADMIN
    url = f"{BASE}/people/{person['id']}"
    assert api.get(url).json() == person
    assert api.get(f"{BASE}/people", params={"q": "treasur"}).json()["total"] == 1

    role_only = api.patch(url, json={"role": "Group Treasurer"}).json()
    assert role_only["role"] == "Group Treasurer"
    assert role_only["contacts"] == person["contacts"]  # the number keeps its time on file

    new_phone = api.patch(
        url, json={"phone": "+44 20 7946 0555"}, headers={"X-Test-Actor": "api-key:other"}
    ).json()
    assert new_phone["phone"] == "+442079460555"
    assert len(new_phone["contacts"]) == 1
    assert new_phone["contacts"][0]["added_by"] == "api-key:other"
    assert _when(new_phone["contacts"][0]["added_at"]) > _when(person["contacts"][0]["added_at"])

    assert api.delete(url).status_code == 204
    missing = api.get(url)
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    assert api.delete(url).status_code == 404
    with committed() as session:
        deletions = session.scalars(
            select(AuditLog).where(AuditLog.action == "directory.person.delete")
        ).all()
    assert [(d.actor, d.target.endswith("Grace Lin")) for d in deletions] == [(ADMIN, True)]


def test_vendor_round_trip_with_contacts_and_bank_accounts(api):
    created = api.post(f"{BASE}/vendors", json=FENWICK)
    assert created.status_code == 201, created.text
    vendor = created.json()
    assert vendor["domains"] == ["fenwick-tooling.co.uk"]
    assert vendor["contacts"][0]["phone"] == "+441144960321"
    assert [a["masked"] for a in vendor["bank_accounts"]] == ["iban ending 0016"]
    assert "BARC2004" not in created.text
    assert "fingerprint" not in created.text
    url = f"{BASE}/vendors/{vendor['id']}"

    added = api.post(f"{url}/contacts", json={"name": "Finance director", "phone": "01144960999"})
    assert added.status_code == 201, added.text
    contacts = api.get(f"{url}/contacts").json()
    assert [c["name"] for c in contacts] == ["Sales ledger", "Finance director"]

    first = contacts[0]
    noted = api.patch(f"{url}/contacts/{first['id']}", json={"note": "ask for Dev"}).json()
    assert (noted["note"], noted["added_at"]) == ("ask for Dev", first["added_at"])
    moved = api.patch(
        f"{url}/contacts/{first['id']}",
        json={"phone": "+44 114 496 0322"},
        headers={"X-Test-Actor": "api-key:other"},
    ).json()
    assert moved["phone"] == "+441144960322"
    assert moved["added_by"] == "api-key:other"
    assert _when(moved["added_at"]) > _when(first["added_at"])

    account = vendor["bank_accounts"][0]
    duplicate = api.post(f"{url}/accounts", json={"number": "gb15barc20041538290016"})
    assert duplicate.status_code == 409
    assert duplicate.json()["error"] == "conflict"
    second = api.post(f"{url}/accounts", json={"number": "IE29 AIBK 9311 5212 3456 78"})
    assert second.status_code == 201
    assert second.json()["last4"] == "5678"
    replaced = api.patch(
        f"{url}/accounts/{account['id']}", json={"number": "GB82 WEST 1234 5698 7654 32"}
    ).json()
    assert (replaced["id"], replaced["last4"]) == (account["id"], "5432")
    assert _when(replaced["added_at"]) > _when(account["added_at"])
    assert api.delete(f"{url}/accounts/{second.json()['id']}").status_code == 204
    assert [a["last4"] for a in api.get(f"{url}/accounts").json()] == ["5432"]
    assert api.delete(f"{url}/contacts/{added.json()['id']}").status_code == 204
    assert len(api.get(f"{url}/contacts").json()) == 1

    renamed = api.patch(url, json={"name": "Fenwick Tooling", "domains": ["fenwick.co.uk"]})
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["domains"]) == (
        "Fenwick Tooling",
        ["fenwick.co.uk"],
    )
    assert api.get(f"{BASE}/vendors", params={"q": "fenwick.co"}).json()["total"] == 1

    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404
    assert api.get(f"{url}/contacts").status_code == 404


def test_organisation_domains_and_contacts_round_trip(api):
    domain = api.post(f"{BASE}/org-domains", json={"domain": " Northgate.COM "})
    assert domain.status_code == 201
    assert domain.json()["domain"] == "northgate.com"
    assert [d["domain"] for d in api.get(f"{BASE}/org-domains").json()] == ["northgate.com"]

    contact = api.post(
        f"{BASE}/org-contacts",
        json={"purpose": "it_helpdesk", "name": "Service desk", "phone": "+44 20 7946 0100"},
    ).json()
    assert contact["purpose"] == "it_helpdesk"
    assert len(api.get(f"{BASE}/org-contacts", params={"purpose": "it_helpdesk"}).json()) == 1
    assert api.get(f"{BASE}/org-contacts", params={"purpose": "finance"}).json() == []

    url = f"{BASE}/org-contacts/{contact['id']}"
    repurposed = api.patch(url, json={"purpose": "finance"}).json()
    assert repurposed["purpose"] == "finance"
    assert _when(repurposed["added_at"]) > _when(contact["added_at"])
    assert api.get(url).json() == repurposed

    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404
    assert api.delete(f"{BASE}/org-domains/northgate.com").status_code == 204
    assert api.delete(f"{BASE}/org-domains/northgate.com").status_code == 404


def test_duplicates_are_conflicts(api):
    acme = api.post(f"{BASE}/vendors", json={"name": "Acme", "domains": ["acme.example.com"]})
    other = api.post(f"{BASE}/vendors", json={"name": "Other", "domains": ["other.example.com"]})
    other_url = f"{BASE}/vendors/{other.json()['id']}"
    api.post(f"{BASE}/people", json={"name": "Ann", "emails": ["ann@northgate.com"]})
    api.post(f"{BASE}/org-domains", json={"domain": "northgate.com"})
    desk = {"purpose": "it_helpdesk", "phone": "+44 20 7946 0100"}
    api.post(f"{BASE}/org-contacts", json=desk)
    ledger = {"phone": "+44 20 7946 0777"}
    api.post(f"{other_url}/contacts", json=ledger)

    attempts = {
        "same vendor name": api.post(f"{BASE}/vendors", json={"name": "Acme"}),
        "domain of another vendor": api.post(
            f"{BASE}/vendors", json={"name": "Acme 2", "domains": ["ACME.example.com"]}
        ),
        "rename to a taken name": api.patch(other_url, json={"name": "Acme"}),
        "move to a taken domain": api.patch(other_url, json={"domains": ["acme.example.com"]}),
        "address of another person": api.post(
            f"{BASE}/people", json={"name": "Impostor", "emails": ["Ann@Northgate.com"]}
        ),
        "same org domain": api.post(f"{BASE}/org-domains", json={"domain": "NORTHGATE.com"}),
        "same org contact": api.post(
            f"{BASE}/org-contacts", json={**desk, "phone": "+442079460100"}
        ),
        "same vendor contact": api.post(f"{other_url}/contacts", json=ledger),
    }

    assert {k: r.status_code for k, r in attempts.items()} == dict.fromkeys(attempts, 409)
    assert {r.json()["error"] for r in attempts.values()} == {"conflict"}
    assert acme.status_code == 201


def test_unknown_or_foreign_ids_are_not_found(api):
    a = api.post(f"{BASE}/vendors", json={**FENWICK, "name": "A", "domains": ["a.example.com"]})
    b = api.post(f"{BASE}/vendors", json={"name": "B"}).json()
    a_contact = a.json()["contacts"][0]["id"]
    a_account = a.json()["bank_accounts"][0]["id"]
    b_url = f"{BASE}/vendors/{b['id']}"
    nobody = uuid.uuid4()

    responses = [
        api.get(f"{BASE}/people/{nobody}"),
        api.patch(f"{BASE}/people/{nobody}", json={"role": "x"}),
        api.delete(f"{BASE}/people/{nobody}"),
        api.get(f"{BASE}/vendors/{nobody}"),
        api.patch(f"{BASE}/vendors/{nobody}", json={"name": "x"}),
        api.delete(f"{BASE}/vendors/{nobody}"),
        api.post(f"{BASE}/vendors/{nobody}/contacts", json={"phone": "+44 20 7946 0123"}),
        api.post(f"{BASE}/vendors/{nobody}/accounts", json={"number": "12345678"}),
        # A's contact and account are not B's.
        api.patch(f"{b_url}/contacts/{a_contact}", json={"note": "x"}),
        api.delete(f"{b_url}/contacts/{a_contact}"),
        api.patch(f"{b_url}/accounts/{a_account}", json={"number": "12345678"}),
        api.delete(f"{b_url}/accounts/{a_account}"),
        # A vendor's contact is not an organisation contact.
        api.get(f"{BASE}/org-contacts/{a_contact}"),
        api.delete(f"{BASE}/org-contacts/{a_contact}"),
        api.delete(f"{BASE}/org-domains/unknown.example.com"),
    ]

    assert [r.status_code for r in responses] == [404] * len(responses)
    assert {r.json()["error"] for r in responses} == {"not_found"}
    assert len(api.get(f"{BASE}/vendors/{a.json()['id']}/contacts").json()) == 1


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("people", {"name": "x" * 201}),
        ("people", {"name": " "}),
        ("people", {"name": "A", "emails": [f"a{i}@northgate.com" for i in range(21)]}),
        ("people", {"name": "A", "emails": ["not-an-address"]}),
        ("people", {"name": "A", "phone": "call reception"}),
        ("people", {"name": "A", "phone": "+44 12"}),
        ("people", {"name": "A", "nickname": "typo'd field"}),
        ("vendors", {"name": "V", "domains": ["not a domain"]}),
        ("vendors", {"name": "V", "domains": [f"d{i}.example.com" for i in range(21)]}),
        ("vendors", {"name": "V", "bank_accounts": [{"number": "GB29 NWBK 6016 1331 9268 18"}]}),
        ("vendors", {"name": "V", "bank_accounts": [{"number": "12"}]}),
        ("vendors", {"name": "V", "contacts": [{"name": "no phone, no address"}]}),
        ("org-contacts", {"purpose": "payroll", "phone": "+1 415 555 0100"}),
        ("org-domains", {"domain": "localhost"}),
    ],
    ids=[
        "long-name",
        "blank-name",
        "too-many-addresses",
        "bad-address",
        "not-a-phone",
        "impossible-phone",
        "unknown-field",
        "bad-domain",
        "too-many-domains",
        "iban-with-bad-check-digits",
        "short-account",
        "unreachable-contact",
        "unknown-purpose",
        "single-label-domain",
    ],
)
def test_malformed_input_is_unprocessable_and_stores_nothing(api, path, payload):
    response = api.post(f"{BASE}/{path}", json=payload)

    assert response.status_code == 422, response.text
    listing = api.get(BASE).json()
    assert _entries_with_provenance(listing) == []


def test_malformed_ids_and_patches_are_unprocessable(api):
    person = api.post(f"{BASE}/people", json={"name": "Ann", "phone": "+44 20 7946 0100"}).json()

    assert api.get(f"{BASE}/people/not-a-uuid").status_code == 422
    assert api.patch(f"{BASE}/people/{person['id']}", json={"phone": "ring me"}).status_code == 422
    assert api.get(f"{BASE}/people", params={"limit": 10_000}).status_code == 422
    assert api.get(f"{BASE}/people/{person['id']}").json()["phone"] == "+442079460100"


def test_import_takes_a_json_body_a_csv_body_and_a_yaml_upload_idempotently(api, example_yaml):
    first = api.post(f"{BASE}/import", json=example_yaml)
    assert first.status_code == 200, first.text
    assert first.json()["added"]["vendors"] == 6

    csv_body = api.post(
        f"{BASE}/import", content=EXAMPLE_CSV.read_bytes(), headers={"Content-Type": "text/csv"}
    )
    uploaded = _upload_example(api)

    assert csv_body.status_code == 200, csv_body.text
    assert set(csv_body.json()["added"].values()) == {0}
    assert set(uploaded["added"].values()) == {0}
    assert uploaded["bank_accounts"] == 7


def test_import_refuses_other_types_bad_files_and_oversized_bodies(api, database_url):
    assert (
        api.post(
            f"{BASE}/import", content=b"hello", headers={"Content-Type": "text/plain"}
        ).status_code
        == 415
    )
    assert (
        api.post(
            f"{BASE}/import", files={"file": ("directory.txt", b"people: []", "text/plain")}
        ).status_code
        == 415
    )
    assert api.post(f"{BASE}/import", files={"other": ("x.yaml", b"people: []")}).status_code == 422
    bad_yaml = api.post(
        f"{BASE}/import",
        content=b"people: [unclosed",
        headers={"Content-Type": "application/yaml"},
    )
    assert bad_yaml.status_code == 422
    assert bad_yaml.json()["error"] == "invalid_input"
    bad_entry = api.post(f"{BASE}/import", json={"people": [{"name": "A", "phone": "+44 1"}]})
    assert bad_entry.status_code == 422
    assert "people[0]" in bad_entry.json()["detail"]

    api.app.state.settings = Settings(database_url=database_url, env="test", max_body_bytes=64)
    with EXAMPLE_YAML.open("rb") as fh:
        too_big = api.post(f"{BASE}/import", files={"file": ("directory.yaml", fh)})
    assert too_big.status_code == 413
    assert api.get(f"{BASE}/people").json()["total"] == 0


def test_every_write_refreshes_the_detection_cache_after_it_is_committed(api):
    cache = api.app.state.directory_cache

    vendor = api.post(f"{BASE}/vendors", json=FENWICK).json()

    assert cache.seen == [{"Fenwick Tooling Ltd"}]  # the reload would see the new vendor
    url = f"{BASE}/vendors/{vendor['id']}"
    writes = [
        lambda: api.patch(url, json={"name": "Fenwick"}),
        lambda: api.post(f"{url}/contacts", json={"phone": "+44 20 7946 0999"}),
        lambda: api.post(f"{url}/accounts", json={"number": "12345678"}),
        lambda: api.post(f"{BASE}/people", json={"name": "Ann"}),
        lambda: api.post(f"{BASE}/org-domains", json={"domain": "northgate.com"}),
        lambda: api.post(
            f"{BASE}/org-contacts", json={"purpose": "finance", "phone": "12025550100"}
        ),
        lambda: api.post(f"{BASE}/import", json={"organisation": {"domains": ["ng.example.com"]}}),
        lambda: api.delete(url),
    ]
    for n, write in enumerate(writes, start=2):
        assert write().status_code in (200, 201, 204)
        assert len(cache.seen) == n
    assert cache.seen[1] == {"Fenwick"}
    assert cache.seen[-1] == set()

    api.get(BASE)
    api.post(f"{BASE}/people", json={"name": "x" * 300})  # refused: nothing to refresh
    assert len(cache.seen) == len(writes) + 1


def test_writes_without_a_named_caller_are_attributed_to_api(api):
    person = api.post(f"{BASE}/people", json={"name": "Ann"}, headers={"X-Test-Actor": ""}).json()

    assert person["added_by"] == "api"
