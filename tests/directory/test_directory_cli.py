"""`countersign directory ...` and `countersign apikey ...` against the test database."""

from __future__ import annotations

import argparse
import json

import pytest
from sqlalchemy import select

from app.core.config import Settings
from app.core.errors import Unauthorized
from app.core.models import ApiKey
from app.core.security import check_api_key
from app.directory.commands import cli_actor, register
from app.directory.service import load_snapshot
from tests.directory.helpers import EXAMPLE_CSV, EXAMPLE_YAML


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings pointing the commands at the test database."""
    return Settings(database_url=database_url, env="test")


@pytest.fixture
def run(settings, committed, capsys):
    """Run a command line through `register`'s parser; returns (status, stdout, stderr)."""
    parser = argparse.ArgumentParser(prog="countersign")
    register(parser.add_subparsers(dest="command", required=True))

    def run_command(*argv: str) -> tuple[int, str, str]:
        args = parser.parse_args(list(argv))
        status = args.func(args, settings)
        out, err = capsys.readouterr()
        return status, out, err

    return run_command


def test_directory_import_prints_counts_and_puts_the_directory_on_file(run, committed):
    status, out, _ = run("directory", "import", str(EXAMPLE_YAML))

    assert status == 0
    counts = json.loads(out)
    assert (counts["people"], counts["vendors"], counts["added"]["bank_accounts"]) == (6, 6, 7)
    with committed() as session:
        snapshot = load_snapshot(session)
    assert len(snapshot.people) == 6
    assert snapshot.vendor_for_domain("acme-supplies.com").name == "Acme Supplies"


def test_directory_import_of_the_csv_after_the_yaml_adds_nothing(run):
    run("directory", "import", str(EXAMPLE_YAML))

    status, out, _ = run("directory", "import", str(EXAMPLE_CSV))

    assert status == 0
    assert set(json.loads(out)["added"].values()) == {0}


def test_directory_show_prints_the_directory_with_the_cli_user_as_provenance(run):
    run("directory", "import", str(EXAMPLE_YAML))

    status, out, _ = run("directory", "show")

    assert status == 0
    listing = json.loads(out)
    assert len(listing["vendors"]) == 6
    assert {p["added_by"] for p in listing["people"]} == {cli_actor()}
    assert cli_actor().startswith("cli:")
    assert "fingerprint" not in out


def test_directory_import_of_a_bad_file_fails_without_storing_anything(run, tmp_path, committed):
    bad = tmp_path / "directory.yaml"
    bad.write_text(
        "people:\n  - {name: Ann, emails: [ann@northgate.com]}\n  - {name: Bob, phone: '+44 1'}\n"
    )

    status, out, err = run("directory", "import", str(bad))

    assert status == 2
    assert out == ""
    assert "people[1]" in err
    with committed() as session:
        assert load_snapshot(session).people == []
    assert run("directory", "import", str(tmp_path / "missing.yaml"))[0] == 2


def test_directory_clear_needs_yes(run, committed):
    run("directory", "import", str(EXAMPLE_YAML))

    refused, _, err = run("directory", "clear")
    with committed() as session:
        kept = len(load_snapshot(session).people)
    cleared, _, _ = run("directory", "clear", "--yes")

    assert (refused, kept) == (2, 6)
    assert "--yes" in err
    assert cleared == 0
    with committed() as session:
        assert load_snapshot(session).people == []


def test_apikey_create_prints_a_key_that_works_until_it_is_revoked(run, committed):
    status, out, err = run("apikey", "create", "mail-gateway")

    assert status == 0
    key = out.strip()
    assert key.startswith("cs_")
    assert "not shown again" in err
    with committed() as session, session.begin():
        assert check_api_key(session, key, []) == "api-key:mail-gateway"
        stored = session.scalars(select(ApiKey)).one()
    assert key not in (stored.key_hash, stored.prefix)

    assert run("apikey", "revoke", "mail-gateway")[0] == 0

    with committed() as session, pytest.raises(Unauthorized):
        check_api_key(session, key, [])
    assert run("apikey", "revoke", "mail-gateway")[0] == 2  # nothing active to revoke


def test_apikey_create_refuses_a_name_in_use(run):
    run("apikey", "create", "dashboard")

    status, out, err = run("apikey", "create", "dashboard")

    assert status == 2
    assert out == ""
    assert "exists already" in err


def test_apikey_list_shows_name_prefix_use_and_revocation_but_never_the_key(run, committed):
    _, out, _ = run("apikey", "create", "mail-gateway")
    key = out.strip()
    run("apikey", "create", "siem-export")
    run("apikey", "revoke", "siem-export")
    with committed() as session, session.begin():
        check_api_key(session, key, [])  # marks the key as used

    status, table, _ = run("apikey", "list")
    _, as_json, _ = run("apikey", "list", "--json")

    assert status == 0
    assert key not in table
    lines = table.splitlines()
    assert lines[0].split() == ["NAME", "PREFIX", "CREATED", "LAST", "USED", "REVOKED"]
    gateway = next(line for line in lines if line.startswith("mail-gateway"))
    assert key[:8] in gateway
    assert "never" not in gateway
    assert gateway.rstrip().endswith("-")
    siem = next(line for line in lines if line.startswith("siem-export"))
    assert "never" in siem
    assert not siem.rstrip().endswith("-")
    rows = {r["name"]: r for r in json.loads(as_json)}
    assert rows["mail-gateway"]["revoked_at"] is None
    assert rows["mail-gateway"]["last_used_at"] is not None
    assert rows["siem-export"]["revoked_at"] is not None
