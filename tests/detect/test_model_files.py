"""Model files: a faithful round trip, and refusal of an artifact failing its integrity check."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.detect.engine import Detector
from app.detect.model import (
    ARTIFACT_NAME,
    MANIFEST_NAME,
    ModelIntegrityError,
    load_model,
    save_model,
)

TEXTS = [
    "please update our bank details, new iban below",
    "can you send me your password and the code you just received",
    "lunch on thursday at the italian place?",
    "buy five gift cards and send me the codes today",
    "",
]


def _proba(model):
    return model.predict_proba(TEXTS, [""] * len(TEXTS))


def _edit_manifest(model_dir: Path, edit) -> None:
    path = model_dir / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def test_saved_and_reloaded_model_gives_identical_probabilities(detector, tmp_path):
    original = detector.model

    manifest = save_model(original, tmp_path, {"note": "round trip"})
    reloaded = load_model(tmp_path)

    assert np.array_equal(_proba(original), _proba(reloaded))
    assert reloaded.parameter_hash() == original.parameter_hash()
    assert reloaded.version == original.version == manifest["model_version"]
    assert reloaded.intents == original.intents
    assert manifest["note"] == "round trip"


def test_copied_model_directory_loads_with_the_manifest_version(model_copy, shipped_manifest):
    model = load_model(model_copy)

    assert model.version == shipped_manifest["model_version"]
    assert model.manifest["sha256"] == shipped_manifest["sha256"]


def test_model_file_with_one_flipped_byte_is_refused(model_copy):
    artifact = model_copy / ARTIFACT_NAME
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0x01
    artifact.write_bytes(bytes(data))

    with pytest.raises(ModelIntegrityError, match="integrity check"):
        load_model(model_copy)


def test_manifest_with_an_edited_sha256_is_refused(model_copy):
    _edit_manifest(model_copy, lambda m: m.update(sha256="0" * 64))

    with pytest.raises(ModelIntegrityError, match="integrity check"):
        load_model(model_copy)


def test_model_recorded_with_another_scikit_learn_version_is_refused(model_copy):
    _edit_manifest(model_copy, lambda m: m["versions"].update({"scikit-learn": "0.0.1"}))

    with pytest.raises(ModelIntegrityError, match="integrity check") as info:
        load_model(model_copy)
    assert "scikit-learn" in str(info.value)


def test_model_directory_without_manifest_is_refused(model_copy):
    (model_copy / MANIFEST_NAME).unlink()

    with pytest.raises(ModelIntegrityError, match="integrity check"):
        load_model(model_copy)


def test_manifest_pointing_outside_the_model_directory_is_refused(model_copy):
    _edit_manifest(model_copy, lambda m: m.update(artifact="../model/" + ARTIFACT_NAME))

    with pytest.raises(ModelIntegrityError, match="integrity check"):
        load_model(model_copy)


def test_detector_refuses_a_tampered_model_directory(model_copy):
    _edit_manifest(model_copy, lambda m: m.update(sha256="f" * 64))

    with pytest.raises(ModelIntegrityError, match="integrity check"):
        Detector.from_dir(model_copy)


def test_lean_scorer_matches_the_sparse_feature_path(detector: Detector) -> None:
    from app.detect.corpus import load_corpus
    from app.detect.features import model_inputs

    examples = load_corpus()[::25]
    inputs = [model_inputs(e.email) for e in examples]
    mains = [m for m, _ in inputs]
    quoteds = [q for _, q in inputs]
    model = detector.model
    sparse = model.calibrate(model.decision(model.features(mains, quoteds)))
    lean = model.predict_proba(mains, quoteds)
    assert np.abs(sparse - lean).max() < 1e-4


def test_artifact_holding_an_object_is_refused_even_with_a_matching_hash(model_copy):
    import json

    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    from app.detect.model import MANIFEST_NAME, sha256_file

    artifact = model_copy / "model.skops"
    sio.dump({"coef": LogisticRegression()}, artifact)
    manifest = json.loads((model_copy / MANIFEST_NAME).read_text())
    manifest["sha256"] = sha256_file(artifact)
    (model_copy / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match="only dicts, lists, JSON values and arrays"):
        load_model(model_copy)
