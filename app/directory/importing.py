"""Directory import: JSON, YAML and CSV files read, entries added or updated, and clearing."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

import yaml
from sqlalchemy import and_, delete, func, select
from sqlalchemy.orm import Session

from app.core.errors import InvalidInput
from app.directory.contact_edits import add_org_contact, add_org_domain
from app.directory.edits import _audit, upsert_person, upsert_vendor
from app.directory.models import AccountOnFile, Contact, OrgDomain, Person, Vendor
from app.directory.normalise import MAX_IMPORT_ENTRIES, _entry
from app.directory.schemas import MAX_ITEMS


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
