"""Verification playbooks: what to confirm, with whom, on which known-good channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.detect.intents import Intent
from app.directory import service as directory
from app.directory.service import KnownContact
from app.mail.schemas import Email

STEPS: dict[str, list[str]] = {
    Intent.PAYMENT_CHANGE: [
        "Do not change any payment details and do not reply to the email.",
        "Call the vendor on the known-good number on file below (never a number from the email).",
        "Ask them to state the new bank details themselves; compare with the email's "
        "(last four digits shown below). Do not read the details out to them.",
        "Record the outcome with the verification link; only then may AP update the vendor.",
    ],
    Intent.CREDENTIAL_REQUEST: [
        "Do not click the link, open the attachment or reply with any password or code.",
        "Contact IT on its known channel below and describe the request.",
        "If anyone entered credentials, IT resets them and revokes sessions now.",
        "Record the outcome with the verification link.",
    ],
    Intent.URGENT_TRANSFER: [
        "Do not send or approve any payment yet, however urgent the email says it is.",
        "Call the person who supposedly asked, on their directory number below.",
        "Confirm the amount, beneficiary and reason; secrecy or pressure is a warning sign.",
        "Record the outcome with the verification link; the normal approval process still applies.",
    ],
    Intent.GIFT_CARD: [
        "Do not buy gift cards or send any codes.",
        "Call the person who supposedly asked, on their directory number below.",
        "Record the outcome with the verification link.",
    ],
    Intent.DATA_REQUEST: [
        "Do not send the requested data.",
        "Get the data owner's approval on a known channel (below) and confirm the requester "
        "by calling them on a directory number.",
        "Record the outcome with the verification link.",
    ],
}


def _dedupe(contacts: list[KnownContact]) -> list[KnownContact]:
    seen: set[tuple[str, str]] = set()
    out = []
    for c in contacts:
        if (c.phone, c.email) not in seen:
            seen.add((c.phone, c.email))
            out.append(c)
    return out


def _imitated_vendor(session: Session, email: Email) -> tuple[Any, str | None]:
    """The directory vendor whose domain the sender or reply-to domain imitates, if any."""
    from sqlalchemy import select

    from app.detect.signals import lookalike_of
    from app.directory.models import Vendor

    domains = [d for row in session.scalars(select(Vendor.domains)) for d in row]
    if not domains:
        return None, None
    for address in (email.sender, email.reply_to):
        if address is None or not address.domain:
            continue
        target = lookalike_of(address.domain, domains)
        if target:
            return directory.find_vendor(session, target), target
    return None, None


def build_playbook(
    session: Session,
    *,
    intent: str,
    email: Email,
    impersonated: str | None,
    received_at: datetime,
) -> dict[str, Any]:
    """The playbook for one ticket: steps and the known-good contacts with their provenance."""
    sender = email.sender
    contacts: list[KnownContact] = []
    vendor = directory.find_vendor(session, sender.domain) if sender else None
    imitated = None
    if vendor is None:
        # A look-alike of a vendor's domain (sender or reply-to): the people to call are the
        # real vendor's, on the numbers on file.
        vendor, imitated = _imitated_vendor(session, email)
    person = directory.find_person(session, address=sender.address) if sender else None
    if impersonated and person is None:
        person = directory.find_person(session, name=impersonated)
    if intent == Intent.PAYMENT_CHANGE:
        if vendor:
            contacts += directory.vendor_contacts(session, vendor, received_at)
        if person:
            contacts += directory.person_contacts(session, person, received_at)
        contacts += directory.org_contacts(session, "finance", received_at)
    elif intent == Intent.CREDENTIAL_REQUEST:
        contacts += directory.org_contacts(session, "it_helpdesk", received_at)
    elif intent in (Intent.URGENT_TRANSFER, Intent.GIFT_CARD):
        if person:
            contacts += directory.person_contacts(session, person, received_at)
        if vendor:
            contacts += directory.vendor_contacts(session, vendor, received_at)
        contacts += directory.org_contacts(session, "finance", received_at)
    elif intent == Intent.DATA_REQUEST:
        contacts += directory.org_contacts(session, "data_owner", received_at)
        if person:
            contacts += directory.person_contacts(session, person, received_at)
    contacts = _dedupe(contacts)
    trusted = [c for c in contacts if c.on_file_before_email]
    note = ""
    if not contacts:
        note = (
            "No known-good contact on file: find one through an independent source (a contract, "
            "an earlier invoice, the official website) and add it to the directory."
        )
    elif not trusted:
        note = "Every contact on file was added after this email arrived: confirm it independently."
    if imitated:
        note = (
            f"The sender's domain imitates {imitated}: call {vendor.name if vendor else imitated} "
            "on the number on file, never on details from this email. " + note
        ).strip()
    return {
        "intent": intent,
        "steps": STEPS.get(intent, []),
        "known_good_contacts": [c.to_json() for c in contacts],
        "note": note,
        "counterparty": {
            "vendor": vendor.name if vendor else None,
            "person": person.name if person else None,
        },
    }
