"""The directory list (vendors, people, the organisation) and the forms that add to it."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.core.deps import DbSession
from app.core.errors import AppError
from app.dashboard.auth import AdminAuth
from app.dashboard.directory_admin.common import (
    BASE,
    PAGE_SIZE,
    PURPOSES,
    TABS,
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
from app.directory.schemas import OrgContactPatch, PersonPatch

router = dashboard_router()


def _matches(q: str, *fields: str) -> bool:
    needle = q.strip().lower()
    return not needle or any(needle in f.lower() for f in fields)


def _directory_page(
    request: Request,
    session: Session,
    *,
    tab: str,
    q: str = "",
    page: int = 1,
    state: FormState | None = None,
    notice: str = "",
    status_code: int = 200,
) -> Response:
    tab = tab if tab in TABS else TABS[0]
    context: dict[str, Any] = {
        "nav": "directory",
        "tab": tab,
        "q": q,
        "page": page,
        "pages": 1,
        "total": 0,
        "state": state or FormState(),
        "notice": notice,
        "purposes": PURPOSES,
    }
    offset = (page - 1) * PAGE_SIZE
    if tab == "vendors":
        vendors, total = service.list_vendors(session, q=q, limit=PAGE_SIZE, offset=offset)
        context["vendors"] = service.describe_vendors(session, vendors)
    elif tab == "people":
        people, total = service.list_people(session, q=q, limit=PAGE_SIZE, offset=offset)
        context["people"] = service.describe_people(session, people)
    else:
        domains = [d for d in service.list_org_domains(session) if _matches(q, d.domain)]
        contacts = [
            c
            for c in service.list_org_contacts(session)
            if _matches(q, c.name, c.phone, c.email, c.purpose, PURPOSES.get(c.purpose, ""))
        ]
        context.update(domains=domains, org_contacts=contacts)
        total = len(domains) + len(contacts)
    context.update(total=total, pages=max(1, -(-total // PAGE_SIZE)))
    return render(request, "directory.html", context, status_code=status_code)


@router.get("/directory", name="dashboard-directory")
def directory_page(
    request: Request,
    session: DbSession,
    auth: AdminAuth,
    tab: Annotated[str, Query(max_length=20)] = "vendors",
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    done: Done = "",
) -> Response:
    """People, vendors (contacts, masked bank accounts) or the organisation, searchable."""
    viewed(session, auth, f"{tab} {q}".strip())
    return _directory_page(
        request, session, tab=tab, q=q.strip(), page=page, notice=notice_for(done)
    )


def _refused(
    request: Request, session: Session, tab: str, form: str, exc: AppError, values: dict[str, str]
) -> Response:
    state = FormState(form, exc.detail, values)
    return _directory_page(request, session, tab=tab, state=state, status_code=exc.status_code)


# --- people --------------------------------------------------------------------------------------


def _person_page(
    request: Request,
    session: Session,
    person_id: uuid.UUID,
    *,
    state: FormState | None = None,
    notice: str = "",
    status_code: int = 200,
) -> Response:
    person = service.describe_people(session, [service.get_person(session, person_id)])[0]
    return render(
        request,
        "directory_person.html",
        {"nav": "directory", "person": person, "state": state or FormState(), "notice": notice},
        status_code=status_code,
    )


@router.post("/directory/people")
def person_add(
    request: Request,
    session: DbSession,
    auth: AdminCsrf,
    name: Text = "",
    emails: LongText = "",
    role: Text = "",
    vip: Text = "",
    phone: Text = "",
) -> Response:
    """Put a person on file."""
    values = {"name": name, "emails": emails, "role": role, "vip": vip, "phone": phone}
    result = attempt(
        session,
        lambda: service.create_person(
            session,
            name=name,
            emails=split_items(emails),
            role=role,
            vip=bool(vip),
            phone=phone,
            actor=auth.user.actor,
        ),
    )
    if isinstance(result, AppError):
        return _refused(request, session, "people", "person-add", result, values)
    changed(request, session)
    return redirect(f"{BASE}/people/{result.id}?done=person_added")


@router.post("/directory/vendors")
def vendor_add(
    request: Request, session: DbSession, auth: AdminCsrf, name: Text = "", domains: LongText = ""
) -> Response:
    """Put a vendor on file; its contacts and accounts are added on its page."""
    values = {"name": name, "domains": domains}
    result = attempt(
        session,
        lambda: service.create_vendor(
            session,
            name=name,
            domains=split_items(domains),
            key=fingerprint_key(request),
            actor=auth.user.actor,
        ),
    )
    if isinstance(result, AppError):
        return _refused(request, session, "vendors", "vendor-add", result, values)
    changed(request, session)
    return redirect(f"{BASE}/vendors/{result.id}?done=vendor_added")


@router.get("/directory/people/{person_id}")
def person_page(
    person_id: str, request: Request, session: DbSession, auth: AdminAuth, done: Done = ""
) -> Response:
    """One person: the edit form, their known-good number with its provenance."""
    pid = parse_id(person_id, "person")
    viewed(session, auth, f"person {pid}")
    return _person_page(request, session, pid, notice=notice_for(done))


@router.post("/directory/people/{person_id}")
def person_save(
    person_id: str,
    request: Request,
    session: DbSession,
    auth: AdminCsrf,
    name: Text = "",
    emails: LongText = "",
    role: Text = "",
    vip: Text = "",
    phone: Text = "",
) -> Response:
    """Change a person (a new phone number is on file from now)."""
    pid = parse_id(person_id, "person")
    values = {"name": name, "emails": emails, "role": role, "vip": vip, "phone": phone}

    def save() -> object:
        changes = patch(
            PersonPatch,
            name=name,
            emails=split_items(emails),
            role=role,
            vip=bool(vip),
            phone=phone,
        )
        return service.update_person(session, person_id=pid, changes=changes, actor=auth.user.actor)

    result = attempt(session, save)
    if isinstance(result, AppError):
        state = FormState("person-edit", result.detail, values)
        return _person_page(request, session, pid, state=state, status_code=result.status_code)
    changed(request, session)
    return redirect(f"{BASE}/people/{pid}?done=person_saved")


# --- the organisation ----------------------------------------------------------------------------


@router.post("/directory/org-domains")
def org_domain_add(
    request: Request, session: DbSession, auth: AdminCsrf, domain: Text = ""
) -> Response:
    """Add a domain the organisation sends from."""
    result = attempt(
        session,
        lambda: service.add_org_domain(
            session, domain=domain, actor=auth.user.actor, exist_ok=False
        ),
    )
    if isinstance(result, AppError):
        return _refused(request, session, "organisation", "domain-add", result, {"domain": domain})
    changed(request, session)
    return redirect(f"{BASE}?tab=organisation&done=domain_added")


def _org_contact_page(
    request: Request,
    session: Session,
    contact_id: uuid.UUID,
    *,
    state: FormState | None = None,
    notice: str = "",
    status_code: int = 200,
) -> Response:
    contact = service.get_org_contact(session, contact_id)
    return render(
        request,
        "directory_org_contact.html",
        {
            "nav": "directory",
            "contact": contact,
            "purposes": PURPOSES,
            "state": state or FormState(),
            "notice": notice,
        },
        status_code=status_code,
    )


@router.post("/directory/org-contacts")
def org_contact_add(
    request: Request,
    session: DbSession,
    auth: AdminCsrf,
    purpose: Text = "general",
    name: Text = "",
    phone: Text = "",
    email: Text = "",
    note: LongText = "",
) -> Response:
    """Add an organisation contact (IT help desk, data owner, finance) used by playbooks."""
    values = {"purpose": purpose, "name": name, "phone": phone, "email": email, "note": note}
    result = attempt(
        session,
        lambda: service.add_org_contact(
            session,
            purpose=purpose,
            name=name,
            phone=phone,
            email=email,
            note=note,
            actor=auth.user.actor,
            exist_ok=False,
        ),
    )
    if isinstance(result, AppError):
        return _refused(request, session, "organisation", "org-contact-add", result, values)
    changed(request, session)
    return redirect(f"{BASE}?tab=organisation&done=org_contact_added")


@router.get("/directory/org-contacts/{contact_id}")
def org_contact_page(
    contact_id: str, request: Request, session: DbSession, auth: AdminAuth, done: Done = ""
) -> Response:
    """One organisation contact: the edit form and its provenance."""
    cid = parse_id(contact_id, "contact")
    viewed(session, auth, f"org contact {cid}")
    return _org_contact_page(request, session, cid, notice=notice_for(done))


@router.post("/directory/org-contacts/{contact_id}")
def org_contact_save(
    contact_id: str,
    request: Request,
    session: DbSession,
    auth: AdminCsrf,
    purpose: Text = "general",
    name: Text = "",
    phone: Text = "",
    email: Text = "",
    note: LongText = "",
) -> Response:
    """Change an organisation contact (a new number, address or purpose is on file from now)."""
    cid = parse_id(contact_id, "contact")
    values = {"purpose": purpose, "name": name, "phone": phone, "email": email, "note": note}

    def save() -> object:
        changes = patch(
            OrgContactPatch, purpose=purpose, name=name, phone=phone, email=email, note=note
        )
        return service.update_org_contact(
            session, contact_id=cid, changes=changes, actor=auth.user.actor
        )

    result = attempt(session, save)
    if isinstance(result, AppError):
        state = FormState("org-contact-edit", result.detail, values)
        return _org_contact_page(request, session, cid, state=state, status_code=result.status_code)
    changed(request, session)
    return redirect(f"{BASE}/org-contacts/{cid}?done=org_contact_saved")
