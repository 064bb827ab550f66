"""Separating the newest message of a reply or forward from the quoted history."""

from __future__ import annotations

import pytest

from app.mail.quotes import split_quoted

THREADS = {
    "english_gmail": (
        "Sounds good, see you then.\n\n"
        "On Mon, 3 Jun 2024 at 10:02, Alice Smith <alice@example.com> wrote:\n"
        "> Can we move the payment to the new account?\n"
    ),
    "english_attribution_wrapped": (
        "Sounds good, see you then.\n\n"
        "On Mon, 3 Jun 2024 at 10:02, Alice Smith <alice@example.com>\n"
        "wrote:\n"
        "> Can we move the payment to the new account?\n"
    ),
    "french_gmail": (
        "Sounds good, see you then.\n\n"
        "Le lun. 3 juin 2024 à 10:02, Alice Martin <alice@example.fr> a écrit :\n"
        "> Pouvez-vous mettre à jour le RIB ?\n"
    ),
    "german_gmail": (
        "Sounds good, see you then.\n\n"
        "Am Mo., 3. Juni 2024 um 10:02 Uhr schrieb Anna Müller <anna@example.de>:\n"
        "> Bitte überweisen Sie heute.\n"
    ),
    "spanish_gmail": (
        "Sounds good, see you then.\n\n"
        "El lun, 3 jun 2024 a las 10:02, Ana García (<ana@example.es>) escribió:\n"
        "> Necesito el pago hoy.\n"
    ),
    "english_outlook": (
        "Sounds good, see you then.\n\n"
        "From: Bob Jones <bob@example.com>\nSent: Monday, June 3, 2024 10:02 AM\n"
        "To: Carol <carol@example.com>\nSubject: Invoice 443\n\nPlease pay invoice 443.\n"
    ),
    "french_outlook": (
        "Sounds good, see you then.\n\n"
        "De : Bob Jones <bob@example.com>\nEnvoyé : lundi 3 juin 2024 10:02\n"
        "À : Carol <carol@example.com>\nObjet : Facture 443\n\nMerci de régler la facture 443.\n"
    ),
    "german_outlook": (
        "Sounds good, see you then.\n\n"
        "Von: Bob Jones <bob@example.com>\nGesendet: Montag, 3. Juni 2024 10:02\n"
        "An: Carol <carol@example.com>\nBetreff: Rechnung 443\n\nBitte Rechnung 443 bezahlen.\n"
    ),
    "spanish_outlook": (
        "Sounds good, see you then.\n\n"
        "De: Bob Jones <bob@example.com>\nEnviado: lunes, 3 de junio de 2024 10:02\n"
        "Para: Carol <carol@example.com>\nAsunto: Factura 443\n\nPor favor pague la factura 443.\n"
    ),
    "english_original_message": (
        "Sounds good, see you then.\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\n"
        "To: Carol\nSubject: hi\n\nold text\n"
    ),
    "french_original_message": (
        "Sounds good, see you then.\n\n-----Message d'origine-----\nDe : Bob\nold text\n"
    ),
    "german_original_message": (
        "Sounds good, see you then.\n\n-----Ursprüngliche Nachricht-----\nVon: Bob\nold text\n"
    ),
    "spanish_original_message": (
        "Sounds good, see you then.\n\n-----Mensaje original-----\nDe: Bob\nold text\n"
    ),
    "outlook_underscore_rule": (
        "Sounds good, see you then.\n\n________________________________\n"
        "From: Bob <bob@example.com>\nSent: Monday\nold text\n"
    ),
}


@pytest.mark.parametrize("body", THREADS.values(), ids=THREADS.keys())
def test_reply_threads_separate_the_newest_message_from_quoted_history(body):
    split = split_quoted(body)

    assert split.newest == "Sounds good, see you then."
    assert split.quoted
    assert split.quoted.splitlines()[-1] == body.rstrip("\n").splitlines()[-1]
    assert split.forwarded is False


FORWARDS = {
    "english": "---------- Forwarded message ---------",
    "french": "-------- Message transféré --------",
    "german": "---------- Weitergeleitete Nachricht ----------",
    "spanish": "---------- Mensaje reenviado ---------",
}


@pytest.mark.parametrize("separator", FORWARDS.values(), ids=FORWARDS.keys())
def test_forwarded_block_below_a_comment_is_quoted_and_marked_forwarded(separator):
    body = f"FYI, this looks odd.\n\n{separator}\nFrom: X <x@example.com>\nSubject: s\n\nold text\n"

    split = split_quoted(body)

    assert split.newest == "FYI, this looks odd."
    assert split.quoted.startswith(separator)
    assert split.quoted.endswith("old text")
    assert split.forwarded is True


@pytest.mark.parametrize(
    "opening",
    ["---------- Forwarded message ---------", "Begin forwarded message:"],
)
def test_bare_forward_makes_the_forwarded_text_the_newest_message(opening):
    body = f"{opening}\n\nFrom: CEO <ceo@evil.example>\nSubject: Urgent\n\nBuy gift cards now.\n"

    split = split_quoted(body)

    assert split.newest.endswith("Buy gift cards now.")
    assert split.quoted == ""
    assert split.forwarded is True


def test_reply_that_reports_a_quoted_phish_keeps_the_phish_in_quoted():
    body = (
        "Hi IT, I think this is phishing. I did not click anything.\n\n"
        "On Tue, 4 Jun 2024 at 09:12, Microsoft Support <it@micros0ft-login.example> wrote:\n"
        "> Your password expires today. Verify your account at\n"
        "> http://micros0ft-login.example/verify and enter your password.\n"
    )

    split = split_quoted(body)

    assert split.newest == "Hi IT, I think this is phishing. I did not click anything."
    assert "enter your password" in split.quoted
    assert "password" not in split.newest


def test_forward_to_security_keeps_the_phish_out_of_the_newest_message():
    body = (
        "Please check this one.\n\n---------- Forwarded message ---------\n"
        "From: CEO <ceo@evil.example>\nSubject: Wire\n\n"
        "Wire 48,000 EUR to IBAN DE89 3704 0044 0532 0130 00.\n"
    )

    split = split_quoted(body)

    assert split.newest == "Please check this one."
    assert "IBAN" in split.quoted


def test_interleaved_gt_quotes_are_quoted_and_answers_stay_newest():
    body = "Hi,\n> question one?\nAnswer one.\n> question two?\nAnswer two."

    split = split_quoted(body)

    assert split.newest == "Hi,\nAnswer one.\nAnswer two."
    assert split.quoted == "> question one?\n> question two?"


def test_body_of_only_gt_lines_is_unquoted_into_newest():
    split = split_quoted("> Please wire the money today.\n>> Thanks, CEO")

    assert split.newest == "Please wire the money today.\nThanks, CEO"
    assert split.quoted == ""


def test_very_short_reply_above_a_quote_is_kept():
    split = split_quoted("ok\n> Please buy the gift cards.")

    assert split.newest.startswith("ok")
    assert "Please buy the gift cards." in split.newest


def test_mail_without_history_is_all_newest():
    split = split_quoted("Hello,\nOn second thought, let's talk on Monday.\nBye")

    assert split.newest == "Hello,\nOn second thought, let's talk on Monday.\nBye"
    assert split.quoted == ""
    assert split.forwarded is False


def test_a_from_line_in_prose_does_not_open_history():
    body = "From: the finance team's perspective, the budget is fine.\nLet's proceed."

    assert split_quoted(body).quoted == ""


def test_empty_body_splits_into_empty_parts():
    split = split_quoted("")

    assert (split.newest, split.quoted, split.forwarded) == ("", "", False)
