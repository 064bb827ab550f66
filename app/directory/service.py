"""Directory use cases: the detection snapshot, lookups for playbooks, and imports."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import yaml
from sqlalchemy import Text, delete, literal, select
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.core.errors import InvalidInput
from app.detect import directory as snap
from app.directory.models import AccountOnFile, Contact, OrgDomain, Person, Vendor
from app.mail.artifacts import fingerprint, registered_domain

ORG_PURPOSES = ("it_helpdesk", "data_owner", "finance", "general")


def load_snapshot(session: Session) -> snap.Directory:
    """The directory as detection sees it, read in four queries."""
    domains = list(session.scalars(select(OrgDomain.domain)))
    contacts = list(session.scalars(select(Contact)))
    by_person: dict[Any, list[Contact]] = {}
    by_vendor: dict[Any, list[Contact]] = {}
    for c in contacts:
        if c.person_id:
            by_person.setdefault(c.person_id, []).append(c)
        elif c.vendor_id:
            by_vendor.setdefault(c.vendor_id, []).append(c)
    accounts: dict[Any, list[AccountOnFile]] = {}
    for a in session.scalars(select(AccountOnFile)):
        accounts.setdefault(a.vendor_id, []).append(a)
    people = [
        snap.Person(
            name=p.name,
            emails=[e.lower() for e in p.emails],
            role=p.role,
            vip=p.vip,
            phone=next((c.phone for c in by_person.get(p.id, []) if c.phone), ""),
            added_at=p.created_at.isoformat(),
        )
        for p in session.scalars(select(Person).order_by(Person.name))
    ]
    vendors = [
        snap.Vendor(
            name=v.name,
            domains=[d.lower() for d in v.domains],
            contacts=[
                snap.Contact(
                    name=c.name,
                    email=c.email,
                    phone=c.phone,
                    added_at=c.created_at.isoformat(),
                    added_by=c.added_by,
                )
                for c in by_vendor.get(v.id, [])
            ],
            account_fingerprints={a.fingerprint for a in accounts.get(v.id, [])},
            account_last4=[a.last4 for a in accounts.get(v.id, [])],
        )
        for v in session.scalars(select(Vendor).order_by(Vendor.name))
    ]
    return snap.Directory(org_domains=domains, people=people, vendors=vendors)


@dataclass(slots=True)
class KnownContact:
    """A known-good contact for a playbook, with its provenance."""

    who: str
    name: str
    phone: str
    email: str
    added_at: datetime
    added_by: str
    on_file_before_email: bool

    def to_json(self) -> dict[str, Any]:
        """JSON for the ticket's playbook."""
        return {
            "who": self.who,
            "name": self.name,
            "phone": self.phone,
            "email": self.email,
            "added_at": self.added_at.isoformat(),
            "added_by": self.added_by,
            "on_file_before_email": self.on_file_before_email,
        }


def _known(who: str, c: Contact, received_at: datetime) -> KnownContact:
    return KnownContact(
        who=who,
        name=c.name,
        phone=c.phone,
        email=c.email,
        added_at=c.created_at,
        added_by=c.added_by,
        on_file_before_email=c.created_at <= received_at,
    )


def find_vendor(session: Session, domain: str) -> Vendor | None:
    """The vendor that owns `domain` (or its registered domain)."""
    if not domain:
        return None
    domain = domain.lower()
    candidates = {domain, registered_domain(domain) or domain}
    for vendor in session.scalars(
        select(Vendor).where(Vendor.domains.op("?|")(pg_array(sorted(candidates), type_=Text)))
    ):
        return vendor
    return None


def find_person(session: Session, *, address: str = "", name: str = "") -> Person | None:
    """The person with this address, else the one with exactly this name."""
    if address:
        person = session.scalars(
            select(Person).where(Person.emails.op("?")(literal(address.lower(), Text)))
        ).first()
        if person:
            return person
    if name:
        return session.scalars(select(Person).where(Person.name.ilike(name.strip()))).first()
    return None


def vendor_contacts(session: Session, vendor: Vendor, received_at: datetime) -> list[KnownContact]:
    """A vendor's known-good contacts, oldest first (the longest on file is the most trusted)."""
    rows = session.scalars(
        select(Contact).where(Contact.vendor_id == vendor.id).order_by(Contact.created_at)
    )
    return [_known(vendor.name, c, received_at) for c in rows]


def person_contacts(session: Session, person: Person, received_at: datetime) -> list[KnownContact]:
    """A person's known-good contacts, oldest first."""
    rows = session.scalars(
        select(Contact).where(Contact.person_id == person.id).order_by(Contact.created_at)
    )
    label = f"{person.name} ({person.role})" if person.role else person.name
    return [_known(label, c, received_at) for c in rows]


def org_contacts(session: Session, purpose: str, received_at: datetime) -> list[KnownContact]:
    """The organisation's own contacts for a purpose (IT help desk, data owner, finance)."""
    rows = session.scalars(
        select(Contact)
        .where(Contact.person_id.is_(None), Contact.vendor_id.is_(None))
        .where(Contact.purpose == purpose)
        .order_by(Contact.created_at)
    )
    return [_known(c.name or purpose, c, received_at) for c in rows]


# --- writes -------------------------------------------------------------------------------------


def add_org_domain(session: Session, *, domain: str, actor: str) -> None:
    """Add an organisation domain (idempotent)."""
    domain = domain.strip().lower()
    if not domain or "." not in domain or len(domain) > 255:
        raise InvalidInput(f"not a domain: {domain!r}")
    session.execute(
        insert(OrgDomain)
        .values(domain=domain, added_by=actor, added_at=utcnow())
        .on_conflict_do_nothing()
    )


def upsert_person(
    session: Session,
    *,
    name: str,
    emails: list[str],
    role: str = "",
    vip: bool = False,
    phone: str = "",
    actor: str,
) -> Person:
    """Create or update a person (matched by any address); a new phone becomes a new contact."""
    emails = sorted({e.strip().lower() for e in emails if e.strip()})
    if not name.strip():
        raise InvalidInput("a person needs a name")
    person = None
    for e in emails:
        person = find_person(session, address=e)
        if person:
            break
    if person is None:
        person = Person(name=name.strip(), emails=emails, role=role, vip=vip, added_by=actor)
        session.add(person)
        session.flush()
    else:
        person.name, person.role, person.vip = name.strip(), role, vip
        person.emails = sorted(set(person.emails) | set(emails))
        person.updated_at = utcnow()
    if (
        phone
        and not session.scalars(
            select(Contact).where(Contact.person_id == person.id, Contact.phone == phone)
        ).first()
    ):
        session.add(Contact(person_id=person.id, name=person.name, phone=phone, added_by=actor))
    session.flush()
    return person


def upsert_vendor(
    session: Session,
    *,
    name: str,
    domains: list[str],
    contacts: list[dict[str, str]] | None = None,
    bank_accounts: list[str] | None = None,
    key: bytes,
    actor: str,
) -> Vendor:
    """Create or update a vendor with its contacts and bank accounts (stored masked)."""
    if not name.strip():
        raise InvalidInput("a vendor needs a name")
    domains = sorted({d.strip().lower() for d in domains if d.strip()})
    vendor = session.scalars(select(Vendor).where(Vendor.name == name.strip())).first()
    if vendor is None:
        vendor = Vendor(name=name.strip(), domains=domains, added_by=actor)
        session.add(vendor)
        session.flush()
    else:
        vendor.domains = sorted(set(vendor.domains) | set(domains))
        vendor.updated_at = utcnow()
    existing = {
        (c.phone, c.email)
        for c in session.scalars(select(Contact).where(Contact.vendor_id == vendor.id))
    }
    for c in contacts or []:
        phone, email = str(c.get("phone", "")).strip(), str(c.get("email", "")).strip().lower()
        if (phone or email) and (phone, email) not in existing:
            session.add(
                Contact(
                    vendor_id=vendor.id,
                    name=str(c.get("name", "")),
                    phone=phone,
                    email=email,
                    added_by=actor,
                )
            )
            existing.add((phone, email))
    fps = {
        a.fingerprint
        for a in session.scalars(select(AccountOnFile).where(AccountOnFile.vendor_id == vendor.id))
    }
    for raw in bank_accounts or []:
        compact = "".join(ch for ch in str(raw) if ch.isalnum()).upper()
        if len(compact) < 4:
            raise InvalidInput("a bank account needs at least four characters")
        fp = fingerprint(compact, key)
        if fp not in fps:
            kind = "iban" if compact[:2].isalpha() else "account"
            session.add(
                AccountOnFile(
                    vendor_id=vendor.id,
                    kind=kind,
                    last4=compact[-4:],
                    fingerprint=fp,
                    added_by=actor,
                )
            )
            fps.add(fp)
    session.flush()
    return vendor


def add_org_contact(
    session: Session, *, purpose: str, name: str, phone: str = "", email: str = "", actor: str
) -> Contact:
    """An organisation contact (IT help desk, data owner, finance) used by playbooks."""
    if purpose not in ORG_PURPOSES:
        raise InvalidInput(f"purpose must be one of {', '.join(ORG_PURPOSES)}")
    contact = Contact(purpose=purpose, name=name, phone=phone, email=email.lower(), added_by=actor)
    session.add(contact)
    session.flush()
    return contact


def import_directory(
    session: Session, data: dict[str, Any], *, key: bytes, actor: str
) -> dict[str, int]:
    """Import the directory file format (see README); returns counts of what was imported."""
    counts = {"org_domains": 0, "people": 0, "vendors": 0, "org_contacts": 0}
    org = data.get("organisation") or data.get("organization") or {}
    for d in org.get("domains", []):
        add_org_domain(session, domain=str(d), actor=actor)
        counts["org_domains"] += 1
    for c in org.get("contacts", []):
        add_org_contact(
            session,
            purpose=str(c.get("purpose", "general")),
            name=str(c.get("name", "")),
            phone=str(c.get("phone", "")),
            email=str(c.get("email", "")),
            actor=actor,
        )
        counts["org_contacts"] += 1
    for p in data.get("people", []):
        upsert_person(
            session,
            name=str(p.get("name", "")),
            emails=[str(e) for e in p.get("emails", [])],
            role=str(p.get("role", "")),
            vip=bool(p.get("vip", False)),
            phone=str(p.get("phone", "")),
            actor=actor,
        )
        counts["people"] += 1
    for v in data.get("vendors", []):
        accounts = [
            str(a.get("number") or a.get("iban") or "") if isinstance(a, dict) else str(a)
            for a in v.get("bank_accounts", [])
        ]
        upsert_vendor(
            session,
            name=str(v.get("name", "")),
            domains=[str(d) for d in v.get("domains", [])],
            contacts=[dict(c) for c in v.get("contacts", [])],
            bank_accounts=[a for a in accounts if a],
            key=key,
            actor=actor,
        )
        counts["vendors"] += 1
    return counts


def parse_directory_file(name: str, content: bytes) -> dict[str, Any]:
    """The directory format from a JSON, YAML or CSV file."""
    text = content.decode("utf-8-sig", errors="replace")
    if name.lower().endswith(".csv"):
        return _from_csv(text)
    try:
        data = json.loads(text) if name.lower().endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"cannot read {name}: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{name}: the directory must be an object with people/vendors")
    return data


def _split(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").replace(";", "|").split("|") if p.strip()]


def _from_csv(text: str) -> dict[str, Any]:
    """CSV rows: type (org_domain|person|vendor|org_contact), name, emails, role, vip, phone,
    domains, contact_name, contact_phone, contact_email, bank_account, purpose."""
    out: dict[str, Any] = {
        "organisation": {"domains": [], "contacts": []},
        "people": [],
        "vendors": [],
    }
    vendors: dict[str, dict[str, Any]] = {}
    for lineno, row in enumerate(csv.DictReader(io.StringIO(text)), 2):
        kind = (row.get("type") or "").strip().lower()
        if kind == "org_domain":
            out["organisation"]["domains"].append(
                (row.get("domains") or row.get("name") or "").strip()
            )
        elif kind == "org_contact":
            out["organisation"]["contacts"].append(
                {
                    "purpose": (row.get("purpose") or "general").strip(),
                    "name": row.get("name", ""),
                    "phone": row.get("phone", ""),
                    "email": row.get("emails", ""),
                }
            )
        elif kind == "person":
            out["people"].append(
                {
                    "name": row.get("name", ""),
                    "emails": _split(row.get("emails")),
                    "role": row.get("role", ""),
                    "vip": (row.get("vip") or "").strip().lower() in ("1", "true", "yes", "y"),
                    "phone": row.get("phone", ""),
                }
            )
        elif kind == "vendor":
            name = (row.get("name") or "").strip()
            v = vendors.setdefault(
                name, {"name": name, "domains": [], "contacts": [], "bank_accounts": []}
            )
            v["domains"] += _split(row.get("domains"))
            if row.get("contact_phone") or row.get("contact_email"):
                v["contacts"].append(
                    {
                        "name": row.get("contact_name", ""),
                        "phone": row.get("contact_phone", ""),
                        "email": row.get("contact_email", ""),
                    }
                )
            v["bank_accounts"] += _split(row.get("bank_account"))
        else:
            raise InvalidInput(
                f"line {lineno}: type must be org_domain, org_contact, person or vendor"
            )
    out["vendors"] = list(vendors.values())
    return out


def clear_directory(session: Session) -> None:
    """Remove every directory entry (tests and `demo --reset`)."""
    for table in (AccountOnFile, Contact, Person, Vendor, OrgDomain):
        session.execute(delete(table))
