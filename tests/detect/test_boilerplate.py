"""Signatures, disclaimers and banners are cut before the model reads a message; asks are not."""

from __future__ import annotations

import dataclasses
import json

import pytest

from app.detect.boilerplate import strip_boilerplate
from app.detect.corpus import CORPUS_DIR
from app.detect.engine import Detector
from app.detect.features import _asks, body_text
from app.mail.parse import email_from_json
from app.mail.schemas import Email

BANK_ASK = "Please update our bank details to IBAN GB33BUKB20201555555555 from today's payment run."

SIGNATURE = (
    "Best regards,\nMaria Lopez\nSenior Accountant | Northwind Traders\n"
    "T: +1 (312) 555-0187 | M: +1 (312) 555-0110\n1200 W Fulton Market, Chicago, IL 60607\n"
    "www.northwindtraders.com"
)
DISCLAIMER = (
    "CONFIDENTIALITY NOTICE: This e-mail message, including any attachments, is for the sole use "
    "of the intended recipient(s) and may contain confidential and privileged information. Any "
    "unauthorized review, use, disclosure or distribution is prohibited. If you are not the "
    "intended recipient, please contact the sender by reply e-mail and destroy all copies of the "
    "original message."
)
BANNER = (
    "CAUTION: This email originated from outside of the organization. Do not click links or open "
    "attachments unless you recognize the sender and know the content is safe."
)
FOOTERS = [
    "Sent from my iPhone",
    "Sent from my Samsung Galaxy smartphone.",
    "Get Outlook for Android",
    "Sent from Yahoo Mail for iPhone",
    "--\nSent from mobile, please excuse typos",
    "Von meinem iPhone gesendet",
    "Envoyé de mon iPhone",
    "Enviado desde mi iPhone",
    "Verzonden vanaf mijn iPhone",
    SIGNATURE,
    DISCLAIMER,
    "Please consider the environment before printing this email.",
    "This message was scanned for viruses and malware by Mimecast. Click here to report this "
    "email as spam: https://protect.mimecast.example/report",
]


def strip(text: str) -> str:
    return strip_boilerplate(text, _asks)


@pytest.mark.parametrize("footer", FOOTERS, ids=lambda f: f[:30])
def test_footers_and_signatures_are_cut_from_a_request(footer: str) -> None:
    assert strip(f"Hi Jane,\n\n{BANK_ASK}\n\n{footer}").strip() == f"Hi Jane,\n\n{BANK_ASK}"


def test_a_banner_above_the_message_is_cut_even_in_the_same_paragraph() -> None:
    assert strip(f"{BANNER} Hi Tom, {BANK_ASK}").strip() == f"Hi Tom, {BANK_ASK}"


def test_text_after_a_device_line_that_asks_for_something_stays() -> None:
    text = "see below\nSent from my iPhone so pay the Harlow invoice today"
    assert strip(text) == text


def test_a_request_after_the_sign_off_keeps_the_whole_block() -> None:
    text = (
        "Lunch on Friday?\n\nThanks,\nBob\n\n"
        "P.S. please buy three Apple gift cards and send me the codes"
    )
    assert strip(text) == text


def test_a_disclaimer_sentence_that_names_an_account_stays() -> None:
    text = (
        "This message is intended only for the named recipient. Our bank account has changed, use "
        "IBAN DE89370400440532013000."
    )
    assert "IBAN DE89370400440532013000" in strip(text)


def test_a_long_block_after_the_sign_off_is_not_a_signature() -> None:
    tail = "\n".join(f"Item {i}: forty units of part {i}" for i in range(20))
    text = f"Order below.\n\nThanks,\nAna\n{tail}"
    assert strip(text) == text


@pytest.mark.parametrize("text", ["Thanks", "Sent from my iPhone", "Best regards,\nAna"])
def test_a_message_that_is_only_boilerplate_is_kept_whole(text: str) -> None:
    assert strip(text) == text


def test_german_french_and_spanish_sign_offs_and_disclaimers() -> None:
    de = (
        "Bitte überweisen Sie heute 5.000 EUR an die Kanzlei.\n\nMit freundlichen Grüßen\n"
        "Hans Meier\nGeschäftsführer\nSitz der Gesellschaft: Köln, Amtsgericht Köln HRB 12345"
    )
    fr = (
        "Merci de mettre à jour le RIB du fournisseur.\n\nCordialement,\nClaire Dubois\n"
        "Ce message a été reçu par erreur ? Si vous avez reçu ce message par erreur, merci de "
        "le détruire."
    )
    es = "Por favor envíe los W-2 hoy.\n\nSaludos cordiales,\nLuis\nEnviado desde mi iPhone"
    assert strip(de) == "Bitte überweisen Sie heute 5.000 EUR an die Kanzlei."
    assert strip(fr) == "Merci de mettre à jour le RIB du fournisseur."
    assert strip(es) == "Por favor envíe los W-2 hoy."


@pytest.fixture(scope="module")
def corpus_sample() -> list[tuple[str, Email]]:
    """Every eighth email of the corpus, risky and not."""
    out = []
    for path in sorted(CORPUS_DIR.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines()[::8]:
            record = json.loads(line)
            out.append((record["id"], email_from_json(record["email"])))
    return out


@pytest.mark.parametrize("footer", [FOOTERS[1], FOOTERS[3], SIGNATURE, DISCLAIMER, FOOTERS[-2]])
def test_footers_do_not_change_any_verdict(
    detector: Detector, corpus_sample: list[tuple[str, Email]], footer: str
) -> None:
    emails = [email for _, email in corpus_sample]
    with_footer = [dataclasses.replace(e, newest=f"{e.newest}\n\n{footer}") for e in emails]
    before = [v.needs_verification for v in detector.classify_many(emails)]
    after = [v.needs_verification for v in detector.classify_many(with_footer)]
    changed = [i for (i, _), b, a in zip(corpus_sample, before, after, strict=True) if b != a]
    assert changed == []


def test_evidence_never_quotes_the_disclaimer(detector: Detector, make_email) -> None:
    email = make_email(
        {
            "from": "Maria Lopez <maria@northwind-traders.example>",
            "to": ["ap@example.org"],
            "subject": "Updated remittance details",
            "text": f"Hi,\n\n{BANK_ASK}\n\n{SIGNATURE}\n\n{DISCLAIMER}",
        }
    )
    assert "intended recipient" not in body_text(email)
    verdict = detector.classify(email)
    assert verdict.needs_verification
    quoted = " ".join(s for i in verdict.intents for s in i.evidence)
    assert "recipient" not in quoted
    assert "Maria Lopez" not in quoted
