"""The risky intents Countersign detects, with the words used to explain them."""

from __future__ import annotations

from enum import StrEnum


class Intent(StrEnum):
    """Risky request types (names are part of the Verdict contract)."""

    PAYMENT_CHANGE = "payment_change"
    CREDENTIAL_REQUEST = "credential_request"
    URGENT_TRANSFER = "urgent_transfer"
    GIFT_CARD = "gift_card"
    DATA_REQUEST = "data_request"


INTENTS: tuple[str, ...] = tuple(i.value for i in Intent)

BANNERS: dict[str, str] = {
    "payment_change": "This email asks to change payment details. Do not act on it until verified "
    "by phone on the number on file.",
    "credential_request": "This email asks for a password, a code or a sign-in through a link. "
    "Do not enter or share credentials; contact IT on its known channel.",
    "urgent_transfer": "This email asks for a payment or transfer outside the normal process. "
    "Do not pay until the requester confirms by phone on the number on file.",
    "gift_card": "This email asks you to buy gift cards or send card codes. "
    "Do not buy or send codes until the requester confirms by phone on the number on file.",
    "data_request": "This email asks for sensitive data. Do not send it until the data owner "
    "approves and the requester is verified on a known channel.",
}

DESCRIPTIONS: dict[str, str] = {
    "payment_change": "change of payment or bank details",
    "credential_request": "request for credentials or a sign-in",
    "urgent_transfer": "payment or transfer outside the normal process",
    "gift_card": "purchase of gift cards or sending of card codes",
    "data_request": "request for sensitive data",
}
