"""`countersign classify` and `countersign eval`: one verdict line per input, in input order."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from app.cli import main
from app.detect.intents import INTENTS
from app.detect.model import MANIFEST_NAME

COUNTERSIGN = Path(sys.executable).with_name("countersign")


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_classify_of_an_eml_file_prints_one_verdict_line(
    tmp_path, capsys, eml_bytes, bank_change_ask, shipped_manifest
):
    path = tmp_path / "vendor.eml"
    path.write_bytes(
        eml_bytes(
            sender="Mark Ellis <mark.ellis@acme-supplies.com>",
            subject="New bank details",
            text=f"Hello,\n\n{bank_change_ask}\n\nThanks,\nMark",
            message_id="<eml-1@acme-supplies.com>",
        )
    )

    code = main(["classify", str(path), "--workers", "1"])

    lines = _lines(capsys.readouterr().out)
    assert code == 0
    assert len(lines) == 1
    verdict = lines[0]
    assert "error" not in verdict
    assert verdict["message_id"] == "<eml-1@acme-supplies.com>"
    assert verdict["source"] == str(path)
    assert verdict["needs_verification"] is True
    assert verdict["model_version"] == shipped_manifest["model_version"]


def test_jsonl_with_invalid_and_incomplete_lines_gets_one_line_per_input_with_errors(
    tmp_path, capsys, lunch_json
):
    path = tmp_path / "batch.jsonl"
    valid = json.dumps(lunch_json())
    no_from = json.dumps(
        {k: v for k, v in lunch_json(message_id="<no-from@x>").items() if k != "from"}
    )
    path.write_text(valid + "\n" + '{"from": "a@b.com", "text": \n' + no_from + "\n")

    code = main(["classify", str(path), "--workers", "1"])

    captured = capsys.readouterr()
    lines = _lines(captured.out)
    assert code == 0
    assert [line["source"] for line in lines] == [f"{path}:1", f"{path}:2", f"{path}:3"]
    assert "error" not in lines[0]
    assert lines[0]["message_id"] == "<lunch@northgate.com>"
    assert lines[0]["needs_verification"] is False
    assert lines[1]["error"] == "invalid_json"
    assert lines[2]["error"] == "invalid_input"
    assert "from" in lines[2]["detail"]
    assert "Traceback" not in captured.err


def test_classify_reads_json_lines_from_stdin_with_dash(
    capsys, monkeypatch, lunch_json, bank_change_json
):
    stdin = json.dumps(bank_change_json()) + "\n\n" + json.dumps(lunch_json()) + "\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))

    code = main(["classify", "-"])

    lines = _lines(capsys.readouterr().out)
    assert code == 0
    assert [line["message_id"] for line in lines] == [
        "<bank-change@acme-supplies.com>",
        "<lunch@northgate.com>",
    ]
    assert [line["needs_verification"] for line in lines] == [True, False]
    assert all(line["source"].startswith("-:") for line in lines)


def test_hundred_eml_files_with_two_workers_come_out_in_input_order(
    tmp_path, capsys, eml_bytes, lunch_json
):
    folder = tmp_path / "mails"
    folder.mkdir()
    text = lunch_json()["text"]
    ids: dict[str, str] = {}
    for n in range(100):
        path = folder / f"mail-{n:03d}.eml"
        path.write_bytes(
            eml_bytes(
                sender=f"Colleague {n} <c{n}@northgate.com>",
                subject=f"Lunch {n}",
                text=text,
                message_id=f"<m{n}@northgate.com>",
            )
        )
        ids[str(path)] = f"<m{n}@northgate.com>"
    paths = list(ids)
    # Not sorted order: the output must follow the order given, not the file names.
    order = paths[50:] + paths[:50][::-1]

    code = main(["classify", "--workers", "2", *order])

    lines = _lines(capsys.readouterr().out)
    assert code == 0
    assert len(lines) == 100
    assert [line["source"] for line in lines] == order
    assert [line["message_id"] for line in lines] == [ids[p] for p in order]
    assert not any("error" in line for line in lines)


def test_missing_input_file_gets_an_error_line_not_a_crash(tmp_path, capsys):
    missing = tmp_path / "nowhere.eml"

    code = main(["classify", str(missing), "--workers", "1"])

    lines = _lines(capsys.readouterr().out)
    assert code == 0
    assert len(lines) == 1
    assert lines[0]["source"] == str(missing)
    assert lines[0]["error"]


def test_classify_with_a_tampered_model_dir_exits_non_zero_naming_the_integrity_check(
    model_copy, capsys, monkeypatch, lunch_json
):
    manifest = json.loads((model_copy / MANIFEST_NAME).read_text())
    manifest["sha256"] = "0" * 64
    (model_copy / MANIFEST_NAME).write_text(json.dumps(manifest))
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(lunch_json()) + "\n"))

    code = main(["classify", "--model-dir", str(model_copy), "-"])

    captured = capsys.readouterr()
    assert code != 0
    assert "integrity check" in captured.err
    assert captured.out == ""


def test_countersign_command_classifies_an_eml_end_to_end(tmp_path, eml_bytes, bank_change_ask):
    path = tmp_path / "one.eml"
    path.write_bytes(
        eml_bytes(
            sender="Mark Ellis <mark.ellis@acme-supplies.com>",
            subject="New bank details",
            text=f"Hello,\n\n{bank_change_ask}\n\nThanks,\nMark",
            message_id="<e2e@acme-supplies.com>",
        )
    )

    result = subprocess.run(
        [str(COUNTERSIGN), "classify", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    lines = _lines(result.stdout)
    assert len(lines) == 1
    assert lines[0]["message_id"] == "<e2e@acme-supplies.com>"
    assert lines[0]["needs_verification"] is True
    assert lines[0]["intents"][0]["name"] == "payment_change"


def test_eval_prints_precision_recall_and_fpr_for_every_intent(capsys):
    code = main(["eval"])

    out = capsys.readouterr().out
    assert code == 0
    header = next(line for line in out.splitlines() if line.startswith("intent"))
    assert header.split() == ["intent", "support", "precision", "recall", "FPR"]
    for intent in INTENTS:
        row = next((line for line in out.splitlines() if line.startswith(intent + " ")), None)
        assert row is not None, f"no line for {intent}"
        fields = row.split()
        assert len(fields) == 5
        assert fields[1].isdigit()
        for value in fields[2:]:
            assert value == "-" or 0.0 <= float(value) <= 1.0


def _labelled(record_id: str, labels: list[str], kind: str, subject: str, text: str) -> str:
    return json.dumps(
        {
            "id": record_id,
            "labels": labels,
            "kind": kind,
            "style": "fluent",
            "lang": "en",
            "email": {
                "from": "Pat Doyle <pat@harbourline-freight.com>",
                "to": ["ap@example.org"],
                "subject": subject,
                "text": text,
            },
        }
    )


def test_eval_reports_a_held_out_set_beside_the_validation_split(tmp_path, capsys):
    held = tmp_path / "held"
    held.mkdir()
    (held / "one.jsonl").write_text(
        _labelled(
            "h-1",
            ["payment_change"],
            "risky",
            "New bank details",
            "Our bank has changed. Please update our remittance details and send all future "
            "payments to IBAN GB33BUKB20201555555555 from today.",
        )
        + "\n"
        + _labelled(
            "h-2",
            [],
            "benign",
            "Lunch on Friday",
            "Are we still on for lunch on Friday at the usual place?",
        )
        + "\n",
        encoding="utf-8",
    )

    empty = tmp_path / "empty"
    empty.mkdir()

    code = main(["eval", "--holdout", str(held), "--holdout", str(empty), "--json"])

    report = json.loads(capsys.readouterr().out)
    assert code == 0
    [entry] = report["holdout"]  # the directory without labelled files is skipped
    figures = entry["figures"]
    assert entry["path"] == str(held / "one.jsonl")
    assert (figures["emails"], figures["risky"], figures["benign"]) == (2, 1, 1)
    assert figures["per_intent"]["payment_change"]["support"] == 1
    assert figures["recall"] == 1.0
    assert figures["false_positive_rate"] == 0.0
    # The validation split is still reported, unchanged by the held-out set.
    assert report["validation"]["emails"] > 1000
