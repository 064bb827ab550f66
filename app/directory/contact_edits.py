"""Directory edits for vendor contacts, bank accounts and the organisation's own entries."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.core.errors import InvalidInput, NotFound
from app.directory.edits import _add_account, _add_vendor_contact, _audit, _contact_key
from app.directory.exceptions import Conflict
from app.directory.models import AccountOnFile, Contact, OrgDomain
from app.directory.normalise import (
    _account,
    _phone_key,
    _purpose,
    _text,
    normalise_domain,
    normalise_email,
    normalise_phone,
)
from app.directory.reads import _contacts_of, _org_contact_query, get_vendor
from app.directory.schemas import MAX_NOTE, ContactPatch, OrgContactPatch
from app.mail.artifacts import fingerprint

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
