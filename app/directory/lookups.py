"""Directory reads for detection and playbooks: the snapshot and known-good contacts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, func, literal, select
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.orm import Session

from app.detect import directory as snap
from app.directory.models import AccountOnFile, Contact, OrgDomain, Person, Vendor
from app.mail.artifacts import registered_domain


def load_snapshot(session: Session) -> snap.Directory:
    """The directory as detection sees it, read in five queries."""
    domains = list(session.scalars(select(OrgDomain.domain)))
    contacts = list(session.scalars(select(Contact).order_by(Contact.created_at, Contact.id)))
    by_person: dict[Any, list[Contact]] = {}
    by_vendor: dict[Any, list[Contact]] = {}
    for c in contacts:
        if c.person_id:
            by_person.setdefault(c.person_id, []).append(c)
        elif c.vendor_id:
            by_vendor.setdefault(c.vendor_id, []).append(c)
    accounts: dict[Any, list[AccountOnFile]] = {}
    for a in session.scalars(select(AccountOnFile).order_by(AccountOnFile.created_at)):
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
    """The person with this address, else the one with exactly this name (any case)."""
    if address:
        person = session.scalars(
            select(Person).where(Person.emails.op("?")(literal(address.lower(), Text)))
        ).first()
        if person:
            return person
    if name.strip():
        return session.scalars(
            select(Person)
            .where(func.lower(Person.name) == name.strip().lower())
            .order_by(Person.created_at)
        ).first()
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
    out = []
    for c in rows:
        known = _known(label, c, received_at)
        if known.name == person.name:
            known.name = ""  # the label names them already
        out.append(known)
    return out


def org_contacts(session: Session, purpose: str, received_at: datetime) -> list[KnownContact]:
    """The organisation's own contacts for a purpose (IT help desk, data owner, finance)."""
    rows = session.scalars(
        select(Contact)
        .where(Contact.person_id.is_(None), Contact.vendor_id.is_(None))
        .where(Contact.purpose == purpose)
        .order_by(Contact.created_at)
    )
    return [_known(c.name or purpose, c, received_at) for c in rows]
