"""Text normalisation: obfuscated and plain spellings of a request must look alike to the model."""

from __future__ import annotations

import pytest

from app.detect.normalize import fold_chars, normalize


@pytest.mark.parametrize(
    ("obfuscated", "plain"),
    [
        ("Vеrify yоur раsswоrd", "verify your password"),  # Cyrillic е, о, а, р
        ("УОUR РАSSWОRD", "your password"),  # Cyrillic capitals
        ("ΡΑSSWΟRD", "password"),  # Greek capitals
        ("рayрal", "paypal"),
        ("ＰＡＹＰＡＬ", "paypal"),  # full-width
        ("Café résumé naïve", "cafe resume naive"),
    ],
)
def test_lookalike_characters_fold_to_plain_latin(obfuscated, plain):
    assert fold_chars(obfuscated) == plain
    assert normalize(obfuscated) == normalize(plain)


@pytest.mark.parametrize(
    "text",
    [
        "pass\u200bword",
        "pa\u200css\u200dword",
        "\ufeffpassword",
        "pass\u00adword",
        "pass\u2060word",
    ],
)
def test_zero_width_and_invisible_characters_are_removed(text):
    assert fold_chars(text) == "password"


@pytest.mark.parametrize(
    ("leet", "plain"),
    [
        ("p@ssw0rd", "password"),
        ("P@SSW0RD", "password"),
        ("buy a g1ft c4rd", "buy a gift card"),
        ("g1ft c4rds n0w", "gift cards now"),
        ("cl!ck here", "click here"),
        ("Verify your p@ssw0rd!", "verify your password!"),
    ],
)
def test_leetspeak_is_decoded(leet, plain):
    assert normalize(leet) == plain


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Urgent!!!", "urgent!"),
        ("Hello!", "hello!"),
        ("Buy g1ft c4rds n0w!!!", "buy gift cards now!"),
    ],
)
def test_exclamation_marks_after_a_word_stay_punctuation(text, expected):
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("spaced", "plain"),
    [
        ("enter your p a s s w o r d", "enter your password"),
        ("w.i.r.e the money", "wire the money"),
        ("g-i-f-t cards", "gift cards"),
    ],
)
def test_letter_spaced_words_are_joined(spaced, plain):
    assert normalize(spaced) == plain


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Enable 2FA today", "enable 2fa today"),
        ("Send the W-2 forms", "send the w-2 forms"),
        ("Our b2b portal", "our b2b portal"),
        ("Your W2 is ready", "your w2 is ready"),
    ],
)
def test_alphanumeric_terms_keep_their_meaning(text, expected):
    assert normalize(text) == expected


def test_urls_addresses_and_numbers_become_placeholders():
    text = (
        "Visit https://evil.example/Account/Verify or mail pay@evil.example about invoice 44312 "
        "for $5,000.00"
    )

    assert normalize(text) == ("visit zzloginurl or mail zzemail about invoice zznum for $ zznum")


@pytest.mark.parametrize(
    "url",
    [
        "https://login.micros0ft-support.example/owa",
        "http://www.example-bank.example/secure/SignIn?session=1",
        "https://docs.example.net/s/abc?auth=1",
        "https://wallet-recovery.example/unlock",
    ],
)
def test_links_about_signing_in_are_kept_as_a_placeholder(url):
    assert normalize(f"see {url} now") == "see zzloginurl now"


@pytest.mark.parametrize(
    "url",
    [
        "http://www.livejournal.com/talkread.bml?journal=jwz&itemid=48335",
        "https://lwn.net/Articles/912345/",
        "www.example.org/photos/moon.jpg",
    ],
)
def test_other_links_say_nothing_about_intent_and_are_dropped(url):
    assert normalize(f"see {url} now") == "see now"


def test_repetition_and_whitespace_are_squeezed():
    assert normalize("Heeeeello   there\t\tfriend???\n\n\n\nBye") == "heello there friend?\nbye"


def test_normalisation_is_idempotent_on_its_own_output():
    text = "URGENT!!! Send g1ft c4rds to Bоb, p a s s w o r d p@ssw0rd, see https://x.example"

    once = normalize(text)

    assert normalize(once) == once


def test_five_megabyte_single_line_normalises_without_error():
    out = normalize("A" * 5_000_000)

    assert out == "aa"
