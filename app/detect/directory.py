"""A snapshot of the organisation's directory: its domains, people, vendors and known-good contacts.

Detection reads this snapshot; the service builds it from the database, the CLI from a file
(`--directory FILE`, YAML or JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from app.mail.artifacts import fingerprint


@dataclass(slots=True)
class Contact:
    """A known-good way to reach someone, with when and by whom it was put on file."""

    name: str = ""
    email: str = ""
    phone: str = ""
    added_at: str | None = None
    added_by: str | None = None


@dataclass(slots=True)
class Person:
    """Someone in the organisation (VIPs are the usual impersonation targets)."""

    name: str
    emails: list[str] = field(default_factory=list)
    role: str = ""
    vip: bool = False
    phone: str = ""
    added_at: str | None = None


@dataclass(slots=True)
class Vendor:
    """A supplier or partner: its domains, known-good contacts and bank details on file."""

    name: str
    domains: list[str] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    account_fingerprints: set[str] = field(default_factory=set)
    account_last4: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Directory:
    """Everything detection knows about the organisation."""

    org_name: str = ""
    org_domains: list[str] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    vendors: list[Vendor] = field(default_factory=list)

    def vendor_for_domain(self, domain: str) -> Vendor | None:
        """The vendor that owns `domain`, if any."""
        domain = domain.lower()
        for vendor in self.vendors:
            if domain in vendor.domains:
                return vendor
        return None

    def person_by_email(self, address: str) -> Person | None:
        """The person with this address, if any."""
        address = address.lower()
        for person in self.people:
            if address in person.emails:
                return person
        return None

    def known_phones(self) -> set[str]:
        """Every phone number on file, as written."""
        phones = {p.phone for p in self.people if p.phone}
        phones |= {c.phone for v in self.vendors for c in v.contacts if c.phone}
        return phones


def directory_from_dict(data: dict[str, Any], *, key: bytes) -> Directory:
    """Build a snapshot from the file format; raw bank numbers are fingerprinted, never kept."""
    org = data.get("organisation") or data.get("organization") or {}
    people = [
        Person(
            name=str(p.get("name", "")),
            emails=[str(e).lower() for e in p.get("emails", [])],
            role=str(p.get("role", "")),
            vip=bool(p.get("vip", False)),
            phone=str(p.get("phone", "")),
            added_at=p.get("added_at"),
        )
        for p in data.get("people", [])
    ]
    vendors = []
    for v in data.get("vendors", []):
        fps: set[str] = set()
        last4: list[str] = []
        for account in v.get("bank_accounts", []):
            raw = (
                str(account.get("number") or account.get("iban") or "")
                if isinstance(account, dict)
                else str(account)
            )
            if raw:
                fps.add(fingerprint(raw, key))
                last4.append("".join(ch for ch in raw if ch.isalnum())[-4:])
        fps |= {str(f) for f in v.get("account_fingerprints", [])}
        vendors.append(
            Vendor(
                name=str(v.get("name", "")),
                domains=[str(d).lower() for d in v.get("domains", [])],
                contacts=[
                    Contact(
                        name=str(c.get("name", "")),
                        email=str(c.get("email", "")).lower(),
                        phone=str(c.get("phone", "")),
                        added_at=c.get("added_at"),
                        added_by=c.get("added_by"),
                    )
                    for c in v.get("contacts", [])
                ],
                account_fingerprints=fps,
                account_last4=last4,
            )
        )
    return Directory(
        org_name=str(org.get("name", "")),
        org_domains=[str(d).lower() for d in org.get("domains", [])],
        people=people,
        vendors=vendors,
    )


def load_directory(path: Path, *, key: bytes) -> Directory:
    """Read a directory file (YAML or JSON)."""
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a directory file holds a mapping at the top level")
    return directory_from_dict(data, key=key)
