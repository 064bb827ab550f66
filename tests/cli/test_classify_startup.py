"""`countersign classify` starts quickly: it imports only what classifying needs; bad inputs get
an error line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from app import cli
from app.detect import service

HEAVY = {
    "alembic",
    "fastapi",
    "httpx",
    "pydantic",
    "scipy",
    "sklearn",
    "sqlalchemy",
    "starlette",
    "tqdm",
    "uvicorn",
}


def _modules_after(code: str) -> set[str]:
    script = textwrap.dedent(code) + "\nimport sys\nprint(' '.join(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return {name.split(".")[0] for name in result.stdout.split()}


def test_classify_of_eml_files_imports_no_web_database_or_training_library(
    tmp_path, eml_bytes, lunch_json
):
    path = tmp_path / "lunch.eml"
    path.write_bytes(
        eml_bytes(
            sender="Anna Berg <anna.berg@northgate.com>",
            subject="Lunch on Thursday?",
            text=lunch_json()["text"],
            message_id="<lunch@northgate.com>",
        )
    )
    loaded = _modules_after(
        f"""
        from app.cli import main
        assert main(["classify", "--workers", "1", {str(path)!r}]) == 0
        """
    )
    assert loaded & HEAVY == set()


def test_the_email_schema_module_loads_pydantic_only_for_the_json_models():
    assert "pydantic" not in _modules_after("import app.mail.schemas")
    loaded = _modules_after(
        """
        from app.mail.schemas import EmailIn
        from app.mail.email_in import EmailIn as Direct
        assert EmailIn is Direct
        assert EmailIn.model_validate({"from": "a@b.example"}).from_ == "a@b.example"
        """
    )
    assert "pydantic" in loaded


def test_unknown_names_of_the_schema_module_still_raise():
    import app.mail.schemas as schemas

    with pytest.raises(AttributeError):
        _ = schemas.NoSuchThing  # type: ignore[attr-defined]


def test_the_classify_parser_is_lean_and_the_full_parser_has_every_command():
    lean = cli.build_parser(full=False)
    full = cli.build_parser()
    assert lean.parse_args(["classify", "-", "--workers", "1"]).func is cli.cmd_classify
    assert full.parse_args(["classify", "-"]).func is cli.cmd_classify
    for command in ("train", "eval", "serve", "user", "worker"):
        assert command in full.format_help()
    assert "worker" not in lean.format_help()


def test_the_detection_service_imports_training_only_when_training():
    loaded = _modules_after("import app.detect.service")
    assert loaded & {"sklearn", "scipy", "pydantic", "sqlalchemy", "tqdm"} == set()


def test_classify_lines_for_good_and_bad_inputs(tmp_path, detector, eml_bytes, bank_change_ask):
    eml = tmp_path / "one.eml"
    eml.write_bytes(
        eml_bytes(
            sender="Mark Ellis <mark.ellis@acme-supplies.com>",
            subject="New bank details",
            text=f"Hello,\n\n{bank_change_ask}\n\nThanks,\nMark",
            message_id="<one@acme-supplies.com>",
        )
    )
    raw = [
        ("a.eml", "mime-path", str(eml)),
        ("missing.eml", "mime-path", str(tmp_path / "missing.eml")),
        ("x:1", "json", json.dumps({"from": "a@b.example", "text": "see you at noon"})),
        ("x:2", "json", '{"from": '),
        ("x:3", "json", "[1, 2]"),
        ("x:4", "json", json.dumps({"text": "no sender"})),
    ]
    lines = service.classify_items(detector, [service.InputItem(*item) for item in raw])
    assert [line["source"] for line in lines] == [item[0] for item in raw]
    assert lines[0]["needs_verification"] is True
    assert [line.get("error") for line in lines] == [
        None,
        "unreadable",
        None,
        "invalid_json",
        "invalid_input",
        "invalid_input",
    ]
