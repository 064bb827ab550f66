"""Artifacts in an email's text: bank details, phone numbers, links and money amounts.

Everything found here is attacker-supplied until proven otherwise: the UI shows it as
"supplied by the email: do not use", and storage keeps account numbers only masked.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

import tldextract

if TYPE_CHECKING:
    from schwifty import IBAN

# phonenumbers and schwifty are imported by `extract_artifacts`, which only runs for risky emails:
# most runs of `countersign classify` never need them.

MAX_SCAN_CHARS = 200_000
MAX_ITEMS = 50


@dataclass(frozen=True, slots=True)
class BankAccount:
    """A bank account number found in the email, masked for storage and display."""

    kind: str  # iban | account | routing | sort_code | bsb | swift
    last4: str
    fingerprint: str
    valid: bool | None
    """Checksum verdict where the scheme has one (IBAN, ABA routing); None where it has not."""
    country: str | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """A URL found in the body or the HTML, with its registered domain."""

    url: str
    domain: str
    text: str = ""

    @property
    def defanged(self) -> str:
        """The URL made unclickable for display."""
        return self.url.replace("http", "hxxp", 1).replace(".", "[.]")


@dataclass(frozen=True, slots=True)
class Money:
    """An amount of money and its currency (ISO code where it could be told)."""

    amount: Decimal
    currency: str
    text: str


@dataclass(slots=True)
class Artifacts:
    """All artifacts of one email."""

    accounts: list[BankAccount] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    amounts: list[Money] = field(default_factory=list)

    def largest_amount(self) -> Money | None:
        """The largest amount mentioned, used to rank tickets."""
        return max(self.amounts, key=lambda m: m.amount, default=None)


ACCOUNT_KINDS = {
    "iban": "IBAN",
    "account": "account",
    "routing": "routing number",
    "sort_code": "sort code",
    "bsb": "BSB",
    "swift": "SWIFT/BIC",
}


def account_label(account: BankAccount) -> str:
    """How an account is shown: its kind, its country where known, and its last four only."""
    kind = ACCOUNT_KINDS.get(account.kind, account.kind)
    country = f" ({account.country})" if account.country else ""
    return f"{kind}{country} ending {account.last4}"


def fingerprint(value: str, key: bytes) -> str:
    """Keyed fingerprint of an account number: equal numbers compare equal, nothing leaks."""
    canon = re.sub(r"[^0-9A-Z]", "", value.upper())
    return hmac.new(key, canon.encode(), hashlib.sha256).hexdigest()[:32]


_IBAN_RE = re.compile(r"\b([A-Z]{2}\d{2}(?:[ \-]?[A-Z0-9]){10,30})\b")
_SWIFT_RE = re.compile(
    r"\b(?:swift|bic)\b[^A-Z0-9]{0,20}([A-Z]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?)\b",
    re.IGNORECASE,
)
_ROUTING_RE = re.compile(r"\b(?:routing|aba|rtn|transit)\b[^0-9]{0,25}(\d{9})\b", re.IGNORECASE)
_SORT_RE = re.compile(r"\bsort\s*code\b[^0-9]{0,15}(\d{2}[- ]?\d{2}[- ]?\d{2})\b", re.IGNORECASE)
_BSB_RE = re.compile(r"\bBSB\b[^0-9]{0,15}(\d{3}[- ]?\d{3})\b", re.IGNORECASE)
_ACCOUNT_RE = re.compile(
    r"\b(?:account|acct|a/c|acc|konto|compte|cuenta|conta|rekening)(?:\s*(?:no|number|nr|#|num))?"
    r"\.?\s*[:#]?\s*((?:\d[ -]?){6,17}\d)\b",
    re.IGNORECASE,
)
_URL_RE = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'()\[\]{}]{2,2000}", re.IGNORECASE)
_MONEY_RE = re.compile(
    r"(?P<pre>US\$|CA\$|A\$|AU\$|NZ\$|S\$|R\$|[$€£¥₹]|\b(?:USD|EUR|GBP|CAD|AUD|CHF|INR|SGD|ZAR|"
    r"JPY|BRL|MXN|NZD|BTC|USDT|ETH)\b)\s?"
    r"(?P<a>\d{1,3}(?:[,.' ]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?)"
    r"(?:\s?(?P<mult>k|m|million|thousand)\b)?"
    r"|(?P<b>\d{1,3}(?:[,.' ]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?)\s?"
    r"(?P<post>€|£|\b(?:USD|EUR|GBP|CAD|AUD|CHF|INR|SGD|ZAR|BRL|BTC|USDT|ETH|dollars|euros|pounds)\b)",
    re.IGNORECASE,
)
_SYMBOLS = {
    "$": "USD",
    "us$": "USD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "₹": "INR",
    "ca$": "CAD",
    "a$": "AUD",
    "au$": "AUD",
    "nz$": "NZD",
    "s$": "SGD",
    "r$": "BRL",
    "dollars": "USD",
    "euros": "EUR",
    "pounds": "GBP",
}
_MULT = {"k": 1_000, "thousand": 1_000, "m": 1_000_000, "million": 1_000_000}


@functools.lru_cache(maxsize=1)
def _tld() -> tldextract.TLDExtract:
    # Never download the suffix list: use the snapshot bundled with the package.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def load_suffix_list() -> None:
    """Read the public-suffix list now rather than on the first lookup (before forking workers,
    so that they share it)."""
    _tld()("example.com")


@functools.lru_cache(maxsize=16384)
def registered_domain(host_or_url: str) -> str:
    """The registrable domain (example.co.uk) of a host or URL; the host itself for IPs."""
    host = host_or_url.strip().lower()
    host = re.sub(r"^[a-z][a-z0-9+.\-]*://", "", host).split("/", 1)[0].split("@")[-1]
    host = host.split(":", 1)[0].strip(".[]")
    if not host:
        return ""
    ext = _tld()(host)
    return ext.top_domain_under_public_suffix or host


def _aba_valid(digits: str) -> bool:
    d = [int(c) for c in digits]
    return (3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8])) % 10 == 0


def _parse_amount(raw: str) -> Decimal | None:
    s = raw.replace(" ", "").replace("'", "")
    if re.search(r"[.,]\d{1,2}$", s):
        whole, frac = s[:-3] if s[-3] in ".," else s[:-2], s[-2:] if s[-3] in ".," else s[-1:]
        whole = re.sub(r"[.,]", "", whole)
        s = f"{whole}.{frac}"
    else:
        s = re.sub(r"[.,]", "", s)
    try:
        return Decimal(s)
    except InvalidOperation:
        return None


def _valid_iban(candidate: str) -> IBAN | None:
    """The longest valid IBAN at the start of `candidate`, ending on a group boundary.

    The pattern also takes in a following upper-case word ("... 7654 32 ASAP", "... BIC NWBKGB2L"),
    so shorter group prefixes are tried too.
    """
    from schwifty import IBAN
    from schwifty.exceptions import SchwiftyException

    groups = re.split(r"[ \-]", candidate)
    for end in range(len(groups), 0, -1):
        compact = "".join(groups[:end])
        if len(compact) < 15:
            break
        try:
            return IBAN(compact)
        except SchwiftyException:
            continue
    return None


def _drop_trailing_words(groups: list[str]) -> list[str]:
    while len(groups) > 1 and not any(c.isdigit() for c in groups[-1]):
        groups = groups[:-1]
    return groups


def extract_artifacts(
    text: str,
    *,
    key: bytes,
    html_links: list[tuple[str, str]] | None = None,
    default_region: str = "US",
) -> Artifacts:
    """Find bank details, phone numbers, links and amounts in `text` (bounded work)."""
    import phonenumbers
    from schwifty import BIC
    from schwifty.exceptions import SchwiftyException

    text = text[:MAX_SCAN_CHARS]
    found = Artifacts()
    seen: set[str] = set()

    def add_account(kind: str, value: str, valid: bool | None, country: str | None = None) -> None:
        canon = re.sub(r"[^0-9A-Z]", "", value.upper())
        if canon in seen or len(found.accounts) >= MAX_ITEMS:
            return
        seen.add(canon)
        found.accounts.append(
            BankAccount(kind, canon[-4:], fingerprint(canon, key), valid, country)
        )

    for match in _IBAN_RE.finditer(text):
        iban = _valid_iban(match.group(1))
        if iban is None:
            # No checksum fits: keep the digits as an invalid IBAN, without trailing words.
            compact = "".join(_drop_trailing_words(re.split(r"[ \-]", match.group(1))))
            has_digits = any(c.isdigit() for c in compact[4:])
            if 15 <= len(compact) <= 34 and compact[:2].isalpha() and has_digits:
                add_account("iban", compact, False, compact[:2])
            continue
        add_account("iban", iban.compact, True, iban.country_code)
    for match in _SWIFT_RE.finditer(text):
        code = match.group(1).upper()
        try:
            BIC(code)
        except SchwiftyException:
            continue
        add_account("swift", code, True, code[4:6])
    for match in _ROUTING_RE.finditer(text):
        add_account("routing", match.group(1), _aba_valid(match.group(1)), "US")
    for match in _SORT_RE.finditer(text):
        add_account("sort_code", match.group(1), None, "GB")
    for match in _BSB_RE.finditer(text):
        add_account("bsb", match.group(1), None, "AU")
    for match in _ACCOUNT_RE.finditer(text):
        add_account("account", match.group(1), None)

    try:
        matcher = phonenumbers.PhoneNumberMatcher(
            text, default_region, leniency=phonenumbers.Leniency.POSSIBLE, max_tries=200
        )
        for pm in matcher:
            # Valid numbers, and any number written in international form (+44 ...): reserved
            # or unassigned ranges are exactly what a fraudster may give as a "direct line".
            if not (
                phonenumbers.is_valid_number(pm.number) or pm.raw_string.lstrip().startswith("+")
            ):
                continue
            formatted = phonenumbers.format_number(pm.number, phonenumbers.PhoneNumberFormat.E164)
            if formatted not in found.phones:
                found.phones.append(formatted)
            if len(found.phones) >= MAX_ITEMS:
                break
    except Exception:  # noqa: S110 - phonenumbers on hostile text must never stop the parse
        pass

    urls: list[tuple[str, str]] = [
        (m.group(0).rstrip(".,;:!?"), "") for m in _URL_RE.finditer(text)
    ]
    urls += [(href, label) for label, href in (html_links or [])]
    for url, label in urls:
        if len(found.links) >= MAX_ITEMS:
            break
        if not re.match(r"(?i)^(https?://|www\.)", url):
            continue
        if any(link.url == url for link in found.links):
            continue
        found.links.append(Link(url=url[:2000], domain=registered_domain(url), text=label[:200]))

    for match in _MONEY_RE.finditer(text):
        if len(found.amounts) >= MAX_ITEMS:
            break
        raw = match.group("a") or match.group("b")
        unit = (match.group("pre") or match.group("post") or "").lower()
        amount = _parse_amount(raw)
        if amount is None:
            continue
        mult = match.group("mult")
        if mult:
            amount *= _MULT.get(mult.lower(), 1)
        currency = _SYMBOLS.get(unit, unit.upper())
        found.amounts.append(Money(amount, currency, match.group(0)[:60]))
        # "eight 100 GBP cards", "5 x $200": the total is what is at stake.
        count = _count_before(text, match.start())
        if count > 1:
            found.amounts.append(
                Money(amount * count, currency, f"{count} x {match.group(0)[:50]}")
            )
    return found


_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
)
_COUNT_WORDS = {w: i for i, w in enumerate(_NUMBER_WORDS.split(" "))} | {
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
}
_COUNT_BEFORE = re.compile(r"\b(\d{1,3}|[a-z]+)\s*(?:x|×|\*)?\s*(?:of\s+)?$", re.IGNORECASE)


def _count_before(text: str, start: int) -> int:
    """A small count written just before an amount ("eight", "5 x"), else 0."""
    match = _COUNT_BEFORE.search(text[max(0, start - 20) : start])
    if not match:
        return 0
    word = match.group(1).lower()
    count = int(word) if word.isdigit() else _COUNT_WORDS.get(word, 0)
    return count if 1 < count <= 100 else 0


_MASK_RE = re.compile(
    r"\b[A-Z]{2}\d{2}(?:[ \-]?[A-Z0-9]){10,30}\b"  # IBAN-like
    r"|(?<![\d.,+])\d(?:[ \-]?\d){8,22}(?![\d])",  # runs of 9+ digits: accounts, cards
)


_PHONE_SPAN = re.compile(r"(\+\d{1,3}[ \-.]?(?:\(\d{1,4}\)[ \-.]?)?\d[\d \-.]{5,16}\d)")


def mask_numbers(text: str) -> str:
    """The text with account and card numbers masked to their last four characters, for storage."""

    def hide(match: re.Match[str]) -> str:
        value = match.group(0)
        compact = re.sub(r"[^0-9A-Za-z]", "", value)
        if sum(ch.isdigit() for ch in compact) < 8:
            return value
        return f"[number ending {compact[-4:]}]"

    # Numbers in international phone form stay readable: they are shown as "supplied by the
    # email: do not use", never as account numbers.
    parts = _PHONE_SPAN.split(text)
    return "".join(part if i % 2 else _MASK_RE.sub(hide, part) for i, part in enumerate(parts))
