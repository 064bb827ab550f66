"""`countersign user ...`: create (stdin or prompt), list, disable, enable, unlock."""

from __future__ import annotations

import argparse
import io

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.users import commands
from app.users import service as users
from app.users.models import User
from tests.dashboard.helpers import PASSWORD


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="countersign")
    commands.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture(autouse=True)
def _database(
    monkeypatch: pytest.MonkeyPatch, database_url: str, committed: sessionmaker[Session]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)


def _user(committed: sessionmaker[Session], name: str) -> User | None:
    with committed() as s:
        return s.scalars(select(User).where(User.name == name)).first()


def test_create_with_password_on_stdin_then_list_and_sign_in(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    committed: sessionmaker[Session],
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert _run(["user", "create", "Carol", "--role", "admin", "--password-stdin"]) == 0
    assert "created admin carol" in capsys.readouterr().out
    user = _user(committed, "carol")
    assert user is not None
    assert user.role == "admin"
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert _run(["user", "list"]) == 0
    listing = capsys.readouterr().out
    assert "carol" in listing
    assert "admin" in listing
    assert "active" in listing
    with committed() as s:
        assert users.authenticate(s, name="carol", password=PASSWORD) is not None


def test_create_prompts_twice_and_refuses_a_mismatch(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    committed: sessionmaker[Session],
) -> None:
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr(commands.getpass, "getpass", lambda prompt="": next(answers))
    assert _run(["user", "create", "dave"]) == 2
    assert "do not match" in capsys.readouterr().err
    assert _user(committed, "dave") is None


def test_create_refuses_a_short_password_and_a_taken_name(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    committed: sessionmaker[Session],
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert _run(["user", "create", "erin", "--password-stdin"]) == 1
    assert "at least 12 characters" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert _run(["user", "create", "erin", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert _run(["user", "create", "ERIN", "--password-stdin"]) == 1
    assert "exists already" in capsys.readouterr().err


def test_disable_enable_and_unlock(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    committed: sessionmaker[Session],
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    _run(["user", "create", "frank", "--password-stdin"])
    assert _run(["user", "disable", "frank"]) == 0
    assert "disabled" in _run_list(capsys)
    with committed() as s:
        assert users.authenticate(s, name="frank", password=PASSWORD) is None
    assert _run(["user", "enable", "frank"]) == 0
    with committed() as s, s.begin():
        for _ in range(users.MAX_FAILED_ATTEMPTS):
            users.authenticate(s, name="frank", password="wrong password!!")
    assert "locked until" in _run_list(capsys)
    assert _run(["user", "unlock", "frank"]) == 0
    with committed() as s:
        assert users.authenticate(s, name="frank", password=PASSWORD) is not None
    assert _run(["user", "disable", "nobody"]) == 1
    assert "no user 'nobody'" in capsys.readouterr().err


def _run_list(capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert _run(["user", "list"]) == 0
    return capsys.readouterr().out
