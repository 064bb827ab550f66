"""The demo's scripted stories: what Countersign is for, told with the sample directory.

A vendor's new IBAN (sent twice, then a different one), a look-alike vendor domain, the CEO's and
the CFO's names on outside addresses, a thread reply, a credential phish, real requests confirmed
by phone, and emails the model flags although they make no risky request (false positives).
Times are relative to the end of the demo week; each story fixes how its ticket ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(slots=True)
class Planned:
    """One email of the week: when it arrives, its Email JSON, and what verifying it reveals."""

    at: datetime
    email: dict[str, Any]
    truth: str
    """`fraud`, `legitimate` (a real request) or `benign` (no risky request at all)."""
    fate: str = ""
    """A scripted story's ending for the ticket it opens; '' lets the simulation draw one."""
    note: str = ""
    """What the analyst or verifier writes when closing the ticket."""
    story: str = ""
    decide_after: timedelta | None = None
    """For a story: how long after the ticket opens its outcome is recorded."""


def day_at(end: datetime, days_ago: int, hour: int, minute: int) -> datetime:
    """`hour:minute` UTC on the day `days_ago` days before `end`."""
    day = (end - timedelta(days=days_ago)).date()
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=end.tzinfo)


def mail(
    sender: str,
    to: str | list[str],
    subject: str,
    text: str,
    *,
    headers: dict[str, str] | None = None,
    direction: str = "inbound",
    attachments: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Email JSON for one message of the week (Message-ID and Date are added when planned)."""
    return {
        "from": sender,
        "to": [to] if isinstance(to, str) else to,
        "subject": subject,
        "text": text,
        "headers": headers or {},
        "direction": direction,
        "attachments": attachments or [],
    }


def pdf(name: str) -> list[dict[str, Any]]:
    """The metadata of an attached PDF."""
    return [{"filename": name, "content_type": "application/pdf", "size": 84_213}]


def stories(end: datetime) -> list[Planned]:
    """The scripted stories, timed relative to the end of the week."""
    acme = day_at(end, 5, 9, 40)
    harbour = end - timedelta(hours=9)
    hs_id = "<hs-bank-change-1@harboursteel.co.uk>"
    return [
        Planned(
            acme,
            mail(
                "Mark Ellis <mark.ellis@acme-supplies.com>",
                "tom.hale@northgate.com",
                "Change of bank details – Acme Supplies",
                "Hello Tom,\n\nPlease note that Acme Supplies has moved its business account to "
                "Barclays. From today all payments should be made to our new account: IBAN GB33 "
                "BUKB 2020 1555 5555 55. Please update your supplier records before the next "
                "payment run.\n\nKind regards,\nMark Ellis\nAccounts, Acme Supplies",
                attachments=pdf("Acme-bank-letter.pdf"),
            ),
            "legitimate",
            "legitimate",
            "Called Mark Ellis on the number on file: Acme moved to Barclays, the new account "
            "is genuine. Supplier record updated.",
            "A vendor's new IBAN",
            timedelta(hours=5, minutes=10),
        ),
        Planned(
            acme + timedelta(hours=1, minutes=20),
            mail(
                "Accounts receivable <ar@acme-supplies.com>",
                "ap@northgate.com",
                "Updated remittance details",
                "Dear Accounts Payable,\n\nFurther to Mark's email, please make sure invoice "
                "AS-4471 and all future invoices are paid to our new bank account IBAN GB33 BUKB "
                "2020 1555 5555 55. The old account is being closed.\n\nThanks,\nAccounts "
                "receivable, Acme Supplies",
            ),
            "legitimate",
            story="The same IBAN again: attached to the open ticket",
        ),
        Planned(
            acme + timedelta(hours=3, minutes=5),
            mail(
                "Mark Ellis <mark.ellis@acme-supplies.com>",
                "tom.hale@northgate.com",
                "URGENT: correction to our bank details",
                "Tom,\n\nApologies, the account we sent earlier has a problem. Please pay invoice "
                "AS-4471 (EUR 48,250.00) and all future invoices to this account instead: IBAN "
                "NL91 ABNA 0417 1643 00. Please confirm once updated, it needs to go out today."
                "\n\nMark",
            ),
            "fraud",
            "fraud",
            "Mark Ellis, called on the number on file, never sent this: Acme's mailbox is "
            "compromised. The Dutch account is blocked and Acme's IT is informed.",
            "A different IBAN from the same vendor: a new ticket",
            timedelta(hours=2, minutes=40),
        ),
        Planned(
            day_at(end, 3, 14, 5),
            mail(
                "Mark Ellis <mark.ellis@acme-suppiies.com>",
                "tom.hale@northgate.com",
                "New bank account for Acme Supplies",
                "Hi Tom,\n\nOur bank has changed. Please update our payment details and send the "
                "outstanding balance to IBAN DE44 5001 0517 5407 3249 31. Let me know when done."
                "\n\nRegards,\nMark Ellis",
            ),
            "fraud",
            "fraud",
            "Look-alike domain (acme-suppiies.com). Mark Ellis, on the number on file, knows "
            "nothing of it. Reported to IT security.",
            "A look-alike vendor domain",
        ),
        Planned(
            day_at(end, 2, 10, 12),
            mail(
                "Sarah Okafor <sarah.okafor.ceo@gmail.com>",
                "tom.hale@northgate.com",
                "Quick favour",
                "Tom, are you at your desk? I need you to buy eight 100 GBP Apple gift cards for "
                "a client presentation today. Scratch the backs and email me photos of the codes. "
                "I'm in meetings all afternoon so keep this between us for now.\n\nSarah\nSent "
                "from my iPhone",
            ),
            "fraud",
            "fraud",
            "Sarah Okafor, called on her number on file, sent no such request. Nothing bought.",
            "The CEO's name on a free-mail address",
        ),
        Planned(
            day_at(end, 2, 15, 30),
            mail(
                "Daniel Mensah <daniel.mensah@northgate.com>",
                "priya.natarajan@northgate.com",
                "W-2s for the auditors",
                "Priya, can you send me the W-2 forms and payroll records for all staff as PDFs "
                "today? I need them for the auditors' fieldwork tomorrow.\n\nDaniel",
            ),
            "legitimate",
            "legitimate",
            "Daniel confirmed by phone (number on file): the auditors asked for them. Shared "
            "through the secure audit portal, not by email.",
            "A real data request, confirmed by phone",
        ),
        Planned(
            harbour,
            mail(
                "Joanne Price <joanne.price@harboursteel.co.uk>",
                "tom.hale@northgate.com",
                "Harbour Steel: new bank account",
                "Dear Tom,\n\nHarbour Steel Ltd is moving its banking to Lloyds. Please update our "
                "supplier record and pay all invoices from 1 March to IBAN GB71 LOYD 3096 3412 "
                "3456 78.\n\nBest regards,\nJoanne Price\nCredit control, Harbour Steel Ltd",
                headers={"Message-ID": hs_id},
            ),
            "legitimate",
            "in_progress",
            story="A bank change being verified, with a reply in the same thread",
        ),
        Planned(
            harbour + timedelta(hours=7),
            mail(
                "Joanne Price <joanne.price@harboursteel.co.uk>",
                "tom.hale@northgate.com",
                "Re: Harbour Steel: new bank account",
                "Hi Tom,\n\nJust following up on the below: could you confirm our bank details "
                "have been updated on your side before Friday's payment run?\n\nThanks,\nJoanne"
                "\n\nOn Monday, Tom Hale wrote:\n> Thanks Joanne, we will look at it.\n>\n> "
                "Joanne Price wrote:\n> Harbour Steel Ltd is moving its banking to Lloyds. Please "
                "update our supplier record and pay all invoices from 1 March to the new account.",
                headers={"In-Reply-To": hs_id, "References": hs_id},
            ),
            "legitimate",
        ),
        Planned(
            end - timedelta(hours=5),
            mail(
                "James Whitaker <james.whitaker@n0rthgate.com>",
                "priya.natarajan@northgate.com",
                "Confidential payment",
                "Priya,\n\nWe are closing a confidential acquisition and I need a wire of GBP "
                "86,400.00 sent today to the account below. Do not discuss this with anyone else "
                "until it is announced. IBAN GB94 BARC 1020 1530 0934 59.\n\nJames",
            ),
            "fraud",
            "open",
            story="The CFO's name on a look-alike of our own domain, still waiting (overdue)",
        ),
        Planned(
            end - timedelta(minutes=50),
            mail(
                "IT Service Desk <servicedesk@northgate-support.com>",
                "anna.berg@northgate.com",
                "Password expiry notice",
                "Your Northgate password expires today. To keep access to email, sign in at "
                "https://northgate-support.com/login and confirm your current password and MFA "
                "code.",
            ),
            "fraud",
            "open",
            story="A credential phish that just arrived",
        ),
        Planned(
            day_at(end, 3, 16, 50),
            mail(
                "Payroll Team <payroll.northgate@outlook.com>",
                "daniel.mensah@northgate.com",
                "Staff reward vouchers",
                "Hi Daniel, for the staff reward programme please purchase twenty 50 GBP Amazon "
                "gift cards this afternoon and reply with the card numbers and PINs so we can "
                "load them before payroll closes.",
            ),
            "fraud",
            "expire",
            story="Nobody verified it in time: expired",
        ),
        Planned(
            day_at(end, 4, 11, 0),
            mail(
                "Daniel Mensah <daniel.mensah@northgate.com>",
                "anna.berg@northgate.com",
                "Team raffle prizes",
                "Hi Anna, could you buy some gift cards for the team raffle? Finance will "
                "reimburse through expenses as usual, receipts please.\n\nThanks, Daniel",
            ),
            "benign",
            "false_positive",
            "No risky request: HR's team raffle, bought through expenses as usual.",
            "Flagged without a risky request: a false positive",
        ),
        Planned(
            day_at(end, 6, 10, 30),
            mail(
                "Maria Lopez <ar@brightwaterfm.com>",
                "tom.hale@northgate.com",
                "Invoice BW-2291 reference",
                "Hi Tom, please update the payment reference on invoice BW-2291 to PO-88213, our "
                "system rejected the old one. Amount and account are unchanged.\n\nMaria",
            ),
            "benign",
            "false_positive",
            "No new bank details: only the payment reference changes; the account on file stays.",
        ),
        Planned(
            day_at(end, 1, 9, 15),
            mail(
                "Jonas Weber <buchhaltung@kestrel-logistics.de>",
                "ap@northgate.com",
                "Update",
                "We've switched our invoicing platform. From next month you'll receive invoices "
                "from billing@kestrel-logistics.de; please pay them to the same bank account as "
                "before.\n\nMit freundlichen Grüßen\nJonas Weber",
            ),
            "benign",
            "false_positive",
            "No risky request: new invoice sender address, same bank account as on file.",
        ),
        Planned(
            day_at(end, 4, 8, 45),
            mail(
                "Anna Berg <anna.berg@northgate.com>",
                ["tom.hale@northgate.com", "priya.natarajan@northgate.com"],
                "New HR portal",
                "Hi all, the new HR portal is live. Please sign in with your usual Northgate "
                "account from the intranet page and check your details before Friday. IT will "
                "never ask for your password.\n\nAnna",
            ),
            "benign",
            "false_positive",
            "No risky request: IT's own announcement, no link and no password asked for.",
        ),
        Planned(
            day_at(end, 3, 11, 20),
            mail(
                "Priya Natarajan <priya.natarajan@northgate.com>",
                "tom.hale@northgate.com",
                "Supplier payment today",
                "Tom, please pay the Harbour Steel invoice today as part of the normal run, to "
                "the account on file. James approved it this morning.\n\nPriya",
            ),
            "benign",
            "false_positive",
            "No risky request: a routine payment through the normal run to the account on file.",
        ),
    ]
