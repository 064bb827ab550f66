"""Directory API shapes: input limits here, meaning (normalisation, duplicates) in the service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.directory.models import AccountOnFile, Contact, OrgDomain, Person, Vendor

MAX_NAME = 200
MAX_ITEMS = 20
MAX_NOTE = 2000
MAX_PHONE = 40
MAX_EMAIL = 320
MAX_DOMAIN = 253
MAX_ACCOUNT = 64

OrgPurpose = Literal["it_helpdesk", "data_owner", "finance", "general"]

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_NAME)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_NOTE)]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_PHONE)]
EmailText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_EMAIL)]
DomainText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_DOMAIN)
]
AccountNumber = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=4, max_length=MAX_ACCOUNT)
]


class _In(BaseModel):
    """Request bodies refuse unknown fields, so a typo ("phone_number") is a 422, not a no-op."""

    model_config = ConfigDict(extra="forbid")


# --- input ---------------------------------------------------------------------------------------


class PersonIn(_In):
    """A person to put on file; `phone` is their known-good number."""

    name: Name
    emails: list[EmailText] = Field(default_factory=list, max_length=MAX_ITEMS)
    role: ShortText = ""
    vip: bool = False
    phone: Phone = ""


class PersonPatch(_In):
    """Changes to a person; omitted fields stay as they are, `phone: ""` removes the number."""

    name: Name | None = None
    emails: list[EmailText] | None = Field(default=None, max_length=MAX_ITEMS)
    role: ShortText | None = None
    vip: bool | None = None
    phone: Phone | None = None


class ContactIn(_In):
    """A known-good way to reach someone: a phone number, an address, or both."""

    name: ShortText = ""
    phone: Phone = ""
    email: EmailText = ""
    note: Note = ""

    @model_validator(mode="after")
    def _reachable(self) -> ContactIn:
        if not self.phone and not self.email:
            raise ValueError("a contact needs a phone number or an email address")
        return self


class ContactPatch(_In):
    """Changes to a contact; a new phone or address puts it on file again (fresh provenance)."""

    name: ShortText | None = None
    phone: Phone | None = None
    email: EmailText | None = None
    note: Note | None = None


class OrgContactIn(ContactIn):
    """One of the organisation's own contacts, used by the verification playbooks."""

    purpose: OrgPurpose = "general"


class OrgContactPatch(ContactPatch):
    """Changes to an organisation contact."""

    purpose: OrgPurpose | None = None


class AccountIn(_In):
    """A bank account as typed (IBAN or account number); only kind, last four and a keyed
    fingerprint are stored."""

    number: AccountNumber


class VendorIn(_In):
    """A supplier or partner with its domains, known-good contacts and bank accounts."""

    name: Name
    domains: list[DomainText] = Field(default_factory=list, max_length=MAX_ITEMS)
    contacts: list[ContactIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    bank_accounts: list[AccountIn] = Field(default_factory=list, max_length=MAX_ITEMS)


class VendorPatch(_In):
    """Changes to a vendor; `domains` replaces the list."""

    name: Name | None = None
    domains: list[DomainText] | None = Field(default=None, max_length=MAX_ITEMS)


class OrgDomainIn(_In):
    """A domain the organisation sends from."""

    domain: DomainText


# --- output --------------------------------------------------------------------------------------


class ContactRead(BaseModel):
    """A contact with its provenance: when and by whom it was put on file."""

    id: uuid.UUID
    name: str
    purpose: str
    phone: str
    email: str
    note: str
    added_at: datetime
    added_by: str

    @classmethod
    def of(cls, row: Contact) -> ContactRead:
        """From a row."""
        return cls(
            id=row.id,
            name=row.name,
            purpose=row.purpose,
            phone=row.phone,
            email=row.email,
            note=row.note,
            added_at=row.created_at,
            added_by=row.added_by,
        )


class AccountRead(BaseModel):
    """A bank account on file, masked: kind and last four only (never the fingerprint)."""

    id: uuid.UUID
    kind: str
    last4: str
    masked: str
    added_at: datetime
    added_by: str

    @classmethod
    def of(cls, row: AccountOnFile) -> AccountRead:
        """From a row."""
        return cls(
            id=row.id,
            kind=row.kind,
            last4=row.last4,
            masked=f"{row.kind} ending {row.last4}",
            added_at=row.created_at,
            added_by=row.added_by,
        )


class PersonRead(BaseModel):
    """A person with provenance; `phone` is the known-good number (the longest on file)."""

    id: uuid.UUID
    name: str
    emails: list[str]
    role: str
    vip: bool
    phone: str
    contacts: list[ContactRead]
    added_at: datetime
    added_by: str
    updated_at: datetime

    @classmethod
    def of(cls, row: Person, contacts: list[Contact]) -> PersonRead:
        """From a row and its contacts, oldest first."""
        return cls(
            id=row.id,
            name=row.name,
            emails=list(row.emails),
            role=row.role,
            vip=row.vip,
            phone=next((c.phone for c in contacts if c.phone), ""),
            contacts=[ContactRead.of(c) for c in contacts],
            added_at=row.created_at,
            added_by=row.added_by,
            updated_at=row.updated_at,
        )


class VendorRead(BaseModel):
    """A vendor with its contacts and masked bank accounts, each with provenance."""

    id: uuid.UUID
    name: str
    domains: list[str]
    contacts: list[ContactRead]
    bank_accounts: list[AccountRead]
    added_at: datetime
    added_by: str
    updated_at: datetime

    @classmethod
    def of(cls, row: Vendor, contacts: list[Contact], accounts: list[AccountOnFile]) -> VendorRead:
        """From a row, its contacts and its accounts."""
        return cls(
            id=row.id,
            name=row.name,
            domains=list(row.domains),
            contacts=[ContactRead.of(c) for c in contacts],
            bank_accounts=[AccountRead.of(a) for a in accounts],
            added_at=row.created_at,
            added_by=row.added_by,
            updated_at=row.updated_at,
        )


class OrgDomainRead(BaseModel):
    """An organisation domain with its provenance."""

    domain: str
    added_at: datetime
    added_by: str

    @classmethod
    def of(cls, row: OrgDomain) -> OrgDomainRead:
        """From a row."""
        return cls(domain=row.domain, added_at=row.added_at, added_by=row.added_by)


class DirectoryRead(BaseModel):
    """Everything on file, with provenance."""

    org_domains: list[OrgDomainRead]
    org_contacts: list[ContactRead]
    people: list[PersonRead]
    vendors: list[VendorRead]


class PersonList(BaseModel):
    """A page of people."""

    items: list[PersonRead]
    total: int
    limit: int
    offset: int


class VendorList(BaseModel):
    """A page of vendors."""

    items: list[VendorRead]
    total: int
    limit: int
    offset: int


class ImportResult(BaseModel):
    """Entries read from the file, and how many rows of each kind were new."""

    org_domains: int
    org_contacts: int
    people: int
    vendors: int
    vendor_contacts: int
    bank_accounts: int
    added: dict[str, int]

    @classmethod
    def of(cls, counts: dict[str, Any]) -> ImportResult:
        """From the counts `import_directory` returns."""
        return cls.model_validate(counts)
