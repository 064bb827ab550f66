"""Normalising and validating directory input: domains, addresses, numbers, names, accounts."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import phonenumbers
from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from app.core.errors import AppError, InvalidInput
from app.directory.schemas import MAX_ITEMS, MAX_NAME

ORG_PURPOSES = ("it_helpdesk", "data_owner", "finance", "general")
DEFAULT_PHONE_REGION = "US"
"""Region for numbers typed without a country code: the one `extract_artifacts` assumes, so a
number on file and the same number in an email compare equal."""
MAX_IMPORT_ENTRIES = 20_000
"""Entries per section of an imported file (YAML aliases can repeat one entry endlessly)."""


_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_EMAIL = re.compile(r"[^@\s<>(),;:\"\[\]\\]{1,64}@[^@\s<>(),;:\"\[\]\\]+")
_PHONE = re.compile(r"\+?[0-9()./\- ]+(?:\s*(?:x|ext\.?)\s*\d{1,6})?", re.IGNORECASE)
_ACCOUNT = re.compile(r"[A-Z0-9]{4,34}")
_IBAN_SHAPE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")


def normalise_domain(value: str) -> str:
    """A lower-case ASCII (punycode) domain name; raises InvalidInput for anything else."""
    domain = value.strip().lower().removeprefix("@").rstrip(".")
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidInput(f"not a domain: {value[:80]!r}") from None
    labels = domain.split(".")
    if (
        len(domain) > 253
        or len(labels) < 2
        or labels[-1].isdigit()
        or not all(_LABEL.fullmatch(label) for label in labels)
    ):
        raise InvalidInput(f"not a domain: {value[:80]!r}")
    return domain


def normalise_email(value: str) -> str:
    """A lower-case address with a valid domain; raises InvalidInput for anything else."""
    address = value.strip().lower().removeprefix("mailto:")
    if len(address) > 320 or not _EMAIL.fullmatch(address):
        raise InvalidInput(f"not an email address: {value[:80]!r}")
    local, _, domain = address.rpartition("@")
    return f"{local}@{normalise_domain(domain)}"


def normalise_phone(value: str) -> str:
    """E.164 when the number parses (as detection formats numbers found in emails), else as typed.

    Numbers with a country code must be possible numbers; numbers without one are read as
    `DEFAULT_PHONE_REGION` numbers when valid there and otherwise kept as typed.
    """
    raw = " ".join(value.split())
    if not raw:
        return ""
    if len(raw) > 40 or not _PHONE.fullmatch(raw) or sum(ch.isdigit() for ch in raw) < 5:
        raise InvalidInput(f"not a phone number: {value[:80]!r}")
    international = raw.startswith("+")
    try:
        number = phonenumbers.parse(raw, None if international else DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        number = None
    if international and (number is None or not phonenumbers.is_possible_number(number)):
        raise InvalidInput(f"not a possible phone number: {raw!r}")
    if number is None or number.extension:
        return raw
    if international or phonenumbers.is_valid_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return raw


def _phone_key(phone: str) -> str:
    """The comparable form of a stored number (rows written before normalisation included)."""
    try:
        return normalise_phone(phone)
    except InvalidInput:
        return phone


def _account(raw: str) -> tuple[str, str]:
    """(kind, compact form) of a typed bank account; a mistyped IBAN is refused, not stored.

    Error messages name the last four characters only: the number itself never leaves here.
    """
    compact = re.sub(r"[\s\-./]", "", str(raw)).upper()
    if not _ACCOUNT.fullmatch(compact):
        raise InvalidInput("a bank account number has 4 to 34 letters and digits")
    if _IBAN_SHAPE.fullmatch(compact):
        try:
            IBAN(compact)
        except SchwiftyException:
            raise InvalidInput(
                f"the IBAN ending {compact[-4:]} is not valid (check digits, length or country)"
            ) from None
        return "iban", compact
    return "account", compact


def _name(value: str, what: str) -> str:
    name = " ".join(str(value).split())
    if not name:
        raise InvalidInput(f"{what} needs a name")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"names are at most {MAX_NAME} characters")
    return name


def _text(value: str, what: str, limit: int = MAX_NAME) -> str:
    text = str(value).strip()
    if len(text) > limit:
        raise InvalidInput(f"{what} is at most {limit} characters")
    return text


def _emails(values: Sequence[str]) -> list[str]:
    emails = sorted({normalise_email(e) for e in values if str(e).strip()})
    if len(emails) > MAX_ITEMS:
        raise InvalidInput(f"at most {MAX_ITEMS} email addresses per person")
    return emails


def _domains(values: Sequence[str]) -> list[str]:
    domains = sorted({normalise_domain(d) for d in values if str(d).strip()})
    if len(domains) > MAX_ITEMS:
        raise InvalidInput(f"at most {MAX_ITEMS} domains per vendor")
    return domains


def _purpose(value: str) -> str:
    if value not in ORG_PURPOSES:
        raise InvalidInput(f"purpose must be one of {', '.join(ORG_PURPOSES)}")
    return value


@contextmanager
def _entry(where: str) -> Iterator[None]:
    """Prefix errors with the entry they come from (`people[3]`), keeping their class."""
    try:
        yield
    except AppError as exc:
        raise type(exc)(f"{where}: {exc.detail}", code=exc.code) from None
