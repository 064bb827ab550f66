"""Directory edits for people and vendors: create, update, delete and upsert."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy import Text, select
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.core.errors import InvalidInput
from app.core.models import AuditLog
from app.directory.exceptions import Conflict
from app.directory.lookups import find_person
from app.directory.models import AccountOnFile, Contact, Person, Vendor
from app.directory.normalise import (
    _account,
    _domains,
    _emails,
    _entry,
    _name,
    _phone_key,
    _text,
    normalise_email,
    normalise_phone,
)
from app.directory.reads import _contacts_of, get_person, get_vendor
from app.directory.schemas import MAX_ITEMS, MAX_NOTE, PersonPatch, VendorPatch
from app.mail.artifacts import fingerprint


def _audit(session: Session, actor: str, action: str, target: str) -> None:
    session.add(AuditLog(actor=actor[:200], action=action, target=target))


# --- people -------------------------------------------------------------------------------------


def _check_emails_free(session: Session, emails: list[str], exclude: uuid.UUID | None) -> None:
    if not emails:
        return
    query = select(Person).where(Person.emails.op("?|")(pg_array(emails, type_=Text)))
    if exclude is not None:
        query = query.where(Person.id != exclude)
    other = session.scalars(query).first()
    if other is not None:
        taken = sorted(set(other.emails) & set(emails))
        raise Conflict(f"{', '.join(taken)} is on file for {other.name}")


def _person_contacts(session: Session, person: Person) -> list[Contact]:
    return _contacts_of(session, Contact.person_id, [person.id]).get(person.id, [])


def _set_person_phone(session: Session, person: Person, phone: str, actor: str) -> None:
    """Make `phone` the person's only number on file (kept with its provenance if unchanged)."""
    numbers = [c for c in _person_contacts(session, person) if c.phone]
    keep = next((c for c in numbers if phone and _phone_key(c.phone) == phone), None)
    for c in numbers:
        if c is not keep:
            session.delete(c)
    if phone and keep is None:
        session.add(Contact(person_id=person.id, name=person.name, phone=phone, added_by=actor))


def create_person(
    session: Session,
    *,
    name: str,
    emails: Sequence[str] = (),
    role: str = "",
    vip: bool = False,
    phone: str = "",
    actor: str,
) -> Person:
    """Put a person on file; raises Conflict when an address is on file for someone else."""
    name, addresses = _name(name, "a person"), _emails(emails)
    role, phone = _text(role, "role"), normalise_phone(phone)
    _check_emails_free(session, addresses, None)
    person = Person(name=name, emails=addresses, role=role, vip=vip, added_by=actor)
    session.add(person)
    session.flush()
    _set_person_phone(session, person, phone, actor)
    _audit(session, actor, "directory.person.create", f"{person.id} {name}")
    session.flush()
    return person


def update_person(
    session: Session, *, person_id: uuid.UUID, changes: PersonPatch, actor: str
) -> Person:
    """Change a person; a new phone number replaces the one on file."""
    person = get_person(session, person_id)
    if changes.name is not None:
        name = _name(changes.name, "a person")
        for c in _person_contacts(session, person):
            if c.name == person.name:
                c.name = name
        person.name = name
    if changes.emails is not None:
        addresses = _emails(changes.emails)
        _check_emails_free(session, addresses, person.id)
        person.emails = addresses
    if changes.role is not None:
        person.role = _text(changes.role, "role")
    if changes.vip is not None:
        person.vip = changes.vip
    if changes.phone is not None:
        _set_person_phone(session, person, normalise_phone(changes.phone), actor)
    person.updated_at = utcnow()
    _audit(
        session,
        actor,
        "directory.person.update",
        f"{person.id} {','.join(sorted(changes.model_fields_set))}",
    )
    session.flush()
    return person


def delete_person(session: Session, *, person_id: uuid.UUID, actor: str) -> None:
    """Remove a person and their contacts; raises NotFound."""
    person = get_person(session, person_id)
    _audit(session, actor, "directory.person.delete", f"{person.id} {person.name}")
    session.delete(person)  # contacts go with it (ON DELETE CASCADE)
    session.flush()


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
    """Create or update a person (matched by any address, else by name); a new phone is added.

    An import never removes a number on file: the oldest stays the known-good one.
    """
    name, addresses = _name(name, "a person"), _emails(emails)
    role, phone = _text(role, "role"), normalise_phone(phone)
    person = None
    for e in addresses:
        person = find_person(session, address=e)
        if person:
            break
    if person is None and not addresses:
        person = find_person(session, name=name)
    if person is None:
        _check_emails_free(session, addresses, None)
        person = Person(name=name, emails=addresses, role=role, vip=vip, added_by=actor)
        session.add(person)
        session.flush()
    else:
        merged = sorted(set(person.emails) | set(addresses))
        if len(merged) > MAX_ITEMS:
            raise InvalidInput(f"at most {MAX_ITEMS} email addresses per person")
        _check_emails_free(session, merged, person.id)
        if (person.name, person.role, person.vip, person.emails) != (name, role, vip, merged):
            person.name, person.role, person.vip, person.emails = name, role, vip, merged
            person.updated_at = utcnow()
    if phone and not any(
        _phone_key(c.phone) == phone for c in _person_contacts(session, person) if c.phone
    ):
        session.add(Contact(person_id=person.id, name=person.name, phone=phone, added_by=actor))
    session.flush()
    return person


# --- vendors ------------------------------------------------------------------------------------


def _check_domains_free(session: Session, domains: list[str], exclude: uuid.UUID | None) -> None:
    if not domains:
        return
    query = select(Vendor).where(Vendor.domains.op("?|")(pg_array(domains, type_=Text)))
    if exclude is not None:
        query = query.where(Vendor.id != exclude)
    other = session.scalars(query).first()
    if other is not None:
        taken = sorted(set(other.domains) & set(domains))
        raise Conflict(f"{', '.join(taken)} is on file for {other.name}")


def _insert_vendor(session: Session, name: str, domains: list[str], actor: str) -> Vendor | None:
    """A new vendor row, or None when the name is taken (the unique constraint decides)."""
    now = utcnow()
    new_id = session.scalar(
        insert(Vendor)
        .values(
            id=uuid.uuid4(),
            name=name,
            domains=domains,
            added_by=actor,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(Vendor.id)
    )
    return session.get(Vendor, new_id) if new_id else None


def _contact_key(phone: str, email: str) -> tuple[str, str]:
    return (_phone_key(phone), email.lower())


def _add_vendor_contact(
    session: Session,
    vendor: Vendor,
    *,
    name: str,
    phone: str,
    email: str,
    note: str = "",
    actor: str,
    strict: bool,
) -> Contact | None:
    name, note = _text(name, "a contact name"), _text(note, "a note", MAX_NOTE)
    phone, email = normalise_phone(phone), normalise_email(email) if email.strip() else ""
    if not phone and not email:
        raise InvalidInput("a contact needs a phone number or an email address")
    siblings = _contacts_of(session, Contact.vendor_id, [vendor.id]).get(vendor.id, [])
    if any(_contact_key(c.phone, c.email) == (phone, email) for c in siblings):
        if strict:
            raise Conflict(f"this contact is on file for {vendor.name}")
        return None
    contact = Contact(
        vendor_id=vendor.id, name=name, phone=phone, email=email, note=note, added_by=actor
    )
    session.add(contact)
    session.flush()
    return contact


def _add_account(
    session: Session, vendor: Vendor, raw: str, *, key: bytes, actor: str, strict: bool
) -> AccountOnFile | None:
    kind, compact = _account(raw)
    fp = fingerprint(compact, key)
    if session.scalars(
        select(AccountOnFile.id).where(
            AccountOnFile.vendor_id == vendor.id, AccountOnFile.fingerprint == fp
        )
    ).first():
        if strict:
            raise Conflict(f"the {kind} ending {compact[-4:]} is on file for {vendor.name}")
        return None
    account = AccountOnFile(
        vendor_id=vendor.id, kind=kind, last4=compact[-4:], fingerprint=fp, added_by=actor
    )
    session.add(account)
    session.flush()
    return account


def create_vendor(
    session: Session,
    *,
    name: str,
    domains: Sequence[str] = (),
    contacts: Sequence[Mapping[str, str]] = (),
    bank_accounts: Sequence[str] = (),
    key: bytes,
    actor: str,
) -> Vendor:
    """Put a vendor on file with its contacts and accounts; raises Conflict for a taken name
    or domain."""
    name, domain_list = _name(name, "a vendor"), _domains(domains)
    _check_domains_free(session, domain_list, None)
    vendor = _insert_vendor(session, name, domain_list, actor)
    if vendor is None:
        raise Conflict(f"a vendor named {name!r} is on file")
    for c in contacts:
        _add_vendor_contact(
            session,
            vendor,
            name=c.get("name", ""),
            phone=c.get("phone", ""),
            email=c.get("email", ""),
            note=c.get("note", ""),
            actor=actor,
            strict=False,
        )
    for raw in bank_accounts:
        _add_account(session, vendor, raw, key=key, actor=actor, strict=False)
    _audit(session, actor, "directory.vendor.create", f"{vendor.id} {name}")
    session.flush()
    return vendor


def update_vendor(
    session: Session, *, vendor_id: uuid.UUID, changes: VendorPatch, actor: str
) -> Vendor:
    """Rename a vendor or replace its domains; raises Conflict for a taken name or domain."""
    vendor = get_vendor(session, vendor_id)
    if changes.name is not None:
        name = _name(changes.name, "a vendor")
        if name != vendor.name:
            taken = session.scalars(
                select(Vendor.id).where(Vendor.name == name, Vendor.id != vendor.id)
            ).first()
            if taken:
                raise Conflict(f"a vendor named {name!r} is on file")
            vendor.name = name
            try:
                with session.begin_nested():  # a concurrent rename can still take the name
                    session.flush()
            except IntegrityError:
                raise Conflict(f"a vendor named {name!r} is on file") from None
    if changes.domains is not None:
        domain_list = _domains(changes.domains)
        _check_domains_free(session, domain_list, vendor.id)
        vendor.domains = domain_list
    vendor.updated_at = utcnow()
    _audit(
        session,
        actor,
        "directory.vendor.update",
        f"{vendor.id} {','.join(sorted(changes.model_fields_set))}",
    )
    session.flush()
    return vendor


def delete_vendor(session: Session, *, vendor_id: uuid.UUID, actor: str) -> None:
    """Remove a vendor with its contacts and accounts; raises NotFound."""
    vendor = get_vendor(session, vendor_id)
    _audit(session, actor, "directory.vendor.delete", f"{vendor.id} {vendor.name}")
    session.delete(vendor)  # contacts and accounts go with it (ON DELETE CASCADE)
    session.flush()


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
    """Create or update a vendor by name; contacts and accounts not on file yet are added."""
    name, domain_list = _name(name, "a vendor"), _domains(domains)
    vendor = session.scalars(select(Vendor).where(Vendor.name == name)).first()
    if vendor is None:
        _check_domains_free(session, domain_list, None)
        vendor = (
            _insert_vendor(session, name, domain_list, actor)
            or session.scalars(select(Vendor).where(Vendor.name == name)).one()
        )
    else:
        merged = sorted(set(vendor.domains) | set(domain_list))
        if len(merged) > MAX_ITEMS:
            raise InvalidInput(f"at most {MAX_ITEMS} domains per vendor")
        _check_domains_free(session, merged, vendor.id)
        if merged != vendor.domains:
            vendor.domains = merged
            vendor.updated_at = utcnow()
    for i, c in enumerate(contacts or []):
        with _entry(f"contacts[{i}]"):
            _add_vendor_contact(
                session,
                vendor,
                name=str(c.get("name") or ""),
                phone=str(c.get("phone") or ""),
                email=str(c.get("email") or ""),
                note=str(c.get("note") or ""),
                actor=actor,
                strict=False,
            )
    for i, raw in enumerate(bank_accounts or []):
        with _entry(f"bank_accounts[{i}]"):
            _add_account(session, vendor, raw, key=key, actor=actor, strict=False)
    session.flush()
    return vendor
