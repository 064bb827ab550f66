"""Importing directory files: what lands on file, masking of bank numbers, idempotency, errors."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from app.core.errors import InvalidInput
from app.directory.exceptions import Conflict
from app.directory.models import AccountOnFile, Contact, Person
from app.directory.service import (
    clear_directory,
    import_directory,
    load_snapshot,
    org_contacts,
    parse_directory_file,
    read_directory,
)
from app.mail.artifacts import fingerprint
from tests.directory.helpers import EXAMPLE_ACCOUNTS, KEY, compact

ACTOR = "cli:importer"
DIRECTORY_TABLES = ("org_domain", "person", "vendor", "contact", "account_on_file", "audit_log")


def _import(db, data):
    return import_directory(db, data, key=KEY, actor=ACTOR)


def _comparable(db):
    """The snapshot detection sees, as plain sets (independent of insertion order)."""
    snapshot = load_snapshot(db)
    return {
        "org_domains": set(snapshot.org_domains),
        "people": {(p.name, tuple(p.emails), p.role, p.vip, p.phone) for p in snapshot.people},
        "vendors": {
            (
                v.name,
                tuple(v.domains),
                frozenset((c.name, c.email, c.phone) for c in v.contacts),
                frozenset(v.account_fingerprints),
            )
            for v in snapshot.vendors
        },
    }


def test_example_yaml_import_puts_northgate_people_vendors_and_contacts_on_file(db, example_yaml):
    counts = _import(db, example_yaml)

    assert counts["people"] == 6
    assert counts["vendors"] == 6
    assert counts["org_domains"] == 2
    assert counts["org_contacts"] == 3
    assert counts["added"] == {
        "org_domains": 2,
        "org_contacts": 3,
        "people": 6,
        "vendors": 6,
        "vendor_contacts": 7,
        "bank_accounts": 7,
    }
    snapshot = load_snapshot(db)
    assert set(snapshot.org_domains) == {"northgate.com", "northgate-eng.com"}
    vips = {p.name: p for p in snapshot.people if p.vip}
    assert set(vips) == {"Sarah Okafor", "James Whitaker"}
    # Known-good phones are stored in E.164, the form detection gives numbers found in emails.
    assert vips["Sarah Okafor"].phone == "+442079460001"
    assert vips["Sarah Okafor"].role == "CEO"
    assert vips["James Whitaker"].phone == "+442079460003"
    assert "s.okafor@northgate-eng.com" in vips["Sarah Okafor"].emails
    acme = snapshot.vendor_for_domain("acme-supplies.com")
    assert acme is not None
    assert acme.name == "Acme Supplies"
    assert {c.email for c in acme.contacts} == {
        "mark.ellis@acme-supplies.com",
        "ar@acme-supplies.com",
    }
    assert acme.account_last4 == ["6819"]
    assert snapshot.vendor_for_domain("kestrel-logistics.com").name == "Kestrel Logistics GmbH"
    brightwater = snapshot.vendor_for_domain("brightwaterfm.com")
    assert brightwater.account_fingerprints == {fingerprint("4432109877", KEY)}
    purposes = {
        purpose: [c.phone for c in org_contacts(db, purpose, received_at=_now(db))]
        for purpose in ("it_helpdesk", "data_owner", "finance")
    }
    assert purposes == {
        "it_helpdesk": ["+442079460100"],
        "data_owner": ["+442079460110"],
        "finance": ["+442079460120"],
    }


def _now(db):
    return db.scalar(select(text("now()")))


def test_example_csv_gives_the_same_directory_as_the_example_yaml(db, example_yaml, example_csv):
    _import(db, example_yaml)
    from_yaml = _comparable(db)
    clear_directory(db)
    assert load_snapshot(db).people == []

    _import(db, example_csv)

    assert _comparable(db) == from_yaml


@pytest.mark.parametrize("example", ["example_yaml", "example_csv"])
def test_bank_numbers_are_stored_only_as_kind_last_four_and_keyed_fingerprint(db, request, example):
    _import(db, request.getfixturevalue(example))

    rows = [
        row
        for table in DIRECTORY_TABLES
        for row in db.scalars(text(f"SELECT t::text FROM {table} t"))
    ]
    assert len(rows) > 20
    for number in EXAMPLE_ACCOUNTS:
        plain = compact(number)
        # The last four are kept on purpose; nothing before them may appear anywhere.
        forms = {number, plain, plain[:-4] if len(plain) >= 14 else plain}
        leaks = [row for row in rows for form in forms if form in row.upper()]
        assert leaks == [], f"{plain[-4:]} leaked"
    accounts = db.scalars(select(AccountOnFile)).all()
    assert sorted(a.last4 for a in accounts) == sorted(compact(n)[-4:] for n in EXAMPLE_ACCOUNTS)
    assert {a.fingerprint for a in accounts} == {fingerprint(n, KEY) for n in EXAMPLE_ACCOUNTS}
    assert {a.kind for a in accounts} == {"iban", "account"}


@pytest.mark.parametrize("example", ["example_yaml", "example_csv"])
def test_importing_the_same_file_again_adds_nothing(db, request, example):
    data = request.getfixturevalue(example)
    _import(db, data)
    before = read_directory(db)

    again = _import(db, data)

    assert set(again["added"].values()) == {0}
    assert read_directory(db) == before


def test_import_keeps_the_phone_on_file_when_a_file_brings_a_new_one(db, example_yaml):
    _import(db, example_yaml)
    changed = {
        "people": [
            {
                "name": "Sarah Okafor",
                "emails": ["sarah.okafor@northgate.com"],
                "role": "CEO",
                "vip": True,
                "phone": "+44 20 7946 0999",
            }
        ]
    }

    _import(db, changed)

    sarah = next(p for p in load_snapshot(db).people if p.name == "Sarah Okafor")
    assert sarah.phone == "+442079460001"  # the longest on file stays the known-good one
    person = db.scalars(select(Person).where(Person.name == "Sarah Okafor")).one()
    phones = db.scalars(select(Contact.phone).where(Contact.person_id == person.id)).all()
    assert sorted(phones) == ["+442079460001", "+442079460999"]


def test_import_refuses_a_mistyped_iban_without_echoing_the_number(db):
    mistyped = "GB29 NWBK 6016 1331 9268 18"  # last digit wrong: the check digits fail
    data = {"vendors": [{"name": "Acme Supplies", "bank_accounts": [{"iban": mistyped}]}]}

    with pytest.raises(InvalidInput) as excinfo:
        _import(db, data)

    assert "vendors[0]" in excinfo.value.detail
    assert "ending 9268" not in excinfo.value.detail
    assert "ending 6818" in excinfo.value.detail
    assert "NWBK" not in excinfo.value.detail


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"people": [{"name": "Ok", "emails": ["ok@northgate.com"]}, {"name": ""}]}, "people[1]"),
        ({"people": [{"name": "A", "emails": "not-an-address"}]}, "people[0]"),
        ({"people": [{"name": "A", "phone": "+44 12"}]}, "people[0]"),
        ({"people": [{"name": "x" * 201}]}, "people[0]"),
        ({"people": [{"name": "A", "emails": [f"a{i}@n.com" for i in range(21)]}]}, "people[0]"),
        ({"vendors": [{"name": "V", "domains": ["not a domain"]}]}, "vendors[0]"),
        ({"vendors": [{"name": "V", "contacts": [{"name": "only a name"}]}]}, "vendors[0]"),
        ({"organisation": {"contacts": [{"purpose": "payroll", "phone": "+1 415 555 0100"}]}}, ""),
        ({"people": {"name": "not a list"}}, ""),
    ],
    ids=[
        "empty-name",
        "bad-address",
        "impossible-phone",
        "long-name",
        "too-many-addresses",
        "bad-domain",
        "contact-without-phone-or-email",
        "unknown-purpose",
        "people-not-a-list",
    ],
)
def test_malformed_entries_are_refused_naming_the_entry(db, data, where):
    with pytest.raises(InvalidInput) as excinfo:
        _import(db, data)

    assert where in excinfo.value.detail


def test_a_vendor_domain_already_owned_by_another_vendor_is_a_conflict(db, example_yaml):
    _import(db, example_yaml)

    with pytest.raises(Conflict, match=r"acme-supplies\.com is on file for Acme Supplies"):
        _import(db, {"vendors": [{"name": "Acme Lookalike", "domains": ["acme-supplies.com"]}]})


def test_csv_with_an_unknown_row_type_is_refused_with_its_line_number():
    content = b"type,name\nperson,Ann\nsupplier,Bob\n"

    with pytest.raises(InvalidInput, match="line 3"):
        parse_directory_file("directory.csv", content)


def test_unreadable_yaml_is_invalid_input():
    with pytest.raises(InvalidInput, match="cannot read"):
        parse_directory_file("directory.yaml", b"people: [unclosed")
