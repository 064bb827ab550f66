"""Tokens and outcomes on real Postgres: hashed at rest, expiring, single use, labelled."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import transaction, utcnow
from app.core.errors import InvalidInput
from app.tickets.models import Ticket, TicketEvent
from app.tickets.service import verify_chain
from app.verification.models import FeedbackLabel, VerificationToken
from app.verification.service import ConfirmResult, confirm_verification, view_verification
from app.verification.tokens import (
    TokenUnavailable,
    consume_token,
    find_valid_token,
    form_check,
    form_check_ok,
    hash_token,
    mint_token,
)


def _confirm(session: Session, token: str, outcome: str = "legitimate", **kw: str) -> ConfirmResult:
    return confirm_verification(
        session,
        token=token,
        outcome=outcome,
        verifier=kw.get("verifier", "Ann Lee"),
        channel=kw.get("channel", "Phone call to the number on file"),
        note=kw.get("note", "Mark confirmed the new account himself."),
    )


def _status_events(session: Session, ticket: Ticket) -> list[TicketEvent]:
    return list(
        session.scalars(
            select(TicketEvent)
            .where(TicketEvent.ticket_id == ticket.id, TicketEvent.actor.like("verifier:%"))
            .order_by(TicketEvent.seq)
        )
    )


def test_minted_token_has_256_random_bits_and_is_stored_only_as_its_sha256(
    db: Session, make_ticket: Callable[..., Ticket]
) -> None:
    ticket = make_ticket(db)
    raw, row = mint_token(db, ticket_id=ticket.id, ttl_hours=72)
    assert len(base64.urlsafe_b64decode(raw + "=")) == 32
    assert row.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    # The raw token is in no column of any stored token row.
    dump = str(
        db.execute(text("select string_agg(t::text, '|') from verification_token t")).scalar()
    )
    assert row.token_hash in dump
    assert raw not in dump
    expected = row.created_at + timedelta(hours=72)
    assert row.expires_at == expected


def test_each_mint_gives_a_different_token(db: Session, make_ticket: Callable[..., Ticket]) -> None:
    ticket = make_ticket(db)
    tokens = {mint_token(db, ticket_id=ticket.id, ttl_hours=1)[0] for _ in range(20)}
    assert len(tokens) == 20


def test_form_check_is_derived_from_the_token_and_compared_exactly() -> None:
    token = "A" * 43
    check = form_check(token)
    assert check == hashlib.sha256(b"form:" + token.encode()).hexdigest()[:16]
    assert form_check_ok(token, check)
    assert not form_check_ok(token, form_check("B" * 43))
    assert not form_check_ok(token, "")


def test_legitimate_outcome_verifies_the_ticket_and_labels_each_message(
    db: Session, make_ticket: Callable[..., Ticket]
) -> None:
    ticket = make_ticket(db, messages=2)
    raw, row = mint_token(db, ticket_id=ticket.id, ttl_hours=72)
    result = _confirm(db, raw, "legitimate")
    assert result.status == "verified_legitimate"
    assert result.status_changed is True
    assert ticket.status == "verified_legitimate"
    assert ticket.closed_at is not None
    db.refresh(row)
    assert row.used_at is not None
    assert (row.outcome, row.verifier, row.channel) == (
        "legitimate",
        "Ann Lee",
        "Phone call to the number on file",
    )
    assert row.note == "Mark confirmed the new account himself."
    (event,) = _status_events(db, ticket)
    assert event.actor == "verifier:Ann Lee"
    assert (event.from_status, event.to_status) == ("open", "verified_legitimate")
    assert event.data["channel"] == "Phone call to the number on file"
    assert event.data["note"] == "Mark confirmed the new account himself."
    labels = list(db.scalars(select(FeedbackLabel).where(FeedbackLabel.ticket_id == ticket.id)))
    assert len(labels) == 2
    assert {(lab.label, lab.outcome, lab.intent) for lab in labels} == {
        ("risky", "legitimate", "payment_change")
    }
    assert len({lab.message_id for lab in labels}) == 2
    assert verify_chain(db, ticket.id) == (True, None)


def test_fraudulent_outcome_confirms_fraud(db: Session, make_ticket: Callable[..., Ticket]) -> None:
    ticket = make_ticket(db, messages=1, status="in_progress")
    raw, _ = mint_token(db, ticket_id=ticket.id, ttl_hours=72)
    result = _confirm(db, raw, "fraudulent")
    assert (result.status, ticket.status) == ("confirmed_fraud", "confirmed_fraud")
    assert "Do not act on the request" in result.message
    label = db.scalars(select(FeedbackLabel).where(FeedbackLabel.ticket_id == ticket.id)).one()
    assert (label.label, label.outcome) == ("risky", "fraudulent")


def test_could_not_reach_moves_an_open_ticket_to_in_progress_and_uses_up_the_link(
    db: Session, make_ticket: Callable[..., Ticket]
) -> None:
    ticket = make_ticket(db)
    raw, _ = mint_token(db, ticket_id=ticket.id, ttl_hours=72)
    result = _confirm(db, raw, "could_not_reach", note="voicemail twice")
    assert ticket.status == "in_progress"
    assert result.status_changed is True
    assert "new link" in result.message
    (event,) = _status_events(db, ticket)
    assert event.data["outcome"] == "could_not_reach"
    # No label: not reaching someone says nothing about whether the request was real.
    assert db.scalar(select(func.count()).select_from(FeedbackLabel)) == 0
    with pytest.raises(TokenUnavailable):
        _confirm(db, raw, "legitimate")


def test_could_not_reach_on_an_in_progress_ticket_records_an_event_and_keeps_the_status(
    db: Session, make_ticket: Callable[..., Ticket]
) -> None:
    ticket = make_ticket(db, status="in_progress")
    raw, _ = mint_token(db, ticket_id=ticket.id, ttl_hours=72)
    result = _confirm(db, raw, "could_not_reach")
    assert ticket.status == "in_progress"
    assert result.status_changed is False
    (event,) = _status_events(db, ticket)
    assert (event.kind, event.to_status) == ("verification", None)


def test_outcome_for_a_closed_ticket_is_recorded_but_the_status_is_kept(
    db: Session, make_ticket: Callable[..., Ticket]
) -> None:
    ticket = make_ticket(db, status="expired", closed_at=utcnow(), outcome="expired")
    raw, _ = mint_token(db, ticket_id=ticket.id, ttl_hours=72)
    result = _confirm(db, raw, "fraudulent")
    assert ticket.status == "expired"
    assert result.status_changed is False
    assert "already expired" in result.message
    assert "did not change" in result.message
    (event,) = _status_events(db, ticket)
    assert event.kind == "verification"
    assert event.data["status_kept"] == "expired"
    assert event.data["outcome"] == "fraudulent"
    assert verify_chain(db, ticket.id) == (True, None)


def test_expired_token_is_refused_and_changes_nothing(
    db: Session, make_ticket: Callable[..., Ticket]
) -> None:
    ticket = make_ticket(db)
    raw, row = mint_token(db, ticket_id=ticket.id, ttl_hours=72)
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.flush()
    assert find_valid_token(db, raw) is None
    assert view_verification(db, token=raw) is None
    with pytest.raises(TokenUnavailable):
        _confirm(db, raw)
    db.refresh(row)
    assert row.used_at is None
    assert ticket.status == "open"
    assert _status_events(db, ticket) == []


def test_second_use_is_refused_and_the_first_outcome_stands(
    db: Session, make_ticket: Callable[..., Ticket]
) -> None:
    ticket = make_ticket(db)
    raw, row = mint_token(db, ticket_id=ticket.id, ttl_hours=72)
    _confirm(db, raw, "legitimate", verifier="Ann Lee")
    with pytest.raises(TokenUnavailable):
        _confirm(db, raw, "fraudulent", verifier="Mallory")
    db.refresh(row)
    assert (row.outcome, row.verifier) == ("legitimate", "Ann Lee")
    assert ticket.status == "verified_legitimate"
    assert len(_status_events(db, ticket)) == 1


def test_unknown_and_malformed_tokens_are_refused_like_used_ones(db: Session) -> None:
    for token in ("x" * 43, "", "../../etc/passwd", "a" * 5000, "тест" * 10):
        assert view_verification(db, token=token) is None
        with pytest.raises(TokenUnavailable) as info:
            _confirm(db, token)
        assert info.value.status_code == 410


def test_a_bad_form_is_refused_without_using_up_the_token(
    db: Session, make_ticket: Callable[..., Ticket]
) -> None:
    ticket = make_ticket(db)
    raw, row = mint_token(db, ticket_id=ticket.id, ttl_hours=72)
    for bad in (
        {"outcome": "maybe"},
        {"verifier": ""},
        {"verifier": "x" * 121},
        {"channel": ""},
        {"note": "n" * 5001},
        {"note": "null byte \x00 here"},
    ):
        kwargs: dict[str, Any] = {
            "outcome": "legitimate",
            "verifier": "Ann",
            "channel": "phone",
            "note": "",
            **bad,
        }
        with pytest.raises(InvalidInput):
            confirm_verification(db, token=raw, **kwargs)
    db.refresh(row)
    assert row.used_at is None
    assert find_valid_token(db, raw) is not None


def test_a_second_link_for_the_same_ticket_does_not_label_the_messages_twice(
    db: Session, make_ticket: Callable[..., Ticket]
) -> None:
    ticket = make_ticket(db, messages=2)
    first, _ = mint_token(db, ticket_id=ticket.id, ttl_hours=72)
    second, _ = mint_token(db, ticket_id=ticket.id, ttl_hours=72)
    _confirm(db, first, "fraudulent")
    _confirm(db, second, "fraudulent", verifier="Bo")
    assert db.scalar(select(func.count()).select_from(FeedbackLabel)) == 2
    assert len(_status_events(db, ticket)) == 2


def test_consume_token_matches_by_hash_only(
    db: Session, make_ticket: Callable[..., Ticket]
) -> None:
    ticket = make_ticket(db)
    raw, row = mint_token(db, ticket_id=ticket.id, ttl_hours=72)
    with pytest.raises(TokenUnavailable):
        # The stored hash itself is not a token: a database leak gives no working links.
        consume_token(db, row.token_hash, outcome="legitimate", verifier="a", channel="b", note="")
    used = consume_token(db, raw, outcome="legitimate", verifier="a", channel="b", note="")
    assert used.id == row.id
    assert hash_token(raw) == row.token_hash


def test_ten_concurrent_confirmations_of_one_token_have_exactly_one_winner(
    committed: sessionmaker[Session], make_ticket: Callable[..., Ticket]
) -> None:
    with transaction(committed) as session:
        ticket = make_ticket(session, messages=1)
        raw, _ = mint_token(session, ticket_id=ticket.id, ttl_hours=72)
        ticket_id = ticket.id
    barrier = threading.Barrier(10)
    winners: list[tuple[str, str]] = []
    losers: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def attempt(i: int) -> None:
        outcome = "legitimate" if i % 2 else "fraudulent"
        name = f"verifier-{i}"
        barrier.wait()
        try:
            with transaction(committed) as session:
                _confirm(session, raw, outcome, verifier=name)
            with lock:
                winners.append((name, outcome))
        except TokenUnavailable:
            with lock:
                losers.append(name)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len(winners) == 1
    assert len(losers) == 9
    (name, outcome) = winners[0]
    with transaction(committed) as session:
        ticket = session.get_one(Ticket, ticket_id)
        expected = "verified_legitimate" if outcome == "legitimate" else "confirmed_fraud"
        assert ticket.status == expected
        token = session.scalars(select(VerificationToken)).one()
        assert token.verifier == name
        (event,) = _status_events(session, ticket)
        assert event.actor == f"verifier:{name}"
        assert session.scalar(select(func.count()).select_from(FeedbackLabel)) == 1
        assert verify_chain(session, ticket_id) == (True, None)
