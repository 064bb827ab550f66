"""Header values: RFC 2047 words, mailboxes with awkward display names, Authentication-Results."""

from __future__ import annotations

import email.header

import pytest

from app.mail.parse import (
    decode_header_value,
    parse_address,
    parse_address_list,
    parse_auth_results,
)
from app.mail.schemas import AuthResults


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("=?utf-8?b?w4lsw6huZQ==?= Dupont", "Élène Dupont"),
        ("=?iso-8859-1?q?Fran=E7ois_Martin?=", "François Martin"),
        ("Re: =?UTF-8?Q?Facture_n=C2=B0_443?= urgent", "Re: Facture n° 443 urgent"),
        (
            "=?utf-8?q?Gesch=C3=A4ftsf=C3=BChrer?= =?utf-8?q?_M=C3=BCller?=",
            "Geschäftsführer Müller",
        ),
        ("=?windows-1252?q?=80_5000_transfer?=", "€ 5000 transfer"),
        ("=?koi8-r?b?8NLJ18XU?=", "Привет"),
        ("plain ascii subject", "plain ascii subject"),
    ],
)
def test_rfc_2047_encoded_words_are_decoded(raw, decoded):
    assert decode_header_value(raw) == decoded


@pytest.mark.parametrize(
    "raw",
    [
        "=?x-unknown?q?hello=20world?=",
        "=?utf-8?q?caf=E9?=",  # latin-1 byte declared as utf-8
        "=?utf-8?b?!!!not-base64?=",
        "=?utf-8?q?never closed",
        "=?rot13?q?uryyb?=",  # a codec that is not a text encoding
        "=??q?empty charset?=",
    ],
)
def test_broken_or_unknown_header_charsets_never_raise(raw):
    decoded = decode_header_value(raw)

    assert isinstance(decoded, str)
    assert decoded


def test_unknown_charset_falls_back_to_readable_text():
    assert decode_header_value("=?x-unknown?q?hello=20world?=") == "hello world"
    assert decode_header_value("=?utf-8?q?caf=E9?=") == "café"


def test_raw_8bit_header_is_read_as_utf8_or_windows_1252_not_replacement_characters():
    latin1 = email.header.Header("J\udce9r\udcf4me", charset="unknown-8bit")
    utf8 = email.header.Header("J\udcc3\udca9r\udcc3\udcb4me", charset="unknown-8bit")

    assert decode_header_value(latin1) == "Jérôme"
    assert decode_header_value(utf8) == "Jérôme"


def test_header_value_of_none_is_empty_and_control_characters_are_dropped():
    assert decode_header_value(None) == ""
    assert decode_header_value("Urgent\x00\x07 wire") == "Urgent wire"


@pytest.mark.parametrize(
    ("raw", "name", "address"),
    [
        ("Smith, John <john.smith@example.com>", "Smith, John", "john.smith@example.com"),
        ("Smith, CPA, Jane <jane@example.co.uk>", "Smith, CPA, Jane", "jane@example.co.uk"),
        ('"Doe, Jane" <Jane@Example.com>', "Doe, Jane", "jane@example.com"),
        ("Accounts Payable <ap@vendor.example>", "Accounts Payable", "ap@vendor.example"),
        ("bare@example.org", "", "bare@example.org"),
        ("<angle@example.org>", "", "angle@example.org"),
    ],
)
def test_mailbox_display_names_with_unquoted_commas_keep_name_and_address(raw, name, address):
    parsed = parse_address(raw)

    assert parsed is not None
    assert (parsed.name, parsed.address) == (name, address)
    assert parsed.domain == address.rsplit("@", 1)[1]


def test_mailbox_without_an_address_keeps_the_name_and_empty_input_is_none():
    named = parse_address("Undisclosed Sender")

    assert named is not None
    assert (named.name, named.address, named.domain) == ("Undisclosed Sender", "", "")
    assert parse_address("") is None
    assert parse_address(None) is None


def test_address_list_splits_comma_separated_recipients():
    parsed = parse_address_list(["a@example.com, B <b@example.com>", "c@example.com"])

    assert [(a.name, a.address) for a in parsed] == [
        ("", "a@example.com"),
        ("B", "b@example.com"),
        ("", "c@example.com"),
    ]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "mx.corp.example; spf=pass smtp.mailfrom=vendor.example;"
            " dkim=pass header.d=vendor.example;"
            " dmarc=pass header.from=vendor.example",
            AuthResults("pass", "pass", "pass"),
        ),
        (
            "mx.corp.example; spf=softfail (domain does not designate 1.2.3.4)"
            " smtp.mailfrom=x.example;"
            " dkim=none; dmarc=fail (p=reject) header.from=x.example",
            AuthResults("softfail", "none", "fail"),
        ),
        ("mx.corp.example; SPF=FAIL; DKIM = permerror", AuthResults("fail", "permerror", None)),
        ("mx.corp.example; none", AuthResults()),
    ],
)
def test_authentication_results_spf_dkim_dmarc_outcomes(header, expected):
    assert parse_auth_results(header) == expected


def test_authentication_failures_lists_only_failing_mechanisms():
    auth = parse_auth_results("mx; spf=softfail; dkim=pass; dmarc=temperror")

    assert auth.failures() == ["spf", "dmarc"]
    assert parse_auth_results(None).failures() == []


def test_markup_after_an_address_does_not_reach_the_domain() -> None:
    from app.mail.parse import parse_address

    parsed = parse_address('Accounts <pay"><svg onload=alert(1)>@acme-payments.example>')
    assert parsed is not None
    assert parsed.domain == "acme-payments.example"
