"""Ingest use cases: store a message once, learn sender history, open or attach its ticket."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.core.db import utcnow
from app.detect.directory import Directory
from app.detect.engine import Verdict
from app.detect.signals import FREEMAIL
from app.detect.signals import SenderHistory as HistoryView
from app.ingest.models import Message, SenderHistory
from app.mail.artifacts import Artifacts, mask_numbers, registered_domain
from app.mail.schemas import Email
from app.tickets import service as tickets
from app.tickets.playbooks import build_playbook
from app.verification.outbox import enqueue_notice

MAX_STORED_BODY = 200_000
_MSGID = re.compile(r"<[^<>\s]{1,500}>")


@dataclass(slots=True)
class IngestOptions:
    """Per-deployment choices for storing messages."""

    store_bodies: bool = True
    public_url: str = "http://127.0.0.1:8000"
    notifiers: tuple[str, ...] = ()


def thread_key_of(email: Email) -> str:
    """The thread's root Message-ID (References, else In-Reply-To, else this message), hashed."""
    refs = _MSGID.findall(email.headers.get("references", ""))
    reply_to = _MSGID.findall(email.headers.get("in-reply-to", ""))
    root = refs[0] if refs else (reply_to[0] if reply_to else email.message_id)
    return hashlib.sha256(root.strip().lower().encode()).hexdigest()[:40]


def counterparty_of(email: Email, directory: Directory) -> tuple[str, str]:
    """(key, name) of who is asking: a known vendor, else the sender's organisation or address."""
    sender = email.sender
    if sender is None or not sender.address:
        return "unknown", "unknown sender"
    reg = registered_domain(sender.domain) if sender.domain else ""
    vendor = directory.vendor_for_domain(reg) if reg else None
    if vendor is None and sender.domain:
        vendor = directory.vendor_for_domain(sender.domain)
    if vendor is not None:
        return f"vendor:{vendor.name.lower()}", vendor.name
    shown = f"{sender.name} <{sender.address}>" if sender.name else sender.address
    if not reg or reg in FREEMAIL:
        return sender.address, shown
    return reg, shown


def details_key_of(intent: str, artifacts: Artifacts) -> str:
    """A fingerprint of the new details the email supplies for this request ('' if none)."""
    parts = sorted({a.fingerprint for a in artifacts.accounts if a.kind in ("iban", "account")})
    if intent == "credential_request":
        parts += sorted({link.domain for link in artifacts.links if link.domain})
    if intent in ("urgent_transfer", "gift_card"):
        money = artifacts.largest_amount()
        if money is not None:
            parts.append(f"{money.currency}:{money.amount}")
    if not parts:
        return ""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


def masked_artifacts(artifacts: Artifacts | None) -> dict[str, Any]:
    """Artifacts as stored: account numbers only as kind, last four and keyed fingerprint."""
    if artifacts is None:
        return {}
    return {
        "accounts": [
            {
                "kind": a.kind,
                "last4": a.last4,
                "fingerprint": a.fingerprint,
                "valid": a.valid,
                "country": a.country,
            }
            for a in artifacts.accounts
        ],
        "phones": artifacts.phones[:20],
        "links": [{"url": link.defanged, "domain": link.domain} for link in artifacts.links[:20]],
        "amounts": [
            {"amount": str(m.amount), "currency": m.currency} for m in artifacts.amounts[:20]
        ],
    }


def history_of(session: Session, email: Email) -> HistoryView | None:
    """What the mail flow knows about the sender, for the first-contact signal."""
    if email.sender is None or not email.sender.address:
        return None
    row = session.get(SenderHistory, email.sender.address.lower())
    if row is None:
        return HistoryView(seen_before=0, written_to=False)
    return HistoryView(seen_before=row.inbound_count, written_to=row.outbound_count > 0)


def stored_response(session: Session, *, source: str, message_id: str) -> dict[str, Any] | None:
    """The response given when this message was first ingested, if it was."""
    row = session.execute(
        select(Message.verdict, Message.ticket_id).where(
            Message.source == source, Message.message_id == message_id
        )
    ).first()
    if row is None:
        return None
    response = dict(row[0])
    if row[1] is not None and response.get("ticket"):
        # The ticket may have moved on since: report its current status.
        ticket = tickets.get_ticket(session, row[1])
        response["ticket"] = {**response["ticket"], "status": ticket.status}
    return response


def _record_sender(session: Session, email: Email, now: datetime) -> None:
    if email.direction == "outbound":
        for rcpt in [*email.to, *email.cc][:100]:
            if not rcpt.address:
                continue
            stmt = insert(SenderHistory).values(
                address=rcpt.address.lower(),
                domain=rcpt.domain.lower(),
                outbound_count=1,
                last_written_at=now,
            )
            session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["address"],
                    set_={
                        "outbound_count": SenderHistory.outbound_count + 1,
                        "last_written_at": now,
                    },
                )
            )
        return
    if email.sender is None or not email.sender.address:
        return
    stmt = insert(SenderHistory).values(
        address=email.sender.address.lower(),
        domain=email.sender.domain.lower(),
        first_seen=now,
        last_seen=now,
        inbound_count=1,
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["address"],
            set_={
                "inbound_count": SenderHistory.inbound_count + 1,
                "last_seen": now,
                "first_seen": SenderHistory.first_seen,
            },
        )
    )


def _impersonated(verdict: Verdict) -> str | None:
    for s in verdict.signals:
        if s.name == "display_name_impersonation":
            m = re.search(r"the name of (.+?)(?: \(|\s+but)", s.detail)
            if m:
                return m.group(1)
    return None


def ticket_ref(ticket: Any, relation: str, public_url: str) -> dict[str, Any]:
    """The Verdict contract's ticket object."""
    return {
        "id": str(ticket.id),
        "number": ticket.number,
        "status": ticket.status,
        "url": f"{public_url.rstrip('/')}/dashboard/tickets/{ticket.number}",
        "relation": relation,
    }


def ingest_message(
    session: Session,
    *,
    source: str,
    email: Email,
    verdict: Verdict,
    directory: Directory,
    options: IngestOptions,
) -> tuple[dict[str, Any], bool]:
    """Store the message once per (source, Message-ID) and hand risky requests to tickets.

    Returns the response and whether this call created it; a duplicate (a retry, or a concurrent
    post that won the race) gets the first response.
    """
    now = utcnow()
    response = verdict.to_json()
    # Evidence sentences quote the email: account numbers in them are masked like the stored body.
    for intent in response["intents"]:
        intent["evidence"] = [mask_numbers(e) for e in intent["evidence"]]
    recipients = {
        "to": [a.address for a in email.to[:100]],
        "cc": [a.address for a in email.cc[:100]],
    }
    message_id = email.message_id[:998]
    thread_key = thread_key_of(email)
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "source": source,
        "message_id": message_id,
        "direction": email.direction,
        "received_at": now,
        "created_at": now,
        "sender_name": (email.sender.name if email.sender else "")[:500],
        "sender_address": (email.sender.address if email.sender else "")[:320],
        "sender_domain": (email.sender.domain if email.sender else "")[:255],
        "reply_to": email.reply_to.address[:320] if email.reply_to else None,
        "recipients": recipients,
        "subject": email.subject[:2000],
        "date_header": email.date.isoformat() if email.date else None,
        "thread_key": thread_key,
        "body": mask_numbers(email.newest[:MAX_STORED_BODY]) if options.store_bodies else None,
        "quoted": mask_numbers(email.quoted[:MAX_STORED_BODY]) if options.store_bodies else None,
        "body_purged_at": None if options.store_bodies else now,
        "raw_sha256": email.raw_sha256,
        "html_only": email.html_only,
        "auth": {"spf": email.auth.spf, "dkim": email.auth.dkim, "dmarc": email.auth.dmarc},
        "attachments": [
            {"filename": a.filename[:255], "content_type": a.content_type[:120], "size": a.size}
            for a in email.attachments[:50]
        ],
        "artifacts": masked_artifacts(verdict.artifacts),
        "verdict": response,
        "model_version": verdict.model_version,
        "action": verdict.action,
        "risk": verdict.risk,
        "needs_verification": verdict.needs_verification,
    }
    inserted = session.execute(
        insert(Message)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["source", "message_id"])
        .returning(Message.id)
    ).scalar()
    if inserted is None:
        # Postgres made this insert wait for the concurrent one, which has committed by now.
        first = stored_response(session, source=source, message_id=message_id)
        return (first or response), False
    _record_sender(session, email, now)
    if not verdict.needs_verification or email.direction != "inbound" or not verdict.intents:
        return response, True

    intent = verdict.intents[0].name
    artifacts = verdict.artifacts or Artifacts()
    counterparty, counterparty_name = counterparty_of(email, directory)
    keys = tickets.RequestKeys(
        intent=intent,
        counterparty=counterparty,
        details_key=details_key_of(intent, artifacts),
        thread_key=thread_key,
    )
    money = artifacts.largest_amount()
    amount = Decimal(money.amount).quantize(Decimal("0.01")) if money else None
    if amount is not None and amount >= Decimal("1e16"):
        amount = None
    impersonated = _impersonated(verdict)
    vip = bool(impersonated) and any(p.vip for p in directory.people if p.name == impersonated)
    draft = tickets.TicketDraft(
        keys=keys,
        severity=verdict.severity,
        risk=verdict.risk,
        counterparty_name=counterparty_name,
        subject=email.subject,
        summary=tickets.summary_for(
            intent, counterparty_name, amount, money.currency if money else None
        ),
        amount=amount,
        currency=money.currency if money else None,
        signals=[s.to_json() for s in verdict.signals],
        evidence=[
            {"intent": i["name"], "score": i["score"], "sentences": i["evidence"]}
            for i in response["intents"]
        ],
        playbook=build_playbook(
            session, intent=intent, email=email, impersonated=impersonated, received_at=now
        ),
        supplied_by_email=response.get("supplied_by_email", {}),
        model_version=verdict.model_version,
        vip=vip,
        received_at=now,
    )
    ticket, relation = tickets.open_or_attach_ticket(session, draft)
    if relation == "opened" and options.notifiers:
        enqueue_notice(session, ticket, kind="ticket_opened", notifiers=list(options.notifiers))
    response["ticket"] = ticket_ref(ticket, relation, options.public_url)
    session.execute(
        update(Message)
        .where(Message.id == inserted)
        .values(ticket_id=ticket.id, ticket_relation=relation, verdict=response)
    )
    return response, True


def purge_bodies(session: Session, *, older_than_days: int, now: datetime | None = None) -> int:
    """Drop message bodies past the retention period; tickets and their evidence stay."""
    cutoff = (now or utcnow()) - timedelta(days=older_than_days)
    result = session.execute(
        update(Message)
        .where(Message.received_at < cutoff, Message.body_purged_at.is_(None))
        .values(body=None, quoted=None, body_purged_at=now or utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)
