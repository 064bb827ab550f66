"""Directory use cases: the detection snapshot, lookups for playbooks, edits and imports.

Provenance is the point of the directory: a ticket shows a contact as known-good only when it was
on file before the email arrived. So a contact or account whose number or address changes is put
on file again (new `created_at`, new `added_by`), and bank numbers are kept only as kind, last four
and a keyed fingerprint.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import phonenumbers
import yaml
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException
from sqlalchemy import Select, Text, and_, delete, func, literal, or_, select
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.core.errors import AppError, InvalidInput, NotFound
from app.core.models import AuditLog
from app.detect import directory as snap
from app.directory.exceptions import Conflict
from app.directory.models import AccountOnFile, Contact, OrgDomain, Person, Vendor
from app.directory.schemas import (
    MAX_ITEMS,
    MAX_NAME,
    MAX_NOTE,
    ContactPatch,
    ContactRead,
    DirectoryRead,
    OrgContactPatch,
    OrgDomainRead,
    PersonPatch,
    PersonRead,
    VendorPatch,
    VendorRead,
)
from app.mail.artifacts import fingerprint, registered_domain

ORG_PURPOSES = ("it_helpdesk", "data_owner", "finance", "general")
DEFAULT_PHONE_REGION = "US"
"""Region for numbers typed without a country code: the one `extract_artifacts` assumes, so a
number on file and the same number in an email compare equal."""
MAX_IMPORT_ENTRIES = 20_000
"""Entries per section of an imported file (YAML aliases can repeat one entry endlessly)."""


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


# --- normalisation ------------------------------------------------------------------------------

_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_EMAIL = re.compile(r"[^@\s<>(),;:\"\[\]\\]{1,64}@[^@\s<>(),;:\"\[\]\\]+")
_PHONE = re.compile(r"\+?[0-9()./\- ]+(?:\s*(?:x|ext\.?)\s*\d{1,6})?", re.IGNORECASE)
_ACCOUNT = re.compile(r"[A-Z0-9]{4,34}")
_IBAN_SHAPE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")


def normalise_domain(value: str) -> str:
    """A lower-case ASCII (punycode) domain name; raises InvalidInput for anything else."""
    domain = value.strip().lower().removeprefix("@").rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidInput(f"not a domain: {value[:80]!r}") from None
    labels = domain.split(".")
    if (
        len(domain) > 253
        or len(labels) < 2
        or labels[-1].isdigit()
        or not all(_LABEL.fullmatch(label) for label in labels)
    ):
        raise InvalidInput(f"not a domain: {value[:80]!r}")
    return domain


def normalise_email(value: str) -> str:
    """A lower-case address with a valid domain; raises InvalidInput for anything else."""
    address = value.strip().lower().removeprefix("mailto:")
    if len(address) > 320 or not _EMAIL.fullmatch(address):
        raise InvalidInput(f"not an email address: {value[:80]!r}")
    local, _, domain = address.rpartition("@")
    return f"{local}@{normalise_domain(domain)}"


def normalise_phone(value: str) -> str:
    """E.164 when the number parses (as detection formats numbers found in emails), else as typed.

    Numbers with a country code must be possible numbers; numbers without one are read as
    `DEFAULT_PHONE_REGION` numbers when valid there and otherwise kept as typed.
    """
    raw = " ".join(value.split())
    if not raw:
        return ""
    if len(raw) > 40 or not _PHONE.fullmatch(raw) or sum(ch.isdigit() for ch in raw) < 5:
        raise InvalidInput(f"not a phone number: {value[:80]!r}")
    international = raw.startswith("+")
    try:
        number = phonenumbers.parse(raw, None if international else DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        number = None
    if international and (number is None or not phonenumbers.is_possible_number(number)):
        raise InvalidInput(f"not a possible phone number: {raw!r}")
    if number is None or number.extension:
        return raw
    if international or phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return raw


def _phone_key(phone: str) -> str:
    """The comparable form of a stored number (rows written before normalisation included)."""
    try:
        return normalise_phone(phone)
    except InvalidInput:
        return phone


def _account(raw: str) -> tuple[str, str]:
    """(kind, compact form) of a typed bank account; a mistyped IBAN is refused, not stored.

    Error messages name the last four characters only: the number itself never leaves here.
    """
    compact = re.sub(r"[\s\-./]", "", str(raw)).upper()
    if not _ACCOUNT.fullmatch(compact):
        raise InvalidInput("a bank account number has 4 to 34 letters and digits")
    if _IBAN_SHAPE.fullmatch(compact):
        try:
            IBAN(compact)
        except SchwiftyException:
            raise InvalidInput(
                f"the IBAN ending {compact[-4:]} is not valid (check digits, length or country)"
            ) from None
        return "iban", compact
    return "account", compact


def _name(value: str, what: str) -> str:
    name = " ".join(str(value).split())
    if not name:
        raise InvalidInput(f"{what} needs a name")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"names are at most {MAX_NAME} characters")
    return name


def _text(value: str, what: str, limit: int = MAX_NAME) -> str:
    text = str(value).strip()
    if len(text) > limit:
        raise InvalidInput(f"{what} is at most {limit} characters")
    return text


def _emails(values: Sequence[str]) -> list[str]:
    emails = sorted({normalise_email(e) for e in values if str(e).strip()})
    if len(emails) > MAX_ITEMS:
        raise InvalidInput(f"at most {MAX_ITEMS} email addresses per person")
    return emails


def _domains(values: Sequence[str]) -> list[str]:
    domains = sorted({normalise_domain(d) for d in values if str(d).strip()})
    if len(domains) > MAX_ITEMS:
        raise InvalidInput(f"at most {MAX_ITEMS} domains per vendor")
    return domains


def _purpose(value: str) -> str:
    if value not in ORG_PURPOSES:
        raise InvalidInput(f"purpose must be one of {', '.join(ORG_PURPOSES)}")
    return value


def _audit(session: Session, actor: str, action: str, target: str) -> None:
    session.add(AuditLog(actor=actor[:200], action=action, target=target))


# --- reads --------------------------------------------------------------------------------------


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


# --- contacts and accounts ----------------------------------------------------------------------


def _get_contact(
    session: Session, contact_id: uuid.UUID, *, vendor_id: uuid.UUID | None
) -> Contact:
    """A vendor's contact (or, with vendor_id None, an organisation contact); raises NotFound."""
    contact = session.get(Contact, contact_id)
    if contact is None or contact.person_id is not None or contact.vendor_id != vendor_id:
        raise NotFound(f"no contact {contact_id}")
    return contact


def _patch_contact(
    session: Session,
    contact: Contact,
    changes: ContactPatch,
    *,
    actor: str,
    siblings: list[Contact],
) -> None:
    """Apply changes; a new number, address or purpose puts the contact on file again."""
    if changes.name is not None:
        contact.name = _text(changes.name, "a contact name")
    if changes.note is not None:
        contact.note = _text(changes.note, "a note", MAX_NOTE)
    phone = normalise_phone(changes.phone) if changes.phone is not None else contact.phone
    email = contact.email
    if changes.email is not None:
        email = normalise_email(changes.email) if changes.email.strip() else ""
    purpose = contact.purpose
    if isinstance(changes, OrgContactPatch) and changes.purpose is not None:
        purpose = _purpose(changes.purpose)
    if not phone and not email:
        raise InvalidInput("a contact needs a phone number or an email address")
    key = (_phone_key(phone), email)
    if key == _contact_key(contact.phone, contact.email) and purpose == contact.purpose:
        return
    if any(
        c.id != contact.id and c.purpose == purpose and _contact_key(c.phone, c.email) == key
        for c in siblings
    ):
        raise Conflict("this contact is on file already")
    contact.phone, contact.email, contact.purpose = phone, email, purpose
    # A changed number is a new claim: it must not inherit the old one's time on file.
    contact.created_at = utcnow()
    contact.added_by = actor


def add_vendor_contact(
    session: Session,
    *,
    vendor_id: uuid.UUID,
    name: str = "",
    phone: str = "",
    email: str = "",
    note: str = "",
    actor: str,
) -> Contact:
    """Add a known-good contact to a vendor; raises NotFound or Conflict."""
    vendor = get_vendor(session, vendor_id)
    contact = _add_vendor_contact(
        session, vendor, name=name, phone=phone, email=email, note=note, actor=actor, strict=True
    )
    assert contact is not None  # strict: a duplicate raised
    _audit(session, actor, "directory.vendor_contact.create", f"{vendor.id} {contact.id}")
    return contact


def update_vendor_contact(
    session: Session,
    *,
    vendor_id: uuid.UUID,
    contact_id: uuid.UUID,
    changes: ContactPatch,
    actor: str,
) -> Contact:
    """Change a vendor's contact; raises NotFound or Conflict."""
    get_vendor(session, vendor_id)
    contact = _get_contact(session, contact_id, vendor_id=vendor_id)
    siblings = _contacts_of(session, Contact.vendor_id, [vendor_id]).get(vendor_id, [])
    _patch_contact(session, contact, changes, actor=actor, siblings=siblings)
    _audit(session, actor, "directory.vendor_contact.update", f"{vendor_id} {contact.id}")
    session.flush()
    return contact


def delete_vendor_contact(
    session: Session, *, vendor_id: uuid.UUID, contact_id: uuid.UUID, actor: str
) -> None:
    """Remove a vendor's contact; raises NotFound."""
    get_vendor(session, vendor_id)
    contact = _get_contact(session, contact_id, vendor_id=vendor_id)
    _audit(session, actor, "directory.vendor_contact.delete", f"{vendor_id} {contact.id}")
    session.delete(contact)
    session.flush()


def add_vendor_account(
    session: Session, *, vendor_id: uuid.UUID, number: str, key: bytes, actor: str
) -> AccountOnFile:
    """Put a vendor's bank account on file, masked; raises NotFound, InvalidInput or Conflict."""
    vendor = get_vendor(session, vendor_id)
    account = _add_account(session, vendor, number, key=key, actor=actor, strict=True)
    assert account is not None  # strict: a duplicate raised
    _audit(
        session,
        actor,
        "directory.account.create",
        f"{vendor.id} {account.id} {account.kind} ending {account.last4}",
    )
    return account


def _get_account(session: Session, vendor_id: uuid.UUID, account_id: uuid.UUID) -> AccountOnFile:
    account = session.get(AccountOnFile, account_id)
    if account is None or account.vendor_id != vendor_id:
        raise NotFound(f"no bank account {account_id}")
    return account


def update_vendor_account(
    session: Session,
    *,
    vendor_id: uuid.UUID,
    account_id: uuid.UUID,
    number: str,
    key: bytes,
    actor: str,
) -> AccountOnFile:
    """Replace an account's number: the new one is on file from now, by `actor`."""
    vendor = get_vendor(session, vendor_id)
    account = _get_account(session, vendor_id, account_id)
    kind, compact = _account(number)
    fp = fingerprint(compact, key)
    if fp == account.fingerprint:
        return account
    if session.scalars(
        select(AccountOnFile.id).where(
            AccountOnFile.vendor_id == vendor_id, AccountOnFile.fingerprint == fp
        )
    ).first():
        raise Conflict(f"the {kind} ending {compact[-4:]} is on file for {vendor.name}")
    account.kind, account.last4, account.fingerprint = kind, compact[-4:], fp
    account.created_at, account.added_by = utcnow(), actor
    _audit(
        session,
        actor,
        "directory.account.update",
        f"{vendor_id} {account.id} {kind} ending {account.last4}",
    )
    session.flush()
    return account


def delete_vendor_account(
    session: Session, *, vendor_id: uuid.UUID, account_id: uuid.UUID, actor: str
) -> None:
    """Remove a vendor's bank account; raises NotFound."""
    get_vendor(session, vendor_id)
    account = _get_account(session, vendor_id, account_id)
    _audit(
        session,
        actor,
        "directory.account.delete",
        f"{vendor_id} {account.id} {account.kind} ending {account.last4}",
    )
    session.delete(account)
    session.flush()


# --- the organisation ---------------------------------------------------------------------------


def add_org_domain(
    session: Session, *, domain: str, actor: str, exist_ok: bool = True, audit: bool = True
) -> OrgDomain:
    """Add an organisation domain (idempotent unless `exist_ok` is False: then Conflict)."""
    domain = normalise_domain(domain)
    added = session.scalar(
        insert(OrgDomain)
        .values(domain=domain, added_by=actor, added_at=utcnow())
        .on_conflict_do_nothing()
        .returning(OrgDomain.domain)
    )
    if added is None and not exist_ok:
        raise Conflict(f"{domain} is on file")
    if added is not None and audit:
        _audit(session, actor, "directory.org_domain.create", domain)
    row = session.get(OrgDomain, domain)
    assert row is not None
    return row


def delete_org_domain(session: Session, *, domain: str, actor: str) -> None:
    """Remove an organisation domain; raises NotFound."""
    try:
        name = normalise_domain(domain)
    except InvalidInput:
        raise NotFound(f"no organisation domain {domain[:80]!r}") from None
    result = session.execute(delete(OrgDomain).where(OrgDomain.domain == name))
    if not getattr(result, "rowcount", 0):
        raise NotFound(f"no organisation domain {name!r}")
    _audit(session, actor, "directory.org_domain.delete", name)


def add_org_contact(
    session: Session,
    *,
    purpose: str,
    name: str,
    phone: str = "",
    email: str = "",
    note: str = "",
    actor: str,
    exist_ok: bool = True,
    audit: bool = True,
) -> Contact:
    """An organisation contact (IT help desk, data owner, finance) used by playbooks.

    The same purpose, number and address again returns the one on file (Conflict when
    `exist_ok` is False).
    """
    purpose, name = _purpose(purpose), _text(name, "a contact name")
    phone, email = normalise_phone(phone), normalise_email(email) if email.strip() else ""
    note = _text(note, "a note", MAX_NOTE)
    if not phone and not email:
        raise InvalidInput("a contact needs a phone number or an email address")
    for c in session.scalars(_org_contact_query().where(Contact.purpose == purpose)):
        if _contact_key(c.phone, c.email) == (phone, email):
            if not exist_ok:
                raise Conflict(f"this {purpose} contact is on file")
            return c
    contact = Contact(
        purpose=purpose, name=name, phone=phone, email=email, note=note, added_by=actor
    )
    session.add(contact)
    session.flush()
    if audit:
        _audit(session, actor, "directory.org_contact.create", f"{contact.id} {purpose}")
    return contact


def get_org_contact(session: Session, contact_id: uuid.UUID) -> Contact:
    """An organisation contact by id; raises NotFound."""
    return _get_contact(session, contact_id, vendor_id=None)


def update_org_contact(
    session: Session, *, contact_id: uuid.UUID, changes: OrgContactPatch, actor: str
) -> Contact:
    """Change an organisation contact; raises NotFound or Conflict."""
    contact = _get_contact(session, contact_id, vendor_id=None)
    siblings = list(session.scalars(_org_contact_query()))
    _patch_contact(session, contact, changes, actor=actor, siblings=siblings)
    _audit(session, actor, "directory.org_contact.update", str(contact.id))
    session.flush()
    return contact


def delete_org_contact(session: Session, *, contact_id: uuid.UUID, actor: str) -> None:
    """Remove an organisation contact; raises NotFound."""
    contact = _get_contact(session, contact_id, vendor_id=None)
    _audit(session, actor, "directory.org_contact.delete", f"{contact.id} {contact.purpose}")
    session.delete(contact)
    session.flush()


# --- import -------------------------------------------------------------------------------------


@contextmanager
def _entry(where: str) -> Iterator[None]:
    """Prefix errors with the entry they come from (`people[3]`), keeping their class."""
    try:
        yield
    except AppError as exc:
        raise type(exc)(f"{where}: {exc.detail}", code=exc.code) from None


def _str(entry: Mapping[str, Any], key: str) -> str:
    value = entry.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidInput(f"{key} must be text")
    return str(value).strip()


def _list(entry: Mapping[str, Any], key: str, *, limit: int = MAX_ITEMS) -> list[Any]:
    value = entry.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise InvalidInput(f"{key} must be a list")
    if len(value) > limit:
        raise InvalidInput(f"at most {limit} {key} per entry")
    return value


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{what} must be an object")
    return value


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "y")
    return bool(value)


def _row_counts(session: Session) -> dict[str, int]:
    """Rows of each kind of entry, in one query."""

    def count(model: Any, *where: Any) -> Any:
        return select(func.count()).select_from(model).where(*where).scalar_subquery()

    row = session.execute(
        select(
            count(OrgDomain).label("org_domains"),
            count(Contact, and_(Contact.person_id.is_(None), Contact.vendor_id.is_(None))).label(
                "org_contacts"
            ),
            count(Person).label("people"),
            count(Vendor).label("vendors"),
            count(Contact, Contact.vendor_id.is_not(None)).label("vendor_contacts"),
            count(AccountOnFile).label("bank_accounts"),
        )
    ).one()
    return {k: int(v) for k, v in row._mapping.items()}


def import_directory(
    session: Session, data: Mapping[str, Any], *, key: bytes, actor: str
) -> dict[str, Any]:
    """Import the directory file format (see README): entries are added or updated, never
    removed, so importing the same file twice changes nothing.

    Returns the entries read per kind and, under `added`, the rows that were new.
    """
    before = _row_counts(session)
    counts = dict.fromkeys(before, 0)
    org = _mapping(data.get("organisation") or data.get("organization") or {}, "organisation")
    sections = {
        "organisation.domains": _list(org, "domains", limit=MAX_IMPORT_ENTRIES),
        "organisation.contacts": _list(org, "contacts", limit=MAX_IMPORT_ENTRIES),
        "people": _list(data, "people", limit=MAX_IMPORT_ENTRIES),
        "vendors": _list(data, "vendors", limit=MAX_IMPORT_ENTRIES),
    }
    for i, d in enumerate(sections["organisation.domains"]):
        with _entry(f"organisation.domains[{i}]"):
            add_org_domain(session, domain=str(d), actor=actor, audit=False)
        counts["org_domains"] += 1
    for i, raw in enumerate(sections["organisation.contacts"]):
        with _entry(f"organisation.contacts[{i}]"):
            c = _mapping(raw, "a contact")
            add_org_contact(
                session,
                purpose=_str(c, "purpose") or "general",
                name=_str(c, "name"),
                phone=_str(c, "phone"),
                email=_str(c, "email"),
                note=_str(c, "note"),
                actor=actor,
                audit=False,
            )
        counts["org_contacts"] += 1
    for i, raw in enumerate(sections["people"]):
        with _entry(f"people[{i}]"):
            p = _mapping(raw, "a person")
            upsert_person(
                session,
                name=_str(p, "name"),
                emails=[str(e) for e in _list(p, "emails")],
                role=_str(p, "role"),
                vip=_flag(p.get("vip", False)),
                phone=_str(p, "phone"),
                actor=actor,
            )
        counts["people"] += 1
    for i, raw in enumerate(sections["vendors"]):
        with _entry(f"vendors[{i}]"):
            v = _mapping(raw, "a vendor")
            contacts = [_mapping(c, "a contact") for c in _list(v, "contacts")]
            accounts = [
                _str(a, "number") or _str(a, "iban") or _str(a, "account")
                if isinstance(a, Mapping)
                else str(a)
                for a in _list(v, "bank_accounts")
            ]
            upsert_vendor(
                session,
                name=_str(v, "name"),
                domains=[str(d) for d in _list(v, "domains")],
                contacts=[
                    {k: _str(c, k) for k in ("name", "phone", "email", "note")} for c in contacts
                ],
                bank_accounts=[a for a in accounts if a],
                key=key,
                actor=actor,
            )
            counts["vendors"] += 1
            counts["vendor_contacts"] += len(contacts)
            counts["bank_accounts"] += len([a for a in accounts if a])
    after = _row_counts(session)
    added = {k: after[k] - before[k] for k in before}
    _audit(
        session,
        actor,
        "directory.import",
        ", ".join(f"{k} {v} (+{added[k]})" for k, v in counts.items()),
    )
    return {**counts, "added": added}


def parse_directory_file(name: str, content: bytes) -> dict[str, Any]:
    """The directory format from a JSON, YAML or CSV file (by extension; YAML otherwise)."""
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
    domains, contact_name, contact_phone, contact_email, bank_account, purpose.

    A vendor may span several rows (one per contact or account); lists are `|`-separated."""
    out: dict[str, Any] = {
        "organisation": {"domains": [], "contacts": []},
        "people": [],
        "vendors": [],
    }
    vendors: dict[str, dict[str, Any]] = {}
    try:
        rows = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as exc:
        raise InvalidInput(f"cannot read the CSV: {exc}") from None
    for lineno, raw in enumerate(rows, 2):
        row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if isinstance(k, str)}
        kind = row.get("type", "").lower()
        if kind == "org_domain":
            out["organisation"]["domains"] += _split(row.get("domains") or row.get("name"))
        elif kind == "org_contact":
            out["organisation"]["contacts"].append(
                {
                    "purpose": row.get("purpose") or "general",
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
                    "vip": _flag(row.get("vip", "")),
                    "phone": row.get("phone", ""),
                }
            )
        elif kind == "vendor":
            name = row.get("name", "")
            v = vendors.setdefault(
                name, {"name": name, "domains": [], "contacts": [], "bank_accounts": []}
            )
            v["domains"] += [d for d in _split(row.get("domains")) if d not in v["domains"]]
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


def clear_directory(session: Session, *, actor: str = "") -> None:
    """Remove every directory entry (tests, `directory clear` and `demo --reset`)."""
    for table in (AccountOnFile, Contact, Person, Vendor, OrgDomain):
        session.execute(delete(table))
    if actor:
        _audit(session, actor, "directory.clear", "")
