"""What the directory admin pages share: constants, the admin-and-CSRF guard, form state, and
running a change so that a refused one leaves nothing behind."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Form, Query, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.core.errors import AppError, InvalidInput, NotFound
from app.core.models import AuditLog
from app.dashboard.auth import Auth, CsrfAuth
from app.dashboard.exceptions import Forbidden
from app.directory.exceptions import Conflict

BASE = "/dashboard/directory"
PAGE_SIZE = 50
TABS = ("vendors", "people", "organisation")
MAX_IMPORT_BYTES = 2 * 1024 * 1024
IMPORT_EXTENSIONS = (".csv", ".json", ".yaml", ".yml")
IMPORT_KINDS = {
    "org_domains": "Organisation domains",
    "org_contacts": "Organisation contacts",
    "people": "People",
    "vendors": "Vendors",
    "vendor_contacts": "Vendor contacts",
    "bank_accounts": "Bank accounts",
}
PURPOSES = {
    "it_helpdesk": "IT help desk",
    "data_owner": "Data owner",
    "finance": "Finance",
    "general": "General",
}
NOTICES = {
    "person_added": "Person added.",
    "person_saved": "Person saved.",
    "person_deleted": "Person deleted.",
    "vendor_added": "Vendor added: now add its known-good contacts and bank accounts.",
    "vendor_saved": "Vendor saved.",
    "vendor_deleted": "Vendor deleted with its contacts and bank accounts.",
    "contact_added": "Contact added: it is on file from now.",
    "contact_saved": "Contact saved.",
    "contact_deleted": "Contact deleted.",
    "account_added": "Bank account put on file (kept only as its last four characters).",
    "account_replaced": "Bank account replaced: the new number is on file from now.",
    "account_deleted": "Bank account deleted.",
    "domain_added": "Organisation domain added.",
    "domain_deleted": "Organisation domain deleted.",
    "org_contact_added": "Organisation contact added.",
    "org_contact_saved": "Organisation contact saved.",
    "org_contact_deleted": "Organisation contact deleted.",
    "imported": "Import finished.",
}

Text = Annotated[str, Form(max_length=2000)]
LongText = Annotated[str, Form(max_length=20_000)]
Done = Annotated[str, Query(max_length=40)]
T = TypeVar("T")


def require_admin_csrf(auth: CsrfAuth) -> Auth:
    """A signed-in admin whose form carries this session's CSRF token (403 otherwise)."""
    if not auth.user.is_admin:
        raise Forbidden("this page is for admins")
    return auth


AdminCsrf = Annotated[Auth, Depends(require_admin_csrf)]


@dataclass(slots=True)
class FormState:
    """The form that was refused, why, and what was typed into it."""

    form: str = ""
    error: str = ""
    values: dict[str, str] = field(default_factory=dict)

    def value(self, form: str, name: str, default: str = "") -> str:
        """What was typed into `name` if `form` is the refused form, else `default`."""
        return self.values.get(name, default) if form == self.form else default

    def error_of(self, form: str) -> str:
        """The error to show beside `form` ('' for every other form)."""
        return self.error if form == self.form else ""


def attempt(session: Session, action: Callable[[], T]) -> T | AppError:
    """Run one change in a savepoint: a refused change (invalid, conflict) leaves nothing behind."""
    try:
        with session.begin_nested():
            return action()
    except (InvalidInput, Conflict) as exc:
        return exc


def changed(request: Request, session: Session) -> None:
    """Refresh detection's directory snapshot once this request's transaction has committed."""
    cache = getattr(request.app.state, "directory_cache", None)
    if cache is not None:
        event.listen(session, "after_commit", lambda _session: cache.invalidate(), once=True)


def fingerprint_key(request: Request) -> bytes:
    """The key of the keyed fingerprints of account numbers."""
    return str(request.app.state.settings.fingerprint_key.get_secret_value()).encode()


def split_items(text: str) -> list[str]:
    """Addresses or domains typed one per line or separated by commas, semicolons or spaces."""
    return [part for part in re.split(r"[\s,;]+", text) if part]


def parse_id(raw: str, what: str) -> uuid.UUID:
    """An id from a URL (404 for anything that is not one)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound(f"no {what} {raw[:40]!r}") from None


M = TypeVar("M", bound=BaseModel)


def patch(model: type[M], **values: Any) -> M:
    """A patch schema from form values; its limits become InvalidInput shown in the form."""
    try:
        return model(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = " ".join(str(p) for p in first.get("loc", ()) if isinstance(p, str))
        raise InvalidInput(f"{where}: {first.get('msg', 'invalid')}".strip(": ")) from None


def notice_for(done: str) -> str:
    """The notice for a `?done=` key (unknown keys show nothing)."""
    return NOTICES.get(done, "")


def viewed(session: Session, auth: Auth, target: str) -> None:
    """Log that the admin viewed directory entries (they hold personal phone numbers)."""
    session.add(AuditLog(actor=auth.user.actor, action="directory.view", target=target[:200]))
