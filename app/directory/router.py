"""Directory API: the organisation's domains and contacts, people, vendors, imports (admins)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import event
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from app.core.config import Settings
from app.core.deps import DbSession
from app.core.errors import InvalidInput, PayloadTooLarge, ServiceUnavailable, UnsupportedMediaType
from app.core.http import read_body, refuse_declared_oversize
from app.core.models import AuditLog
from app.directory import service
from app.directory.schemas import (
    AccountIn,
    AccountRead,
    ContactIn,
    ContactPatch,
    ContactRead,
    DirectoryRead,
    ImportResult,
    OrgContactIn,
    OrgContactPatch,
    OrgDomainIn,
    OrgDomainRead,
    OrgPurpose,
    PersonIn,
    PersonList,
    PersonPatch,
    PersonRead,
    VendorIn,
    VendorList,
    VendorPatch,
    VendorRead,
)

router = APIRouter(prefix="/v1/directory", tags=["directory"])

IMPORT_TYPES = {
    "application/json": ".json",
    "application/yaml": ".yaml",
    "application/x-yaml": ".yaml",
    "text/yaml": ".yaml",
    "text/x-yaml": ".yaml",
    "text/csv": ".csv",
}
IMPORT_EXTENSIONS = (".json", ".yaml", ".yml", ".csv")
IMPORT_BODY_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "description": "The directory file format (README): a JSON or YAML body, a CSV body, or "
        "a multipart upload with the file in the `file` field (.json, .yaml, .yml or .csv).",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Search = Annotated[str | None, Query(max_length=200)]


def _actor(request: Request) -> str:
    return str(getattr(request.state, "actor", "") or "api")


def _settings(request: Request) -> Settings:
    settings = getattr(request.app.state, "settings", None)
    if settings is None:
        raise ServiceUnavailable("settings not configured")
    return settings


def _key(request: Request) -> bytes:
    return _settings(request).fingerprint_key.get_secret_value().encode()


def _changed(request: Request, session: Session) -> None:
    """Refresh the detection snapshot once this request's transaction has committed.

    Invalidating before the commit would let a concurrent reload cache the old directory for a
    whole TTL; other processes pick the change up within their cache's TTL.
    """
    cache = getattr(request.app.state, "directory_cache", None)
    if cache is not None:
        event.listen(session, "after_commit", lambda _session: cache.invalidate(), once=True)


# --- everything ---------------------------------------------------------------------------------


@router.get("", response_model=DirectoryRead)
def read_directory(session: DbSession, request: Request) -> DirectoryRead:
    """Everything on file with provenance; bank accounts only as kind and last four."""
    listing = service.read_directory(session)
    session.add(AuditLog(actor=_actor(request), action="directory.view", target="all"))
    return listing


@router.post(
    "/import",
    response_model=ImportResult,
    openapi_extra=IMPORT_BODY_OPENAPI,
    responses={413: {"description": "body over the limit"}, 415: {"description": "other type"}},
)
async def import_directory(request: Request, session: DbSession) -> ImportResult:
    """Add or update entries from a directory file; nothing is removed, so re-importing is safe."""
    limit = _settings(request).max_body_bytes
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype == "multipart/form-data":
        name, content = await _uploaded_file(request, limit)
    elif ctype in IMPORT_TYPES:
        name, content = "body" + IMPORT_TYPES[ctype], await read_body(request, limit)
    else:
        raise UnsupportedMediaType(
            f"unsupported content type {ctype!r}: send JSON, YAML or CSV, or upload a file"
        )
    data = await run_in_threadpool(service.parse_directory_file, name, content)
    counts = await run_in_threadpool(
        service.import_directory, session, data, key=_key(request), actor=_actor(request)
    )
    _changed(request, session)
    return ImportResult.of(counts)


async def _uploaded_file(request: Request, limit: int) -> tuple[str, bytes]:
    """The file of a multipart upload (field `file`), refusing more than `limit` bytes."""
    refuse_declared_oversize(request, limit)
    async with request.form(max_files=1, max_fields=4) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("upload the directory file in the `file` field")
        name = upload.filename or ""
        if not name.lower().endswith(IMPORT_EXTENSIONS):
            raise UnsupportedMediaType("the file must be .json, .yaml, .yml or .csv")
        content = await upload.read(limit + 1)
    if len(content) > limit:
        raise PayloadTooLarge(f"file is larger than {limit} bytes")
    return name, content


# --- people -------------------------------------------------------------------------------------


@router.get("/people", response_model=PersonList)
def list_people(
    session: DbSession, q: Search = None, limit: Limit = 50, offset: Offset = 0
) -> PersonList:
    """People by name; `q` matches name, role or address."""
    rows, total = service.list_people(session, q=q, limit=limit, offset=offset)
    return PersonList(
        items=service.describe_people(session, rows), total=total, limit=limit, offset=offset
    )


@router.post("/people", response_model=PersonRead, status_code=201)
def create_person(body: PersonIn, session: DbSession, request: Request) -> PersonRead:
    """Put a person on file (409 when an address is on file for someone else)."""
    person = service.create_person(session, **body.model_dump(), actor=_actor(request))
    _changed(request, session)
    return service.describe_people(session, [person])[0]


@router.get("/people/{person_id}", response_model=PersonRead)
def get_person(person_id: uuid.UUID, session: DbSession) -> PersonRead:
    """One person with their contacts."""
    return service.describe_people(session, [service.get_person(session, person_id)])[0]


@router.patch("/people/{person_id}", response_model=PersonRead)
def update_person(
    person_id: uuid.UUID, body: PersonPatch, session: DbSession, request: Request
) -> PersonRead:
    """Change a person; a new phone number replaces the one on file and is on file from now."""
    person = service.update_person(
        session, person_id=person_id, changes=body, actor=_actor(request)
    )
    _changed(request, session)
    return service.describe_people(session, [person])[0]


@router.delete("/people/{person_id}", status_code=204, response_class=Response)
def delete_person(person_id: uuid.UUID, session: DbSession, request: Request) -> Response:
    """Remove a person and their contacts."""
    service.delete_person(session, person_id=person_id, actor=_actor(request))
    _changed(request, session)
    return Response(status_code=204)


# --- vendors ------------------------------------------------------------------------------------


@router.get("/vendors", response_model=VendorList)
def list_vendors(
    session: DbSession, q: Search = None, limit: Limit = 50, offset: Offset = 0
) -> VendorList:
    """Vendors by name; `q` matches name or domain."""
    rows, total = service.list_vendors(session, q=q, limit=limit, offset=offset)
    return VendorList(
        items=service.describe_vendors(session, rows), total=total, limit=limit, offset=offset
    )


@router.post("/vendors", response_model=VendorRead, status_code=201)
def create_vendor(body: VendorIn, session: DbSession, request: Request) -> VendorRead:
    """Put a vendor on file with contacts and bank accounts (409 for a taken name or domain)."""
    vendor = service.create_vendor(
        session,
        name=body.name,
        domains=body.domains,
        contacts=[c.model_dump() for c in body.contacts],
        bank_accounts=[a.number for a in body.bank_accounts],
        key=_key(request),
        actor=_actor(request),
    )
    _changed(request, session)
    return service.describe_vendors(session, [vendor])[0]


@router.get("/vendors/{vendor_id}", response_model=VendorRead)
def get_vendor(vendor_id: uuid.UUID, session: DbSession) -> VendorRead:
    """One vendor with its contacts and masked bank accounts."""
    return service.describe_vendors(session, [service.get_vendor(session, vendor_id)])[0]


@router.patch("/vendors/{vendor_id}", response_model=VendorRead)
def update_vendor(
    vendor_id: uuid.UUID, body: VendorPatch, session: DbSession, request: Request
) -> VendorRead:
    """Rename a vendor or replace its domains."""
    vendor = service.update_vendor(
        session, vendor_id=vendor_id, changes=body, actor=_actor(request)
    )
    _changed(request, session)
    return service.describe_vendors(session, [vendor])[0]


@router.delete("/vendors/{vendor_id}", status_code=204, response_class=Response)
def delete_vendor(vendor_id: uuid.UUID, session: DbSession, request: Request) -> Response:
    """Remove a vendor with its contacts and bank accounts."""
    service.delete_vendor(session, vendor_id=vendor_id, actor=_actor(request))
    _changed(request, session)
    return Response(status_code=204)


@router.get("/vendors/{vendor_id}/contacts", response_model=list[ContactRead])
def list_vendor_contacts(vendor_id: uuid.UUID, session: DbSession) -> list[ContactRead]:
    """A vendor's known-good contacts, oldest first."""
    return [ContactRead.of(c) for c in service.list_vendor_contacts(session, vendor_id)]


@router.post("/vendors/{vendor_id}/contacts", response_model=ContactRead, status_code=201)
def add_vendor_contact(
    vendor_id: uuid.UUID, body: ContactIn, session: DbSession, request: Request
) -> ContactRead:
    """Add a known-good contact to a vendor."""
    contact = service.add_vendor_contact(
        session, vendor_id=vendor_id, **body.model_dump(), actor=_actor(request)
    )
    _changed(request, session)
    return ContactRead.of(contact)


@router.patch("/vendors/{vendor_id}/contacts/{contact_id}", response_model=ContactRead)
def update_vendor_contact(
    vendor_id: uuid.UUID,
    contact_id: uuid.UUID,
    body: ContactPatch,
    session: DbSession,
    request: Request,
) -> ContactRead:
    """Change a vendor's contact; a new number or address is on file from now."""
    contact = service.update_vendor_contact(
        session, vendor_id=vendor_id, contact_id=contact_id, changes=body, actor=_actor(request)
    )
    _changed(request, session)
    return ContactRead.of(contact)


@router.delete(
    "/vendors/{vendor_id}/contacts/{contact_id}", status_code=204, response_class=Response
)
def delete_vendor_contact(
    vendor_id: uuid.UUID, contact_id: uuid.UUID, session: DbSession, request: Request
) -> Response:
    """Remove a vendor's contact."""
    service.delete_vendor_contact(
        session, vendor_id=vendor_id, contact_id=contact_id, actor=_actor(request)
    )
    _changed(request, session)
    return Response(status_code=204)


@router.get("/vendors/{vendor_id}/accounts", response_model=list[AccountRead])
def list_vendor_accounts(vendor_id: uuid.UUID, session: DbSession) -> list[AccountRead]:
    """A vendor's bank accounts on file, masked."""
    return [AccountRead.of(a) for a in service.list_vendor_accounts(session, vendor_id)]


@router.post("/vendors/{vendor_id}/accounts", response_model=AccountRead, status_code=201)
def add_vendor_account(
    vendor_id: uuid.UUID, body: AccountIn, session: DbSession, request: Request
) -> AccountRead:
    """Put a bank account on file: the number is kept only as kind, last four and fingerprint."""
    account = service.add_vendor_account(
        session, vendor_id=vendor_id, number=body.number, key=_key(request), actor=_actor(request)
    )
    _changed(request, session)
    return AccountRead.of(account)


@router.patch("/vendors/{vendor_id}/accounts/{account_id}", response_model=AccountRead)
def update_vendor_account(
    vendor_id: uuid.UUID,
    account_id: uuid.UUID,
    body: AccountIn,
    session: DbSession,
    request: Request,
) -> AccountRead:
    """Replace an account's number; the new number is on file from now."""
    account = service.update_vendor_account(
        session,
        vendor_id=vendor_id,
        account_id=account_id,
        number=body.number,
        key=_key(request),
        actor=_actor(request),
    )
    _changed(request, session)
    return AccountRead.of(account)


@router.delete(
    "/vendors/{vendor_id}/accounts/{account_id}", status_code=204, response_class=Response
)
def delete_vendor_account(
    vendor_id: uuid.UUID, account_id: uuid.UUID, session: DbSession, request: Request
) -> Response:
    """Remove a vendor's bank account."""
    service.delete_vendor_account(
        session, vendor_id=vendor_id, account_id=account_id, actor=_actor(request)
    )
    _changed(request, session)
    return Response(status_code=204)


# --- the organisation ---------------------------------------------------------------------------


@router.get("/org-domains", response_model=list[OrgDomainRead])
def list_org_domains(session: DbSession) -> list[OrgDomainRead]:
    """The domains the organisation sends from."""
    return [OrgDomainRead.of(d) for d in service.list_org_domains(session)]


@router.post("/org-domains", response_model=OrgDomainRead, status_code=201)
def add_org_domain(body: OrgDomainIn, session: DbSession, request: Request) -> OrgDomainRead:
    """Add an organisation domain (409 when it is on file)."""
    row = service.add_org_domain(session, domain=body.domain, actor=_actor(request), exist_ok=False)
    _changed(request, session)
    return OrgDomainRead.of(row)


@router.delete("/org-domains/{domain}", status_code=204, response_class=Response)
def delete_org_domain(domain: str, session: DbSession, request: Request) -> Response:
    """Remove an organisation domain."""
    service.delete_org_domain(session, domain=domain, actor=_actor(request))
    _changed(request, session)
    return Response(status_code=204)


@router.get("/org-contacts", response_model=list[ContactRead])
def list_org_contacts(session: DbSession, purpose: OrgPurpose | None = None) -> list[ContactRead]:
    """The organisation's contacts (IT help desk, data owner, finance, general)."""
    return service.list_org_contacts(session, purpose=purpose)


@router.post("/org-contacts", response_model=ContactRead, status_code=201)
def add_org_contact(body: OrgContactIn, session: DbSession, request: Request) -> ContactRead:
    """Add an organisation contact (409 when the same one is on file for that purpose)."""
    contact = service.add_org_contact(
        session, **body.model_dump(), actor=_actor(request), exist_ok=False
    )
    _changed(request, session)
    return ContactRead.of(contact)


@router.get("/org-contacts/{contact_id}", response_model=ContactRead)
def get_org_contact(contact_id: uuid.UUID, session: DbSession) -> ContactRead:
    """One organisation contact."""
    return ContactRead.of(service.get_org_contact(session, contact_id))


@router.patch("/org-contacts/{contact_id}", response_model=ContactRead)
def update_org_contact(
    contact_id: uuid.UUID, body: OrgContactPatch, session: DbSession, request: Request
) -> ContactRead:
    """Change an organisation contact; a new number, address or purpose is on file from now."""
    contact = service.update_org_contact(
        session, contact_id=contact_id, changes=body, actor=_actor(request)
    )
    _changed(request, session)
    return ContactRead.of(contact)


@router.delete("/org-contacts/{contact_id}", status_code=204, response_class=Response)
def delete_org_contact(contact_id: uuid.UUID, session: DbSession, request: Request) -> Response:
    """Remove an organisation contact."""
    service.delete_org_contact(session, contact_id=contact_id, actor=_actor(request))
    _changed(request, session)
    return Response(status_code=204)
