"""The snapshot built from an imported directory drives detection's directory signals."""

from __future__ import annotations

import pytest

from app.detect.engine import Detector
from app.directory.service import import_directory, load_snapshot
from tests.directory.helpers import KEY

GIFT_CARD_TEXT = (
    "Hi Tom,\n\nAre you at your desk? I need you to buy six Apple gift cards of 200 GBP each for "
    "a client this morning. Scratch the backs and send me photos of the codes. Keep it between "
    "us for now.\n\nSarah"
)


@pytest.fixture
def snapshot(db, example_yaml):
    """The detection snapshot after importing the example directory."""
    import_directory(db, example_yaml, key=KEY, actor="test")
    return load_snapshot(db)


@pytest.fixture(scope="module")
def keyed_detector() -> Detector:
    """The shipped model, fingerprinting with the key the import used."""
    return Detector.from_dir(fingerprint_key=KEY)


def _signals(verdict, name):
    return [s for s in verdict.signals if s.name == name]


def test_vendor_email_with_an_iban_not_on_file_raises_details_differ_from_file(
    keyed_detector, snapshot, make_email, bank_change_json
):
    # From Acme Supplies' real domain, asking to pay GB33 BUKB ... 5555 (on file: ... 6819).
    verdict = keyed_detector.classify(make_email(bank_change_json()), directory=snapshot)

    differ = _signals(verdict, "details_differ_from_file")
    assert verdict.needs_verification is True
    assert differ, [s.name for s in verdict.signals]
    assert "ending 5555" in differ[0].detail
    assert "Acme Supplies" in differ[0].detail
    assert verdict.action == "hold"


def test_vendor_email_quoting_the_iban_on_file_does_not_raise_details_differ(
    keyed_detector, snapshot, make_email, bank_change_json
):
    email = bank_change_json()
    email["text"] = email["text"].replace(
        "GB33 BUKB 2020 1555 5555 55", "GB29 NWBK 6016 1331 9268 19"
    )
    assert email["text"] != bank_change_json()["text"]

    verdict = keyed_detector.classify(make_email(email), directory=snapshot)

    assert verdict.needs_verification is True  # still a payment-change request: still verified
    assert _signals(verdict, "details_differ_from_file") == []


def test_ceo_name_from_a_gmail_address_raises_display_name_impersonation(
    keyed_detector, snapshot, make_email, lunch_json
):
    email = lunch_json(
        **{
            "from": "Sarah Okafor <sarah.okafor.ceo@gmail.com>",
            "subject": "Quick favour",
            "text": GIFT_CARD_TEXT,
        }
    )

    verdict = keyed_detector.classify(make_email(email), directory=snapshot)

    impersonation = _signals(verdict, "display_name_impersonation")
    assert impersonation, [s.name for s in verdict.signals]
    assert "Sarah Okafor (CEO)" in impersonation[0].detail
    assert "sarah.okafor.ceo@gmail.com" in impersonation[0].detail


def test_ceo_writing_from_her_address_on_file_is_not_an_impersonation(
    keyed_detector, snapshot, make_email, lunch_json
):
    email = lunch_json(
        **{
            "from": "Sarah Okafor <sarah.okafor@northgate.com>",
            "subject": "Quick favour",
            "text": GIFT_CARD_TEXT,
        }
    )

    verdict = keyed_detector.classify(make_email(email), directory=snapshot)

    assert _signals(verdict, "display_name_impersonation") == []


def test_without_the_directory_neither_signal_is_raised(
    keyed_detector, make_email, bank_change_json, lunch_json
):
    gmail = lunch_json(**{"from": "Sarah Okafor <sarah.okafor.ceo@gmail.com>"})

    names = {
        s.name
        for data in (bank_change_json(), gmail)
        for s in keyed_detector.classify(make_email(data)).signals
    }

    assert "details_differ_from_file" not in names
    assert "display_name_impersonation" not in names
