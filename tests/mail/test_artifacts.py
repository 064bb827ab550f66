"""Bank details, phone numbers, links and amounts found in an email's text."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.mail.artifacts import Link, extract_artifacts, fingerprint, registered_domain

KEY = b"test-fingerprint-key-0123456789ab"


def accounts(text: str) -> list[tuple[str, str, bool | None, str | None]]:
    return [
        (a.kind, a.last4, a.valid, a.country) for a in extract_artifacts(text, key=KEY).accounts
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Please pay to IBAN GB82 WEST 1234 5698 7654 32 from now on.",
        "IBAN: GB82WEST12345698765432.",
        "New account GB82-WEST-1234-5698-7654-32 please",
    ],
)
def test_iban_with_a_valid_checksum_is_found_and_masked(text):
    assert accounts(text) == [("iban", "5432", True, "GB")]


def test_iban_with_a_wrong_checksum_is_reported_invalid():
    assert accounts("IBAN GB82 WEST 1234 5698 7654 33 thanks") == [("iban", "5433", False, "GB")]
    assert accounts("Konto DE00 3704 0044 0532 0130 00 bitte") == [("iban", "3000", False, "DE")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("IBAN GB82 WEST 1234 5698 7654 32 ASAP", [("iban", "5432", True, "GB")]),
        (
            "IBAN DE89 3704 0044 0532 0130 00 BIC DEUTDEFF",
            [("iban", "3000", True, "DE"), ("swift", "DEFF", True, "DE")],
        ),
        ("IBAN GB82 WEST 1234 5698 7654 33 TODAY", [("iban", "5433", False, "GB")]),
    ],
)
def test_iban_followed_by_an_upper_case_word_keeps_only_the_iban(text, expected):
    assert accounts(text) == expected


def test_aba_routing_numbers_are_checked():
    assert accounts("Routing number: 021000021") == [("routing", "0021", True, "US")]
    assert accounts("ABA 123456789") == [("routing", "6789", False, "US")]


def test_account_sort_code_bsb_and_swift_are_found_without_checksums():
    found = accounts("Account number: 12345678. Sort code 20-00-00. BSB 062-000. SWIFT: NWBKGB2L.")

    assert sorted(found, key=lambda a: a[0]) == [
        ("account", "5678", None, None),
        ("bsb", "2000", None, "AU"),
        ("sort_code", "0000", None, "GB"),
        ("swift", "GB2L", True, "GB"),
    ]


def test_same_account_written_twice_is_listed_once_with_a_keyed_fingerprint():
    found = extract_artifacts(
        "IBAN GB82 WEST 1234 5698 7654 32, again: GB82WEST12345698765432", key=KEY
    ).accounts

    assert len(found) == 1
    assert found[0].fingerprint == fingerprint("GB82WEST12345698765432", KEY)
    assert found[0].fingerprint != fingerprint("GB82WEST12345698765432", b"another key")
    assert "GB82WEST12345698765432" not in repr(found[0])


def test_phone_numbers_in_several_formats_are_normalised_to_e164():
    phones = extract_artifacts(
        "Call me on +44 20 7946 0958, or (212) 555-0187, or 415.555.2671 after 5pm.", key=KEY
    ).phones

    assert phones == ["+442079460958", "+12125550187", "+14155552671"]


def test_phone_numbers_use_the_default_region_for_national_formats():
    phones = extract_artifacts("Rufen Sie 030 901820 an.", key=KEY, default_region="DE").phones

    assert phones == ["+4930901820"]


def test_links_carry_their_registered_domain():
    links = extract_artifacts(
        "Sign in at https://secure.login.example.co.uk/verify?x=1, "
        "or www.paypal.com.evil.example.com/x "
        "or http://192.168.0.1/a.",
        key=KEY,
    ).links

    assert [(link.url, link.domain) for link in links] == [
        ("https://secure.login.example.co.uk/verify?x=1", "example.co.uk"),
        ("www.paypal.com.evil.example.com/x", "example.com"),
        ("http://192.168.0.1/a", "192.168.0.1"),
    ]


def test_html_links_are_added_with_their_text_and_non_web_schemes_are_skipped():
    links = extract_artifacts(
        "body text",
        key=KEY,
        html_links=[("Your bank", "https://bank.example.com.au/login"), ("mail", "mailto:a@b.c")],
    ).links

    assert links == [Link("https://bank.example.com.au/login", "example.com.au", "Your bank")]


def test_links_are_shown_defanged_so_they_cannot_be_clicked():
    link = Link(url="https://evil.example.co.uk/pay", domain="example.co.uk")

    assert link.defanged == "hxxps://evil[.]example[.]co[.]uk/pay"
    assert (
        Link(url="www.evil.example/x", domain="evil.example").defanged == "www[.]evil[.]example/x"
    )


def test_already_defanged_links_in_text_are_not_treated_as_live_links():
    found = extract_artifacts("Reported: hxxps://bad[.]example[.]com/pay", key=KEY)

    assert found.links == []


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("https://a.b.example.co.uk/x", "example.co.uk"),
        ("MAIL.Example.COM", "example.com"),
        ("http://user@pay.example.com.au:8443/x", "example.com.au"),
        ("10.0.0.1", "10.0.0.1"),
        ("", ""),
    ],
)
def test_registered_domain_uses_the_public_suffix_list(host, domain):
    assert registered_domain(host) == domain


@pytest.mark.parametrize(
    ("text", "amount", "currency"),
    [
        ("$1,250.00", "1250.00", "USD"),
        ("€2.500,50", "2500.50", "EUR"),
        ("1.234,56 €", "1234.56", "EUR"),
        ("3.000 EUR", "3000", "EUR"),
        ("£15k", "15000", "GBP"),
        ("USD 1 000 000", "1000000", "USD"),
        ("45 dollars", "45", "USD"),
        ("1'250.75 CHF", "1250.75", "CHF"),
        ("US$99", "99", "USD"),
        ("EUR 7,5 million", "7500000", "EUR"),
        ("Pay 5,000 USD today", "5000", "USD"),
        ("₹ 40000", "40000", "INR"),
    ],
)
def test_money_amounts_in_several_formats(text, amount, currency):
    amounts = extract_artifacts(text, key=KEY).amounts

    assert [(m.amount, m.currency) for m in amounts] == [(Decimal(amount), currency)]


def test_largest_amount_ranks_the_request():
    found = extract_artifacts("Fee of $250, then wire €48.000,00 and £1,200.", key=KEY)

    largest = found.largest_amount()
    assert largest is not None
    assert (largest.amount, largest.currency) == (Decimal("48000.00"), "EUR")
    assert extract_artifacts("no money here", key=KEY).largest_amount() is None


def test_plain_numbers_without_currency_are_not_amounts():
    assert extract_artifacts("Invoice 44312 is due on 2024-06-30.", key=KEY).amounts == []


def test_hostile_text_is_scanned_with_bounded_results():
    text = " ".join(f"https://x{i}.example.com +1 212 555 {i:04d} ${i}" for i in range(2000))

    found = extract_artifacts(text * 10, key=KEY)

    assert len(found.links) <= 50
    assert len(found.phones) <= 50
    assert len(found.amounts) <= 50


def test_five_megabyte_single_line_is_scanned_without_error():
    found = extract_artifacts("A" * 5_000_000, key=KEY)

    assert (found.accounts, found.phones, found.links, found.amounts) == ([], [], [], [])


def test_a_count_of_cards_gives_the_total_at_stake() -> None:
    from app.mail.artifacts import extract_artifacts

    def largest(text: str) -> tuple[str, str] | None:
        money = extract_artifacts(text, key=b"k").largest_amount()
        return (str(money.amount), money.currency) if money else None

    assert largest("Please buy eight 100 GBP Apple cards today") == ("800", "GBP")
    assert largest("get 5 x $200 gift cards") == ("1000", "USD")
    assert largest("Invoice 2024 for $500 is due") == ("500", "USD")
