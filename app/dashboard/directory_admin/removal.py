"""Deleting directory entries, each after a confirmation page (no JavaScript needed)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.core.deps import DbSession
from app.core.errors import NotFound
from app.dashboard.auth import AdminAuth
from app.dashboard.directory_admin.common import (
    BASE,
    PURPOSES,
    AdminCsrf,
    changed,
    parse_id,
)
from app.dashboard.web import dashboard_router, redirect, render
from app.directory import service

router = dashboard_router()


@dataclass(slots=True)
class Removal:
    """What a delete button removes, where it goes back to, and how."""

    title: str
    what: str
    cancel: str
    after: str
    run: Callable[[], None]


def _person_removal(session: Session, raw: str, actor: str) -> Removal:
    person = service.get_person(session, parse_id(raw, "person"))
    return Removal(
        title="Delete a person",
        what=f"{person.name} and their known-good phone number",
        cancel=f"{BASE}/people/{person.id}",
        after=f"{BASE}?tab=people&done=person_deleted",
        run=lambda: service.delete_person(session, person_id=person.id, actor=actor),
    )


def _vendor_removal(session: Session, raw: str, actor: str) -> Removal:
    vendor = service.describe_vendors(
        session, [service.get_vendor(session, parse_id(raw, "vendor"))]
    )[0]
    return Removal(
        title="Delete a vendor",
        what=(
            f"{vendor.name} with its {len(vendor.contacts)} contact(s) and "
            f"{len(vendor.bank_accounts)} bank account(s)"
        ),
        cancel=f"{BASE}/vendors/{vendor.id}",
        after=f"{BASE}?tab=vendors&done=vendor_deleted",
        run=lambda: service.delete_vendor(session, vendor_id=vendor.id, actor=actor),
    )


def _contact_removal(session: Session, raw_vendor: str, raw: str, actor: str) -> Removal:
    vid, cid = parse_id(raw_vendor, "vendor"), parse_id(raw, "contact")
    vendor = service.get_vendor(session, vid)
    contact = next((c for c in service.list_vendor_contacts(session, vid) if c.id == cid), None)
    if contact is None:
        raise NotFound(f"no contact {cid}")
    label = ", ".join(p for p in (contact.name, contact.phone, contact.email) if p)
    return Removal(
        title="Delete a contact",
        what=f"the contact {label} of {vendor.name}",
        cancel=f"{BASE}/vendors/{vid}",
        after=f"{BASE}/vendors/{vid}?done=contact_deleted",
        run=lambda: service.delete_vendor_contact(
            session, vendor_id=vid, contact_id=cid, actor=actor
        ),
    )


def _account_removal(session: Session, raw_vendor: str, raw: str, actor: str) -> Removal:
    vid, aid = parse_id(raw_vendor, "vendor"), parse_id(raw, "bank account")
    vendor = service.get_vendor(session, vid)
    account = next((a for a in service.list_vendor_accounts(session, vid) if a.id == aid), None)
    if account is None:
        raise NotFound(f"no bank account {aid}")
    return Removal(
        title="Delete a bank account",
        what=f"the {account.kind} ending {account.last4} of {vendor.name}",
        cancel=f"{BASE}/vendors/{vid}",
        after=f"{BASE}/vendors/{vid}?done=account_deleted",
        run=lambda: service.delete_vendor_account(
            session, vendor_id=vid, account_id=aid, actor=actor
        ),
    )


def _domain_removal(session: Session, raw: str, actor: str) -> Removal:
    wanted = raw.strip().lower()
    domain = next((d for d in service.list_org_domains(session) if d.domain == wanted), None)
    if domain is None:
        raise NotFound(f"no organisation domain {raw[:80]!r}")
    return Removal(
        title="Delete an organisation domain",
        what=f"the organisation domain {domain.domain}",
        cancel=f"{BASE}?tab=organisation",
        after=f"{BASE}?tab=organisation&done=domain_deleted",
        run=lambda: service.delete_org_domain(session, domain=domain.domain, actor=actor),
    )


def _org_contact_removal(session: Session, raw: str, actor: str) -> Removal:
    contact = service.get_org_contact(session, parse_id(raw, "contact"))
    label = ", ".join(p for p in (contact.name, contact.phone, contact.email) if p)
    return Removal(
        title="Delete an organisation contact",
        what=f"the {PURPOSES.get(contact.purpose, contact.purpose)} contact {label}",
        cancel=f"{BASE}/org-contacts/{contact.id}",
        after=f"{BASE}?tab=organisation&done=org_contact_deleted",
        run=lambda: service.delete_org_contact(session, contact_id=contact.id, actor=actor),
    )


def _confirm(request: Request, removal: Removal) -> Response:
    return render(
        request,
        "directory_confirm.html",
        {"nav": "directory", "removal": removal, "action": request.url.path},
    )


def _remove(request: Request, session: Session, removal: Removal) -> Response:
    removal.run()
    changed(request, session)
    return redirect(removal.after)


@router.get("/directory/people/{person_id}/delete")
def person_delete_form(
    person_id: str, request: Request, session: DbSession, auth: AdminAuth
) -> Response:
    """Ask before deleting a person."""
    return _confirm(request, _person_removal(session, person_id, auth.user.actor))


@router.post("/directory/people/{person_id}/delete")
def person_delete(
    person_id: str, request: Request, session: DbSession, auth: AdminCsrf
) -> Response:
    """Delete a person and their contacts."""
    return _remove(request, session, _person_removal(session, person_id, auth.user.actor))


@router.get("/directory/vendors/{vendor_id}/delete")
def vendor_delete_form(
    vendor_id: str, request: Request, session: DbSession, auth: AdminAuth
) -> Response:
    """Ask before deleting a vendor."""
    return _confirm(request, _vendor_removal(session, vendor_id, auth.user.actor))


@router.post("/directory/vendors/{vendor_id}/delete")
def vendor_delete(
    vendor_id: str, request: Request, session: DbSession, auth: AdminCsrf
) -> Response:
    """Delete a vendor with its contacts and bank accounts."""
    return _remove(request, session, _vendor_removal(session, vendor_id, auth.user.actor))


@router.get("/directory/vendors/{vendor_id}/contacts/{contact_id}/delete")
def vendor_contact_delete_form(
    vendor_id: str, contact_id: str, request: Request, session: DbSession, auth: AdminAuth
) -> Response:
    """Ask before deleting a vendor's contact."""
    return _confirm(request, _contact_removal(session, vendor_id, contact_id, auth.user.actor))


@router.post("/directory/vendors/{vendor_id}/contacts/{contact_id}/delete")
def vendor_contact_delete(
    vendor_id: str, contact_id: str, request: Request, session: DbSession, auth: AdminCsrf
) -> Response:
    """Delete a vendor's contact."""
    removal = _contact_removal(session, vendor_id, contact_id, auth.user.actor)
    return _remove(request, session, removal)


@router.get("/directory/vendors/{vendor_id}/accounts/{account_id}/delete")
def vendor_account_delete_form(
    vendor_id: str, account_id: str, request: Request, session: DbSession, auth: AdminAuth
) -> Response:
    """Ask before deleting a vendor's bank account."""
    return _confirm(request, _account_removal(session, vendor_id, account_id, auth.user.actor))


@router.post("/directory/vendors/{vendor_id}/accounts/{account_id}/delete")
def vendor_account_delete(
    vendor_id: str, account_id: str, request: Request, session: DbSession, auth: AdminCsrf
) -> Response:
    """Delete a vendor's bank account."""
    removal = _account_removal(session, vendor_id, account_id, auth.user.actor)
    return _remove(request, session, removal)


@router.get("/directory/org-domains/{domain}/delete")
def org_domain_delete_form(
    domain: str, request: Request, session: DbSession, auth: AdminAuth
) -> Response:
    """Ask before deleting an organisation domain."""
    return _confirm(request, _domain_removal(session, domain, auth.user.actor))


@router.post("/directory/org-domains/{domain}/delete")
def org_domain_delete(
    domain: str, request: Request, session: DbSession, auth: AdminCsrf
) -> Response:
    """Delete an organisation domain."""
    return _remove(request, session, _domain_removal(session, domain, auth.user.actor))


@router.get("/directory/org-contacts/{contact_id}/delete")
def org_contact_delete_form(
    contact_id: str, request: Request, session: DbSession, auth: AdminAuth
) -> Response:
    """Ask before deleting an organisation contact."""
    return _confirm(request, _org_contact_removal(session, contact_id, auth.user.actor))


@router.post("/directory/org-contacts/{contact_id}/delete")
def org_contact_delete(
    contact_id: str, request: Request, session: DbSession, auth: AdminCsrf
) -> Response:
    """Delete an organisation contact."""
    return _remove(request, session, _org_contact_removal(session, contact_id, auth.user.actor))
