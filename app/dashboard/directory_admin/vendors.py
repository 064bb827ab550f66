"""A vendor's page: its name and domains, known-good contacts and masked bank accounts."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.core.deps import DbSession
from app.core.errors import AppError
from app.dashboard.auth import AdminAuth
from app.dashboard.directory_admin.common import (
    BASE,
    AdminCsrf,
    Done,
    FormState,
    LongText,
    Text,
    attempt,
    changed,
    fingerprint_key,
    notice_for,
    parse_id,
    patch,
    split_items,
    viewed,
)
from app.dashboard.web import dashboard_router, redirect, render
from app.directory import service
from app.directory.schemas import ContactPatch, VendorPatch

router = dashboard_router()


def _vendor_page(
    request: Request,
    session: Session,
    vendor_id: uuid.UUID,
    *,
    state: FormState | None = None,
    notice: str = "",
    status_code: int = 200,
) -> Response:
    vendor = service.describe_vendors(session, [service.get_vendor(session, vendor_id)])[0]
    return render(
        request,
        "directory_vendor.html",
        {"nav": "directory", "vendor": vendor, "state": state or FormState(), "notice": notice},
        status_code=status_code,
    )


@router.get("/directory/vendors/{vendor_id}")
def vendor_page(
    vendor_id: str, request: Request, session: DbSession, auth: AdminAuth, done: Done = ""
) -> Response:
    """One vendor: its domains, known-good contacts and masked bank accounts, with provenance."""
    vid = parse_id(vendor_id, "vendor")
    viewed(session, auth, f"vendor {vid}")
    return _vendor_page(request, session, vid, notice=notice_for(done))


def _vendor_change(
    request: Request,
    session: Session,
    vendor_id: uuid.UUID,
    *,
    form: str,
    values: dict[str, str],
    action: Callable[[], object],
    done: str,
) -> Response:
    """Apply a change on the vendor page: back to the page with a notice, or the form's error."""
    result = attempt(session, action)
    if isinstance(result, AppError):
        state = FormState(form, result.detail, values)
        return _vendor_page(
            request, session, vendor_id, state=state, status_code=result.status_code
        )
    changed(request, session)
    return redirect(f"{BASE}/vendors/{vendor_id}?done={done}")


@router.post("/directory/vendors/{vendor_id}")
def vendor_save(
    vendor_id: str,
    request: Request,
    session: DbSession,
    auth: AdminCsrf,
    name: Text = "",
    domains: LongText = "",
) -> Response:
    """Rename a vendor or replace its domains."""
    vid = parse_id(vendor_id, "vendor")

    def save() -> object:
        changes = patch(VendorPatch, name=name, domains=split_items(domains))
        return service.update_vendor(session, vendor_id=vid, changes=changes, actor=auth.user.actor)

    return _vendor_change(
        request,
        session,
        vid,
        form="vendor-edit",
        values={"name": name, "domains": domains},
        action=save,
        done="vendor_saved",
    )


@router.post("/directory/vendors/{vendor_id}/contacts")
def vendor_contact_add(
    vendor_id: str,
    request: Request,
    session: DbSession,
    auth: AdminCsrf,
    name: Text = "",
    phone: Text = "",
    email: Text = "",
    note: LongText = "",
) -> Response:
    """Add a known-good contact to a vendor (on file from now, by this admin)."""
    vid = parse_id(vendor_id, "vendor")
    return _vendor_change(
        request,
        session,
        vid,
        form="contact-add",
        values={"name": name, "phone": phone, "email": email, "note": note},
        action=lambda: service.add_vendor_contact(
            session,
            vendor_id=vid,
            name=name,
            phone=phone,
            email=email,
            note=note,
            actor=auth.user.actor,
        ),
        done="contact_added",
    )


@router.post("/directory/vendors/{vendor_id}/contacts/{contact_id}")
def vendor_contact_save(
    vendor_id: str,
    contact_id: str,
    request: Request,
    session: DbSession,
    auth: AdminCsrf,
    name: Text = "",
    phone: Text = "",
    email: Text = "",
    note: LongText = "",
) -> Response:
    """Change a vendor's contact (a new number or address is on file from now)."""
    vid, cid = parse_id(vendor_id, "vendor"), parse_id(contact_id, "contact")

    def save() -> object:
        changes = patch(ContactPatch, name=name, phone=phone, email=email, note=note)
        return service.update_vendor_contact(
            session, vendor_id=vid, contact_id=cid, changes=changes, actor=auth.user.actor
        )

    return _vendor_change(
        request,
        session,
        vid,
        form=f"contact-{cid}",
        values={"name": name, "phone": phone, "email": email, "note": note},
        action=save,
        done="contact_saved",
    )


@router.post("/directory/vendors/{vendor_id}/accounts")
def vendor_account_add(
    vendor_id: str, request: Request, session: DbSession, auth: AdminCsrf, number: Text = ""
) -> Response:
    """Put a bank account on file: only its kind, last four and a keyed fingerprint are kept."""
    vid = parse_id(vendor_id, "vendor")
    return _vendor_change(
        request,
        session,
        vid,
        form="account-add",
        values={},  # the number typed is never shown back
        action=lambda: service.add_vendor_account(
            session,
            vendor_id=vid,
            number=number,
            key=fingerprint_key(request),
            actor=auth.user.actor,
        ),
        done="account_added",
    )


@router.post("/directory/vendors/{vendor_id}/accounts/{account_id}")
def vendor_account_replace(
    vendor_id: str,
    account_id: str,
    request: Request,
    session: DbSession,
    auth: AdminCsrf,
    number: Text = "",
) -> Response:
    """Replace an account's number: the new one is on file from now."""
    vid, aid = parse_id(vendor_id, "vendor"), parse_id(account_id, "bank account")
    return _vendor_change(
        request,
        session,
        vid,
        form=f"account-{aid}",
        values={},
        action=lambda: service.update_vendor_account(
            session,
            vendor_id=vid,
            account_id=aid,
            number=number,
            key=fingerprint_key(request),
            actor=auth.user.actor,
        ),
        done="account_replaced",
    )
