"""Sender and metadata signals. They set severity, risk and the gateway action; they never make a
benign email risky on their own."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein
from rapidfuzz.fuzz import token_sort_ratio

from app.detect.directory import Directory
from app.detect.normalize import fold_chars
from app.mail.artifacts import Artifacts, registered_domain
from app.mail.schemas import Email

FREEMAIL = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "ymail.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mail.com",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "protonmail.com",
        "proton.me",
        "zoho.com",
        "yandex.com",
        "yandex.ru",
        "mail.ru",
        "qq.com",
        "163.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "orange.fr",
        "free.fr",
        "laposte.net",
        "libero.it",
        "t-online.de",
        "tutanota.com",
        "fastmail.com",
        "hushmail.com",
        "rediffmail.com",
        "uol.com.br",
        "bol.com.br",
        "outlook.fr",
    }
)
# Brands whose domains are commonly imitated in credential phishing.
BRAND_DOMAINS = (
    "microsoft.com",
    "office.com",
    "office365.com",
    "outlook.com",
    "live.com",
    "google.com",
    "apple.com",
    "icloud.com",
    "paypal.com",
    "amazon.com",
    "docusign.com",
    "docusign.net",
    "dropbox.com",
    "adobe.com",
    "dhl.com",
    "fedex.com",
    "ups.com",
    "netflix.com",
    "linkedin.com",
    "wellsfargo.com",
    "chase.com",
    "bankofamerica.com",
    "coinbase.com",
    "binance.com",
    "sharepoint.com",
    "onedrive.com",
    "irs.gov",
    "gov.uk",
)
_ORG_WORDS = re.compile(
    r"\b(inc|llc|ltd|gmbh|plc|corp|company|accounts|payable|receivable|payroll|finance|"
    r"billing|invoice|ceo|cfo|director|president|solicitors|bank|treasury)\b",
    re.IGNORECASE,
)
_EMBEDDED_ADDR = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")
_SHORTENERS = frozenset(
    {
        "bit.ly",
        "tinyurl.com",
        "t.co",
        "goo.gl",
        "ow.ly",
        "is.gd",
        "buff.ly",
        "rebrand.ly",
        "cutt.ly",
        "shorturl.at",
        "rb.gy",
        "t.ly",
    }
)

# How much each signal raises risk when the email makes a risky request.
WEIGHTS = {
    "reply_to_mismatch": 0.35,
    "display_name_impersonation": 0.6,
    "display_name_address": 0.4,
    "lookalike_domain": 0.7,
    "first_contact": 0.25,
    "auth_failure": 0.5,
    "freemail_org_claim": 0.3,
    "details_differ_from_file": 0.6,
    "link_text_mismatch": 0.3,
    "shortened_link": 0.15,
}
HIGH_SEVERITY = frozenset(
    {"display_name_impersonation", "lookalike_domain", "auth_failure", "details_differ_from_file"}
)


@dataclass(frozen=True, slots=True)
class Signal:
    """One sender or metadata finding, explained in plain words."""

    name: str
    detail: str

    @property
    def weight(self) -> float:
        """How much the signal raises risk."""
        return WEIGHTS.get(self.name, 0.2)

    def to_json(self) -> dict[str, str]:
        """The Verdict contract's signal shape."""
        return {"name": self.name, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class SenderHistory:
    """What the organisation's mail flow knows about a sender (from the database)."""

    seen_before: int = 0
    written_to: bool = False


@functools.lru_cache(maxsize=8192)
def _skeleton(domain: str) -> str:
    # Fold confusable characters and common swaps so "rnicrosoft" and "micros0ft" meet.
    folded = fold_chars(domain)
    return folded.replace("rn", "m").replace("0", "o").replace("1", "l").replace("vv", "w")


def lookalike_of(domain: str, protected: list[str]) -> str | None:
    """The protected domain that `domain` imitates (close but not equal), if any."""
    if not domain:
        return None
    reg = registered_domain(domain)
    if not reg or reg in protected:
        return None
    label = reg.split(".", 1)[0]
    for good in protected:
        good_reg = registered_domain(good)
        if not good_reg or reg == good_reg:
            continue
        good_label = good_reg.split(".", 1)[0]
        if len(good_label) < 4:
            continue
        if _skeleton(reg) == _skeleton(good_reg) or _skeleton(label) == _skeleton(good_label):
            return good_reg
        limit = 1 if len(good_label) < 7 else 2
        if Levenshtein.distance(label, good_label) <= limit:
            return good_reg
        # "microsoft-support.com", "micros0ft-support.com", "paypal.com.secure-login.net"
        skel_label, skel_good = _skeleton(label), _skeleton(good_label)
        if skel_good in skel_label and skel_label != skel_good and len(good_label) >= 5:
            return good_reg
        if good_reg in domain.lower() and not domain.lower().endswith("." + good_reg):
            return good_reg
    return None


def evaluate_signals(
    email: Email, artifacts: Artifacts, directory: Directory, history: SenderHistory | None = None
) -> list[Signal]:
    """All signals that apply to this email."""
    signals: list[Signal] = []
    sender = email.sender
    domain = sender.domain if sender else ""
    sender_reg = registered_domain(domain) if domain else ""
    org = [registered_domain(d) for d in directory.org_domains]
    internal = sender_reg in org if sender_reg else False

    if email.reply_to and email.reply_to.domain and sender_reg:
        reply_reg = registered_domain(email.reply_to.domain)
        if reply_reg and reply_reg != sender_reg:
            signals.append(
                Signal(
                    "reply_to_mismatch",
                    f"replies go to {reply_reg}, a different domain than the sender's "
                    f"({sender_reg})",
                )
            )

    name = fold_chars(sender.name) if sender else ""
    if sender and name:
        embedded = _EMBEDDED_ADDR.search(sender.name)
        if embedded and embedded.group(0).lower() != sender.address:
            signals.append(
                Signal(
                    "display_name_address",
                    f"the display name shows the address {embedded.group(0)} but the "
                    f"mail comes from {sender.address}",
                )
            )
        if not internal:
            for person in directory.people:
                if sender.address in person.emails:
                    break
                if person.name and token_sort_ratio(name, fold_chars(person.name)) >= 88:
                    role = f" ({person.role})" if person.role else ""
                    signals.append(
                        Signal(
                            "display_name_impersonation",
                            f"the sender uses the name of {person.name}{role} but writes "
                            f"from {sender.address}, which is not on file for them",
                        )
                    )
                    break

    protected = org + [d for v in directory.vendors for d in v.domains] + list(BRAND_DOMAINS)
    for who, addr_domain in (
        ("sender", domain),
        ("reply-to", email.reply_to.domain if email.reply_to else ""),
    ):
        target = lookalike_of(addr_domain, protected)
        if target:
            signals.append(
                Signal(
                    "lookalike_domain",
                    f"the {who} domain {registered_domain(addr_domain)} imitates {target}",
                )
            )
            break

    if history is not None and not internal and history.seen_before == 0 and not history.written_to:
        signals.append(
            Signal("first_contact", "first email from this sender; nobody here has written to them")
        )

    failures = email.auth.failures()
    if failures:
        signals.append(
            Signal(
                "auth_failure",
                "sender authentication failed: "
                + ", ".join(f"{m.upper()}={getattr(email.auth, m)}" for m in failures),
            )
        )

    if sender_reg in FREEMAIL and sender:
        vendor_names = [v.name for v in directory.vendors if v.name]
        claims = bool(_ORG_WORDS.search(sender.name))
        claims = claims or any(
            token_sort_ratio(name, fold_chars(v)) >= 85
            for v in [*vendor_names, directory.org_name]
            if v
        )
        if claims:
            signals.append(
                Signal(
                    "freemail_org_claim",
                    f"a free-mail address ({sender_reg}) writes in the name of an "
                    f"organisation ({sender.name})",
                )
            )

    vendor = directory.vendor_for_domain(sender_reg) if sender_reg else None
    new_accounts = [a for a in artifacts.accounts if a.kind in ("iban", "account")]
    if new_accounts:
        on_file = vendor.account_fingerprints if vendor else set()
        differing = [a for a in new_accounts if a.fingerprint not in on_file]
        if vendor and differing:
            signals.append(
                Signal(
                    "details_differ_from_file",
                    f"bank details in the email (ending {', '.join(a.last4 for a in differing)})"
                    f" differ from those on file for {vendor.name}: supplied by the email, "
                    "do not use",
                )
            )
    known = {re.sub(r"\D", "", p) for p in directory.known_phones()}
    if vendor and artifacts.phones and known:
        foreign = [p for p in artifacts.phones if re.sub(r"\D", "", p) not in known]
        if foreign:
            signals.append(
                Signal(
                    "details_differ_from_file",
                    f"phone numbers in the email ({', '.join(foreign[:3])}) are not on "
                    "file: supplied by the email, do not use",
                )
            )

    for label, href in email.html_links:
        shown = _EMBEDDED_DOMAIN.search(label)
        if shown and href.lower().startswith("http"):
            shown_reg, href_reg = registered_domain(shown.group(0)), registered_domain(href)
            if shown_reg and href_reg and shown_reg != href_reg:
                signals.append(
                    Signal("link_text_mismatch", f"a link shows {shown_reg} but goes to {href_reg}")
                )
                break
    if any(link.domain in _SHORTENERS for link in artifacts.links):
        signals.append(
            Signal("shortened_link", "a link hides its destination behind a URL shortener")
        )
    return signals


_EMBEDDED_DOMAIN = re.compile(r"\b(?:https?://)?(?:[a-z0-9\-]+\.)+[a-z]{2,}\b", re.IGNORECASE)
