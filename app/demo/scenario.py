"""The demo's week of email, planned before any of it is ingested (no database here).

Two kinds of traffic, both for the sample organisation of `examples/directory.yaml` (Northgate):

- the scripted stories of `app.demo.stories`;
- everyday traffic: risky and benign emails from the training corpus, addressed to Northgate
  staff (some impersonation attempts take the name of a VIP), routine mail from the directory's
  vendors and Northgate's own mail to them (so vendors are known senders, not first contacts).

Everything is drawn from one `random.Random(seed)`: the same seed plans the same week.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Any

from app.demo.stories import Planned, mail, pdf, stories
from app.detect.corpus import CORPUS_DIR

DAYS = 7

STAFF = {
    "sarah.okafor@northgate.com": "Sarah Okafor",
    "james.whitaker@northgate.com": "James Whitaker",
    "priya.natarajan@northgate.com": "Priya Natarajan",
    "tom.hale@northgate.com": "Tom Hale",
    "anna.berg@northgate.com": "Anna Berg",
    "daniel.mensah@northgate.com": "Daniel Mensah",
}
FINANCE = ["tom.hale@northgate.com", "priya.natarajan@northgate.com", "ap@northgate.com"]
VIPS = ["Sarah Okafor", "James Whitaker"]
RECIPIENTS = {
    "payment_change": FINANCE,
    "urgent_transfer": ["priya.natarajan@northgate.com", "tom.hale@northgate.com"],
    "gift_card": list(STAFF),
    "credential_request": list(STAFF),
    "data_request": ["daniel.mensah@northgate.com", "priya.natarajan@northgate.com"],
}
# (vendor, contact name, address) from examples/directory.yaml
VENDOR_CONTACTS = [
    ("Acme Supplies", "Mark Ellis", "mark.ellis@acme-supplies.com"),
    ("Acme Supplies", "Accounts receivable", "ar@acme-supplies.com"),
    ("Harbour Steel Ltd", "Joanne Price", "joanne.price@harboursteel.co.uk"),
    ("Kestrel Logistics GmbH", "Jonas Weber", "buchhaltung@kestrel-logistics.de"),
    ("Pemberton & Lowe LLP", "Client accounts", "accounts@pembertonlowe.co.uk"),
    ("Cobalt Cloud Services SAS", "Camille Laurent", "billing@cobaltcloud.fr"),
    ("Brightwater Facilities Inc", "Maria Lopez", "ar@brightwaterfm.com"),
]
FREEMAIL = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "hotmail.com", "proton.me")
# Share of the everyday inbound traffic per corpus kind (the rest of the week is scripted).
MIX = {"risky": 0.2, "hard_negative": 0.4, "benign": 0.4}
NON_ENGLISH = 0.15


ROUTINE = [
    (
        "Invoice {inv}",
        "Hello,\n\nPlease find attached invoice {inv} for this month's deliveries, payable within "
        "30 days to the account you have on file.\n\nKind regards,\n{name}",
    ),
    (
        "Order {po} dispatched",
        "Hi,\n\nYour order {po} left our warehouse this morning and should arrive on Thursday. "
        "Tracking reference {ref}.\n\nBest,\n{name}",
    ),
    (
        "Statement of account",
        "Dear customer,\n\nAttached is your statement of account. Two invoices are open; no "
        "action is needed if they are already scheduled.\n\nRegards,\n{name}",
    ),
    (
        "Payment received – thank you",
        "Hello,\n\nThank you for your payment of invoice {inv}, received today.\n\n{name}",
    ),
    (
        "Quarterly review",
        "Hi,\n\nCould we move our quarterly review to Wednesday at 2pm? Happy to dial in if that "
        "is easier for you.\n\n{name}",
    ),
]
OUTBOUND = [
    (
        "Payment run",
        "Hi {first},\n\nPayment for invoice {inv} is scheduled for Friday's run.\n\nRegards,\nTom",
    ),
    (
        "PO {po}",
        "Hello {first},\n\nPlease find attached purchase order {po}. Could you confirm the "
        "delivery date?\n\nThanks,\nPriya",
    ),
]


def _routine(rng: random.Random, end: datetime, count: int, outbound: int) -> list[Planned]:
    """Vendors' everyday mail, and Northgate's mail to them early in the week."""
    out = []
    start = end - timedelta(days=DAYS)
    for i in range(outbound):
        vendor, name, address = VENDOR_CONTACTS[i % len(VENDOR_CONTACTS)]
        subject, text = OUTBOUND[i % len(OUTBOUND)]
        values = {"first": name.split()[0], "inv": f"{rng.randint(1000, 9999)}", "po": f"PO-{i}"}
        at = start + timedelta(hours=rng.uniform(1, 30))
        sender = "tom.hale@northgate.com" if "Tom" in text else "priya.natarajan@northgate.com"
        out.append(
            Planned(
                at,
                mail(
                    formataddr((STAFF[sender], sender)),
                    formataddr((name, address)),
                    subject.format(**values),
                    text.format(**values),
                    direction="outbound",
                ),
                "benign",
            )
        )
    for _ in range(count):
        vendor, name, address = VENDOR_CONTACTS[rng.randrange(len(VENDOR_CONTACTS))]
        subject, text = ROUTINE[rng.randrange(len(ROUTINE))]
        values = {
            "inv": f"INV-{rng.randint(10000, 99999)}",
            "po": f"PO-{rng.randint(80000, 89999)}",
            "ref": f"{rng.randint(10**9, 10**10 - 1)}",
            "name": f"{name}\n{vendor}",
        }
        attachments = pdf(f"{values['inv']}.pdf") if "attached" in text else []
        out.append(
            Planned(
                work_time(rng, end, earliest=start + timedelta(hours=32)),
                mail(
                    formataddr((name, address)),
                    rng.choice(FINANCE),
                    subject.format(**values),
                    text.format(**values),
                    attachments=attachments,
                ),
                "benign",
            )
        )
    return out


def work_time(rng: random.Random, end: datetime, *, earliest: datetime | None = None) -> datetime:
    """A time in the week, mostly in office hours on weekdays (UTC), before `end`."""
    start = earliest or end - timedelta(days=DAYS)
    for _ in range(100):
        at = start + timedelta(seconds=rng.uniform(0, (end - start).total_seconds()))
        office = 7 <= at.hour < 19
        weekday = at.weekday() < 5
        if rng.random() < (0.9 if office else 0.08) * (1.0 if weekday else 0.25):
            return at.replace(microsecond=0)
    return (end - timedelta(hours=1)).replace(microsecond=0)


def load_corpus_records(directory: Path = CORPUS_DIR) -> list[dict[str, Any]]:
    """Every corpus record, in file order (read as JSON; the corpus is not re-validated here)."""
    out = []
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(json.loads(line))
    return out


def _impersonate(email: dict[str, Any], rng: random.Random) -> None:
    """Put a VIP's name on a free-mail sender, in the From header and the signature."""
    old, address = parseaddr(str(email.get("from", "")))
    new = rng.choice(VIPS)
    email["from"] = formataddr((new, address))
    for field in ("text", "html"):
        body = email.get(field)
        if isinstance(body, str) and old:
            body = body.replace(old, new)
            first_old, first_new = old.split()[0], new.split()[0]
            if len(first_old) > 2:
                body = body.replace(first_old, first_new)
            email[field] = body


def _everyday(
    rng: random.Random, end: datetime, count: int, records: list[dict[str, Any]]
) -> list[Planned]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_kind.setdefault(str(r.get("kind")), []).append(r)
    out: list[Planned] = []
    for kind, share in MIX.items():
        pool = by_kind.get(kind, [])
        english = [r for r in pool if r.get("lang") == "en"]
        other = [r for r in pool if r.get("lang") != "en"]
        n = round(count * share) if kind != "benign" else count - len(out)
        n_other = min(len(other), round(n * NON_ENGLISH))
        picked = rng.sample(english, min(len(english), n - n_other)) + rng.sample(other, n_other)
        for record in picked:
            email = {k: v for k, v in dict(record["email"]).items() if k != "cc"}
            labels = [str(x) for x in record.get("labels") or []]
            to = RECIPIENTS.get(labels[0], list(STAFF)) if labels else list(STAFF)
            email["to"] = [rng.choice(to)]
            sender_domain = parseaddr(str(email.get("from", "")))[1].rpartition("@")[2].lower()
            if (
                set(labels) & {"urgent_transfer", "gift_card"}
                and sender_domain in FREEMAIL
                and rng.random() < 0.4
            ):
                _impersonate(email, rng)
            # The corpus's risky emails are attacks; the genuine requests that a callback confirms
            # as legitimate come from the scripted stories, which make sense for it.
            truth = "fraud" if kind == "risky" else "benign"
            out.append(Planned(work_time(rng, end), email, truth))
    return out


def plan_week(
    *, seed: int, end: datetime, messages: int, records: list[dict[str, Any]] | None = None
) -> list[Planned]:
    """The week's emails in arrival order, each with a unique Message-ID and a Date header."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible demo, not a secret
    scripted = stories(end)
    outbound = min(12, max(0, messages - len(scripted)) // 6)
    routine = min(24, max(0, messages - len(scripted) - outbound) // 5)
    everyday = max(0, messages - len(scripted) - outbound - routine)
    week = [
        *scripted,
        *_routine(rng, end, routine, outbound),
        *_everyday(rng, end, everyday, records if records is not None else load_corpus_records()),
    ]
    week.sort(key=lambda p: p.at)
    for n, planned in enumerate(week, 1):
        domain = parseaddr(str(planned.email.get("from", "")))[1].rpartition("@")[2] or "demo"
        headers = dict(planned.email.get("headers") or {})
        planned.email["message_id"] = headers.pop("Message-ID", f"<demo-{seed}-{n:04d}@{domain}>")
        planned.email["headers"] = headers
        planned.email["date"] = format_datetime(planned.at)
    return week
