"""Directory reads for the API and dashboard: lists, pages and descriptions with provenance."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, Text, func, or_, select
from sqlalchemy.orm import Session

from app.core.errors import NotFound
from app.directory.models import AccountOnFile, Contact, OrgDomain, Person, Vendor
from app.directory.normalise import _purpose
from app.directory.schemas import ContactRead, DirectoryRead, OrgDomainRead, PersonRead, VendorRead


def _contacts_of(session: Session, column: Any, ids: list[uuid.UUID]) -> dict[Any, list[Contact]]:
    out: dict[Any, list[Contact]] = {}
    if ids:
        rows = session.scalars(
            select(Contact).where(column.in_(ids)).order_by(Contact.created_at, Contact.id)
        )
        for c in rows:
            out.setdefault(getattr(c, column.key), []).append(c)
    return out


def describe_people(session: Session, people: Sequence[Person]) -> list[PersonRead]:
    """People with their contacts (one query for all of them)."""
    contacts = _contacts_of(session, Contact.person_id, [p.id for p in people])
    return [PersonRead.of(p, contacts.get(p.id, [])) for p in people]


def describe_vendors(session: Session, vendors: Sequence[Vendor]) -> list[VendorRead]:
    """Vendors with their contacts and masked accounts (two queries for all of them)."""
    ids = [v.id for v in vendors]
    contacts = _contacts_of(session, Contact.vendor_id, ids)
    accounts: dict[Any, list[AccountOnFile]] = {}
    if ids:
        for a in session.scalars(
            select(AccountOnFile)
            .where(AccountOnFile.vendor_id.in_(ids))
            .order_by(AccountOnFile.created_at, AccountOnFile.id)
        ):
            accounts.setdefault(a.vendor_id, []).append(a)
    return [VendorRead.of(v, contacts.get(v.id, []), accounts.get(v.id, [])) for v in vendors]


def read_directory(session: Session) -> DirectoryRead:
    """Everything on file with provenance, bank accounts masked."""
    people = list(session.scalars(select(Person).order_by(Person.name, Person.id)))
    vendors = list(session.scalars(select(Vendor).order_by(Vendor.name)))
    return DirectoryRead(
        org_domains=[OrgDomainRead.of(d) for d in list_org_domains(session)],
        org_contacts=list_org_contacts(session),
        people=describe_people(session, people),
        vendors=describe_vendors(session, vendors),
    )


def _like(q: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", q.strip().lower()) + "%"


def list_people(
    session: Session, *, q: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[Person], int]:
    """A page of people by name, optionally matching `q` in name, role or address."""
    query = select(Person)
    if q and q.strip():
        pattern = _like(q)
        query = query.where(
            or_(
                func.lower(Person.name).like(pattern, escape="\\"),
                func.lower(Person.role).like(pattern, escape="\\"),
                func.cast(Person.emails, Text).like(pattern, escape="\\"),
            )
        )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Person.name, Person.id).limit(limit).offset(offset))
    return list(rows), total


def list_vendors(
    session: Session, *, q: str | None = None, limit: int = 50, offset: int = 0
) -> tuple[list[Vendor], int]:
    """A page of vendors by name, optionally matching `q` in name or domains."""
    query = select(Vendor)
    if q and q.strip():
        pattern = _like(q)
        query = query.where(
            or_(
                func.lower(Vendor.name).like(pattern, escape="\\"),
                func.cast(Vendor.domains, Text).like(pattern, escape="\\"),
            )
        )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Vendor.name).limit(limit).offset(offset))
    return list(rows), total


def get_person(session: Session, person_id: uuid.UUID) -> Person:
    """A person by id; raises NotFound."""
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(f"no person {person_id}")
    return person


def get_vendor(session: Session, vendor_id: uuid.UUID) -> Vendor:
    """A vendor by id; raises NotFound."""
    vendor = session.get(Vendor, vendor_id)
    if vendor is None:
        raise NotFound(f"no vendor {vendor_id}")
    return vendor


def list_vendor_contacts(session: Session, vendor_id: uuid.UUID) -> list[Contact]:
    """A vendor's contacts, oldest first; raises NotFound for an unknown vendor."""
    get_vendor(session, vendor_id)
    return _contacts_of(session, Contact.vendor_id, [vendor_id]).get(vendor_id, [])


def list_vendor_accounts(session: Session, vendor_id: uuid.UUID) -> list[AccountOnFile]:
    """A vendor's bank accounts (masked), oldest first; raises NotFound for an unknown vendor."""
    get_vendor(session, vendor_id)
    return list(
        session.scalars(
            select(AccountOnFile)
            .where(AccountOnFile.vendor_id == vendor_id)
            .order_by(AccountOnFile.created_at, AccountOnFile.id)
        )
    )


def list_org_domains(session: Session) -> list[OrgDomain]:
    """The organisation's domains."""
    return list(session.scalars(select(OrgDomain).order_by(OrgDomain.domain)))


def _org_contact_query() -> Select[tuple[Contact]]:
    return select(Contact).where(Contact.person_id.is_(None), Contact.vendor_id.is_(None))


def list_org_contacts(session: Session, *, purpose: str | None = None) -> list[ContactRead]:
    """The organisation's contacts by purpose, oldest first."""
    query = _org_contact_query().order_by(Contact.purpose, Contact.created_at, Contact.id)
    if purpose:
        query = query.where(Contact.purpose == _purpose(purpose))
    return [ContactRead.of(c) for c in session.scalars(query)]
