"""Verdicts of the shipped model: the Verdict JSON contract, intent, evidence and signals."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from app.detect.directory import directory_from_dict
from app.detect.engine import Detector
from app.detect.intents import INTENTS
from app.detect.service import DEV_FINGERPRINT_KEY
from app.mail.artifacts import mask_numbers

CONTRACT_FIELDS = {
    "message_id",
    "needs_verification",
    "action",
    "risk",
    "intents",
    "signals",
    "banner",
    "ticket",
    "model_version",
}
# Fields the engine adds beyond DESIGN.md (allowed: contracts change only by adding).
DOCUMENTED_EXTRAS = {"severity", "supplied_by_email"}

ORG_DIRECTORY: dict[str, Any] = {
    "organisation": {"name": "Northgate Engineering", "domains": ["northgate.com"]},
    "people": [
        {
            "name": "Sarah Okafor",
            "emails": ["sarah.okafor@northgate.com"],
            "role": "CEO",
            "vip": True,
            "phone": "+44 20 7946 0001",
        }
    ],
    "vendors": [
        {
            "name": "Acme Supplies",
            "domains": ["acme-supplies.com"],
            "contacts": [
                {
                    "name": "Mark Ellis",
                    "email": "mark.ellis@acme-supplies.com",
                    "phone": "+44 20 7946 0002",
                }
            ],
            "bank_accounts": [{"iban": "GB29 NWBK 6016 1331 9268 19"}],
        }
    ],
}


@pytest.fixture(scope="module")
def org_detector(detector: Detector) -> Detector:
    """The shipped model with a directory holding a VIP and a vendor with bank details on file."""
    directory = directory_from_dict(ORG_DIRECTORY, key=DEV_FINGERPRINT_KEY)
    return Detector(detector.model, directory=directory, fingerprint_key=DEV_FINGERPRINT_KEY)


def _squash(text: str) -> str:
    return " ".join(text.split())


def _signal_names(verdict_json: dict[str, Any]) -> list[str]:
    return [s["name"] for s in verdict_json["signals"]]


def _assert_contract(out: dict[str, Any], *, email_text: str, model_version: str) -> None:
    assert set(out) >= CONTRACT_FIELDS, f"missing {CONTRACT_FIELDS - set(out)}"
    assert set(out) - CONTRACT_FIELDS <= DOCUMENTED_EXTRAS, set(out) - CONTRACT_FIELDS
    assert isinstance(out["message_id"], str)
    assert out["message_id"]
    assert isinstance(out["needs_verification"], bool)
    assert out["action"] in {"deliver", "banner", "hold"}
    assert isinstance(out["risk"], float)
    assert 0.0 <= out["risk"] <= 1.0
    for intent in out["intents"]:
        assert set(intent) == {"name", "score", "evidence"}
        assert intent["name"] in INTENTS
        assert 0.0 <= intent["score"] <= 1.0
        assert isinstance(intent["evidence"], list)
        for quote in intent["evidence"]:
            assert isinstance(quote, str)
            # Evidence quotes the email, with account numbers masked as everywhere we show them.
            assert _squash(quote) in _squash(mask_numbers(email_text)), quote
    for signal in out["signals"]:
        assert set(signal) == {"name", "detail"}
        assert isinstance(signal["name"], str)
        assert isinstance(signal["detail"], str)
        assert signal["detail"]
    assert out["banner"] is None or (isinstance(out["banner"], str) and out["banner"])
    assert out["ticket"] is None
    assert out["model_version"] == model_version
    json.dumps(out)  # serialisable as is


def test_verdict_json_of_risky_and_benign_emails_has_exactly_the_contract_fields(
    detector, make_email, bank_change_json, lunch_json, shipped_manifest
):
    for data in (bank_change_json(), lunch_json()):
        email = make_email(data)
        out = detector.classify(email).to_json()
        _assert_contract(
            out,
            email_text=data["subject"] + "\n" + data["text"],
            model_version=shipped_manifest["model_version"],
        )
        assert out["message_id"] == data["message_id"]


def test_risky_verdict_has_intents_and_a_banner_and_benign_verdict_has_neither(
    detector, make_email, bank_change_json, lunch_json
):
    risky = detector.classify(make_email(bank_change_json())).to_json()
    benign = detector.classify(make_email(lunch_json())).to_json()

    assert risky["needs_verification"] is True
    assert risky["intents"]
    assert risky["action"] in {"banner", "hold"}
    assert isinstance(risky["banner"], str)
    assert benign["intents"] == []
    assert benign["banner"] is None


def test_plain_bank_change_request_needs_verification_as_payment_change_citing_the_ask(
    detector, make_email, bank_change_json, bank_change_ask
):
    out = detector.classify(make_email(bank_change_json())).to_json()

    assert out["needs_verification"] is True
    assert out["intents"][0]["name"] == "payment_change"
    assert out["intents"][0]["score"] == max(i["score"] for i in out["intents"])
    evidence = out["intents"][0]["evidence"]
    assert any(mask_numbers(bank_change_ask) in quote for quote in evidence), evidence
    assert not any("1555 5555" in quote for quote in evidence)
    assert "payment details" in out["banner"]


def test_lunch_invitation_is_delivered_without_verification(detector, make_email, lunch_json):
    out = detector.classify(make_email(lunch_json())).to_json()

    assert out["needs_verification"] is False
    assert out["action"] == "deliver"
    assert out["signals"] == []


@pytest.mark.parametrize(
    ("obfuscation", "subject", "key_words"),
    [
        (
            "cyrillic lookalikes",
            "New bаnk dеtаils for your рауments",  # Cyrillic а, е, р, у
            "Please uрdаtе our bаnk dеtаils, our new ІВАN",
        ),
        (
            "zero-width characters",
            "New b\u200bank de\u200ctails for your pay\u200dments",
            "Please up\u200bdate our ba\u200bnk det\u2060ails, our new I\u200cBAN",
        ),
        (
            "leetspeak",
            "N3w b4nk d3t4ils for your p4yments",
            "Pl3ase upd4te our b4nk d3t4ils, our new 1BAN",
        ),
    ],
)
def test_obfuscated_key_words_get_the_same_verdict_as_the_clean_request(
    detector, make_email, bank_change_json, obfuscation, subject, key_words
):
    clean_json = bank_change_json()
    clean = detector.classify(make_email(clean_json))
    text = clean_json["text"].replace("Please update our bank details, our new IBAN", key_words)
    assert text != clean_json["text"], obfuscation

    obfuscated = detector.classify(make_email(bank_change_json(subject=subject, text=text)))

    assert clean.needs_verification is True
    assert obfuscated.needs_verification == clean.needs_verification
    assert obfuscated.top_intent == clean.top_intent


def test_reply_to_on_another_domain_raises_reply_to_mismatch(detector, make_email, lunch_json):
    out = detector.classify(make_email(lunch_json(reply_to="anna.berg@elsewhere-mail.net")))

    assert "reply_to_mismatch" in [s.name for s in out.signals]


def test_sender_domain_imitating_a_brand_raises_lookalike_domain(detector, make_email, lunch_json):
    out = detector.classify(
        make_email(lunch_json(**{"from": "IT Desk <help@micros0ft-support.com>"}))
    )

    lookalikes = [s for s in out.signals if s.name == "lookalike_domain"]
    assert lookalikes
    assert "microsoft.com" in lookalikes[0].detail


def test_sender_domain_one_letter_off_a_vendor_raises_lookalike_domain(
    org_detector, make_email, lunch_json
):
    out = org_detector.classify(
        make_email(lunch_json(**{"from": "Mark Ellis <mark.ellis@acme-suplies.com>"}))
    )

    lookalikes = [s for s in out.signals if s.name == "lookalike_domain"]
    assert lookalikes
    assert "acme-supplies.com" in lookalikes[0].detail


def test_vendor_writing_from_its_real_domain_raises_no_lookalike(
    org_detector, make_email, lunch_json
):
    out = org_detector.classify(
        make_email(lunch_json(**{"from": "Mark Ellis <mark.ellis@acme-supplies.com>"}))
    )

    assert "lookalike_domain" not in [s.name for s in out.signals]


def test_vip_display_name_from_gmail_raises_display_name_impersonation(
    org_detector, make_email, lunch_json
):
    out = org_detector.classify(
        make_email(lunch_json(**{"from": "Sarah Okafor <sarah.okafor.office@gmail.com>"}))
    )

    names = [s.name for s in out.signals]
    assert "display_name_impersonation" in names
    detail = next(s.detail for s in out.signals if s.name == "display_name_impersonation")
    assert "Sarah Okafor" in detail


def test_vip_writing_from_her_own_address_raises_no_impersonation(
    org_detector, make_email, lunch_json
):
    out = org_detector.classify(
        make_email(lunch_json(**{"from": "Sarah Okafor <sarah.okafor@northgate.com>"}))
    )

    assert "display_name_impersonation" not in [s.name for s in out.signals]


def test_failed_spf_and_dmarc_in_authentication_results_raise_auth_failure(
    detector, make_email, lunch_json
):
    headers = {
        "Authentication-Results": "mx.northgate.com; spf=fail smtp.mailfrom=northgate.com; "
        "dkim=none; dmarc=fail header.from=northgate.com"
    }
    out = detector.classify(make_email(lunch_json(headers=headers)))

    failures = [s for s in out.signals if s.name == "auth_failure"]
    assert failures
    assert "SPF=fail" in failures[0].detail
    assert "DMARC=fail" in failures[0].detail


def test_passing_authentication_raises_no_auth_failure(detector, make_email, lunch_json):
    headers = {"Authentication-Results": "mx.northgate.com; spf=pass; dkim=pass; dmarc=pass"}
    out = detector.classify(make_email(lunch_json(headers=headers)))

    assert "auth_failure" not in [s.name for s in out.signals]


def test_vendor_email_with_an_iban_not_on_file_raises_details_differ_from_file(
    org_detector, make_email, bank_change_json
):
    out = org_detector.classify(make_email(bank_change_json())).to_json()

    differ = [s for s in out["signals"] if s["name"] == "details_differ_from_file"]
    assert differ
    assert "5555" in differ[0]["detail"]  # last four of the IBAN in the email
    assert "Acme Supplies" in differ[0]["detail"]


def test_vendor_email_quoting_the_iban_on_file_raises_no_details_differ(
    org_detector, make_email, bank_change_json
):
    data = bank_change_json()
    data["text"] = data["text"].replace(
        "GB33 BUKB 2020 1555 5555 55", "GB29 NWBK 6016 1331 9268 19"
    )
    out = org_detector.classify(make_email(data))

    assert "details_differ_from_file" not in [s.name for s in out.signals]


def test_benign_email_with_strong_signals_is_still_delivered_without_verification(
    org_detector, make_email, lunch_json
):
    data = lunch_json(
        **{
            "from": "Sarah Okafor <sarah.okafor@micros0ft-support.com>",
            "reply_to": "someone@elsewhere-mail.net",
            "headers": {"Authentication-Results": "mx.northgate.com; spf=fail; dmarc=fail"},
        }
    )
    out = org_detector.classify(make_email(data))

    names = {s.name for s in out.signals}
    assert {"lookalike_domain", "reply_to_mismatch", "auth_failure"} <= names
    assert out.needs_verification is False
    assert out.action == "deliver"
    assert out.banner is None


def test_risky_request_from_a_lookalike_domain_is_held(org_detector, make_email, bank_change_json):
    data = bank_change_json(**{"from": "Mark Ellis <mark.ellis@acme-suplies.com>"})
    out = org_detector.classify(make_email(data))

    assert "lookalike_domain" in [s.name for s in out.signals]
    assert out.needs_verification is True
    assert out.action == "hold"


def test_signals_raise_the_risk_of_a_risky_request(org_detector, make_email, bank_change_json):
    plain = org_detector.classify(
        make_email(bank_change_json(**{"from": "Mark Ellis <mark@unrelated-firm.org>"}))
    )
    spoofed = org_detector.classify(
        make_email(bank_change_json(**{"from": "Mark Ellis <mark.ellis@acme-suplies.com>"}))
    )

    assert plain.needs_verification
    assert spoofed.needs_verification
    assert spoofed.risk > plain.risk


def test_batch_classification_matches_one_at_a_time(
    detector, make_email, bank_change_json, lunch_json
):
    emails = [make_email(bank_change_json()), make_email(lunch_json())]

    batch = [v.to_json() for v in detector.classify_many(emails)]
    single = [detector.classify(e).to_json() for e in emails]

    assert batch == single


def test_reply_and_forward_prefixes_do_not_move_the_scores(
    detector: Detector, bank_change_json: Callable[..., dict[str, Any]]
) -> None:
    from app.mail.parse import email_from_json

    plain = detector.classify(email_from_json(bank_change_json()))
    for prefix in ("RE: ", "Fwd: ", "AW: WG: ", "Re[2]: "):
        subject = prefix + bank_change_json()["subject"]
        replied = detector.classify(email_from_json(bank_change_json(subject=subject)))
        assert replied.scores == plain.scores, prefix
