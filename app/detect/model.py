"""The intent model: features, scores, and model files that are checked before they are loaded.

A model file is code. It is saved with skops (no pickle) beside a manifest holding its SHA-256
and the library versions; loading refuses any file whose hash or versions do not match.
"""

from __future__ import annotations

import hashlib
import json
import platform
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import sklearn
import skops
import skops.io as sio
from sklearn.feature_extraction.text import TfidfVectorizer

from app.detect.features import ask_text
from app.detect.intents import INTENTS

ARTIFACT_NAME = "model.skops"
MANIFEST_NAME = "manifest.json"
QUOTED_WEIGHT = 0.5
ASK_WEIGHT = 1.0
# Only these types may come out of a model file, whatever the file says.
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


class ModelIntegrityError(RuntimeError):
    """A model file failed its integrity check and was not loaded."""


def build_vectorizers() -> dict[str, TfidfVectorizer]:
    """Fresh, unfitted vectorizers: word 1-2 grams and char 3-5 grams of the main text, and
    words of the quoted history in their own columns."""
    return {
        "word": TfidfVectorizer(
            ngram_range=(1, 2),
            min_df=2,
            max_features=60_000,
            sublinear_tf=True,
            dtype=np.float32,
            token_pattern=r"(?u)\b\w[\w'\-]*\b",  # noqa: S106 - a regex, not a password
        ),
        "char": TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(3, 5),
            min_df=3,
            max_features=120_000,
            sublinear_tf=True,
            dtype=np.float32,
        ),
        "quoted": TfidfVectorizer(
            ngram_range=(1, 1), min_df=3, max_features=20_000, sublinear_tf=True, dtype=np.float32
        ),
        "ask": TfidfVectorizer(
            ngram_range=(1, 2),
            min_df=2,
            max_features=40_000,
            sublinear_tf=True,
            dtype=np.float32,
            token_pattern=r"(?u)\b\w[\w'\-]*\b",  # noqa: S106 - a regex, not a password
        ),
    }


CHAR_CACHE_WORDS = 100_000
CHAR_HEAD = 1_500
CHAR_TAIL = 500


def char_view(main: str) -> str:
    # Character n-grams cost the most per character; the head and tail carry the ask.
    if len(main) <= CHAR_HEAD + CHAR_TAIL:
        return main
    return main[:CHAR_HEAD] + " " + main[-CHAR_TAIL:]


@dataclass(slots=True)
class IntentModel:
    """Multi-label linear model over TF-IDF features with Platt-calibrated scores per intent."""

    vectorizers: dict[str, TfidfVectorizer]
    coef: np.ndarray  # (n_intents, n_features)
    intercept: np.ndarray  # (n_intents,)
    platt: np.ndarray  # (n_intents, 2): p = sigmoid(a * decision + b)
    thresholds: np.ndarray  # (n_intents,)
    intents: tuple[str, ...] = INTENTS
    version: str = "untrained"
    manifest: dict[str, Any] = field(default_factory=dict)

    def features(self, mains: list[str], quoteds: list[str]) -> sp.csr_matrix:
        """Feature matrix for a batch of (main, quoted) texts."""
        blocks = [
            self.vectorizers["word"].transform(mains),
            self.vectorizers["char"].transform([char_view(m) for m in mains]),
            self.vectorizers["quoted"].transform(quoteds) * QUOTED_WEIGHT,
            self.vectorizers["ask"].transform([ask_text(m) for m in mains]) * ASK_WEIGHT,
        ]
        return sp.hstack(blocks, format="csr")

    def decision(self, features: sp.csr_matrix) -> np.ndarray:
        """Raw linear scores, one column per intent."""
        return np.asarray(features @ self.coef.T) + self.intercept

    def calibrate(self, decision: np.ndarray) -> np.ndarray:
        """Calibrated probabilities from raw scores."""
        z = decision * self.platt[:, 0] + self.platt[:, 1]
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))

    def predict_proba(self, mains: list[str], quoteds: list[str]) -> np.ndarray:
        """Calibrated probability per intent for a batch."""
        if not mains:
            return np.zeros((0, len(self.intents)))
        scorer = self._lean()
        decision = np.stack([scorer.decision(m, q) for m, q in zip(mains, quoteds, strict=True)])
        return self.calibrate(decision)

    def _lean(self) -> LeanScorer:
        scorer: LeanScorer | None = self.manifest.get("_lean")
        if scorer is None:
            scorer = LeanScorer(self)
            self.manifest["_lean"] = scorer
        return scorer

    def state(self) -> dict[str, Any]:
        """Everything the model file holds: numpy arrays and plain values only.

        Vocabularies are stored as arrays of terms (compact and fast to load) and put back into
        vectorizers built by this code, whose settings must match the file's `feature_spec`.
        """
        vocab = {}
        for name, vec in self.vectorizers.items():
            terms = sorted(vec.vocabulary_, key=vec.vocabulary_.__getitem__)
            joined = "\x00".join(terms).encode("utf-8")
            vocab[name] = {
                "terms": np.frombuffer(joined, dtype=np.uint8).copy(),
                "idf": np.asarray(vec.idf_, dtype=np.float32),
            }
        return {
            "feature_spec": feature_spec(),
            "vocab": vocab,
            "coef": self.coef,
            "intercept": self.intercept,
            "platt": self.platt,
            "thresholds": self.thresholds,
            "intents": list(self.intents),
        }

    def parameter_hash(self) -> str:
        """Hash of the fitted parameters: equal for two trainings that learned the same model."""
        digest = hashlib.sha256()
        for name in sorted(self.vectorizers):
            vec = self.vectorizers[name]
            digest.update(
                json.dumps(sorted((k, int(v)) for k, v in vec.vocabulary_.items())).encode()
            )
            digest.update(np.ascontiguousarray(vec.idf_, dtype=np.float32).tobytes())
        for arr in (self.coef, self.intercept, self.platt, self.thresholds):
            digest.update(np.ascontiguousarray(np.round(arr.astype(np.float64), 10)).tobytes())
        return digest.hexdigest()


class LeanScorer:
    """The model's linear scores for one email without building sparse matrices.

    Same arithmetic as `IntentModel.decision(IntentModel.features(...))` (sublinear TF times IDF,
    L2-normalised per block, block weights, dot product with the coefficients), but with the
    fitted vocabularies and a transposed coefficient matrix, which avoids scikit-learn's
    per-call overhead: a single email costs a fraction of a batch-of-one `transform`.
    """

    def __init__(self, model: IntentModel) -> None:
        self.coef_t = np.ascontiguousarray(model.coef.T, dtype=np.float64)  # (n_features, k)
        self.intercept = np.asarray(model.intercept, dtype=np.float64)
        self._char_cache: dict[str, tuple[int, ...]] = {}
        self.char_range = model.vectorizers["char"].ngram_range
        self.blocks = []
        offset = 0
        for name, weight in (
            ("word", 1.0),
            ("char", 1.0),
            ("quoted", QUOTED_WEIGHT),
            ("ask", ASK_WEIGHT),
        ):
            vec = model.vectorizers[name]
            self.blocks.append(
                (
                    name,
                    vec.build_analyzer(),
                    vec.vocabulary_,
                    np.asarray(vec.idf_, dtype=np.float64),
                    offset,
                    weight,
                )
            )
            offset += len(vec.vocabulary_)

    def _char_counts(self, text: str, vocab: dict[str, int]) -> Counter[int]:
        # scikit-learn's char_wb analyzer, word by word: lower-case, split on whitespace, pad each
        # word with spaces and take its n-grams. A word's n-grams never change, so the vocabulary
        # columns they hit are cached per word (most words repeat within and across emails).
        cache = self._char_cache
        lo, hi = self.char_range
        cols: list[int] = []
        for word in text.lower().split():
            hit = cache.get(word)
            if hit is None:
                padded = " " + word + " "
                size = len(padded)
                found = []
                for n in range(lo, hi + 1):
                    if size <= n:
                        j = vocab.get(padded)
                        if j is not None:
                            found.append(j)
                        break
                    for start in range(size - n + 1):
                        j = vocab.get(padded[start : start + n])
                        if j is not None:
                            found.append(j)
                hit = tuple(found)
                if len(cache) < CHAR_CACHE_WORDS:
                    cache[word] = hit
            cols.extend(hit)
        return Counter(cols)

    def decision(self, main: str, quoted: str) -> np.ndarray:
        """Raw linear scores of one (main, quoted) text pair."""
        out = self.intercept.copy()
        texts = {"word": main, "char": char_view(main), "quoted": quoted, "ask": ask_text(main)}
        for name, analyze, vocab, idf, offset, weight in self.blocks:
            if name == "char":
                counted = self._char_counts(texts[name], vocab)
                if not counted:
                    continue
                cols = np.fromiter(counted.keys(), dtype=np.int64, count=len(counted))
                tf = np.fromiter(counted.values(), dtype=np.float64, count=len(counted))
            else:
                terms = Counter(analyze(texts[name]))
                if not terms:
                    continue
                found = np.fromiter(
                    (vocab.get(t, -1) for t in terms), dtype=np.int64, count=len(terms)
                )
                keep = found >= 0
                if not keep.any():
                    continue
                cols = found[keep]
                tf = np.fromiter(terms.values(), dtype=np.float64, count=len(terms))[keep]
            values = (np.log(tf) + 1.0) * idf[cols]
            norm = float(np.sqrt(values @ values))
            if norm == 0.0:
                continue
            out += (values * (weight / norm)) @ self.coef_t[cols + offset]
        return out


def feature_spec() -> str:
    """The feature settings; a model file only fits the settings it was built with."""
    parts = []
    for name, vec in sorted(build_vectorizers().items()):
        params = vec.get_params()
        keys = (
            "analyzer",
            "ngram_range",
            "min_df",
            "max_features",
            "sublinear_tf",
            "token_pattern",
            "lowercase",
            "norm",
            "use_idf",
            "smooth_idf",
        )
        parts.append(f"{name}:" + ",".join(f"{k}={params[k]!r}" for k in keys))
    head = (
        f"quoted_weight={QUOTED_WEIGHT};ask_weight={ASK_WEIGHT};char_view={CHAR_HEAD}+{CHAR_TAIL};"
    )
    return head + ";".join(parts)


def _restore_vectorizers(vocab: dict[str, Any]) -> dict[str, TfidfVectorizer]:
    vectorizers = build_vectorizers()
    for name, vec in vectorizers.items():
        terms = (
            np.asarray(vocab[name]["terms"], dtype=np.uint8).tobytes().decode("utf-8").split("\x00")
        )
        vec.vocabulary_ = {t: i for i, t in enumerate(terms)}
        vec.idf_ = np.asarray(vocab[name]["idf"], dtype=np.float64)
    return vectorizers


def versions() -> dict[str, str]:
    """Library versions a model file is bound to."""
    return {
        "scikit-learn": sklearn.__version__,
        "skops": skops.__version__,
        "numpy": np.__version__,
        "python": platform.python_version_tuple()[0] + "." + platform.python_version_tuple()[1],
    }


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_model(
    model: IntentModel, directory: Path, manifest_extra: dict[str, Any]
) -> dict[str, Any]:
    """Write the artifact and its manifest; returns the manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    artifact = directory / ARTIFACT_NAME
    sio.dump(model.state(), artifact, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    manifest = {
        "artifact": ARTIFACT_NAME,
        "sha256": sha256_file(artifact),
        "model_version": model.version,
        "parameter_hash": model.parameter_hash(),
        "versions": versions(),
        "intents": list(model.intents),
        "thresholds": {
            k: round(float(t), 6) for k, t in zip(model.intents, model.thresholds, strict=True)
        },
        **manifest_extra,
    }
    (directory / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    model.manifest = manifest
    return manifest


def load_model(directory: Path) -> IntentModel:
    """Load a model directory after checking the artifact's hash and library versions."""
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ModelIntegrityError(f"integrity check failed: no {MANIFEST_NAME} in {directory}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelIntegrityError(f"integrity check failed: unreadable manifest ({exc})") from None
    name = str(manifest.get("artifact", ""))
    artifact = directory / name
    if not name or "/" in name or "\\" in name or not artifact.is_file():
        raise ModelIntegrityError(
            "integrity check failed: the manifest names no artifact file here"
        )
    actual = sha256_file(artifact)
    if actual != manifest.get("sha256"):
        raise ModelIntegrityError(
            f"integrity check failed: SHA-256 of {name} is {actual}, manifest says "
            f"{manifest.get('sha256')}; refusing to load"
        )
    expected = manifest.get("versions", {})
    current = versions()
    for lib in ("scikit-learn", "skops", "numpy"):
        if expected.get(lib) != current[lib]:
            raise ModelIntegrityError(
                f"integrity check failed: model built with {lib} {expected.get(lib)}, "
                f"this install has {current[lib]}; retrain with `countersign train`"
            )
    untrusted = sio.get_untrusted_types(file=artifact)
    bad = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if bad:
        raise ModelIntegrityError(f"integrity check failed: artifact holds untrusted types {bad}")
    state = sio.load(artifact, trusted=untrusted)
    if state.get("feature_spec") != feature_spec():
        raise ModelIntegrityError(
            "integrity check failed: the model was built with other feature settings than this "
            "version of Countersign; retrain with `countersign train`"
        )
    model = IntentModel(
        vectorizers=_restore_vectorizers(state["vocab"]),
        coef=np.asarray(state["coef"], dtype=np.float32),
        intercept=np.asarray(state["intercept"], dtype=np.float64),
        platt=np.asarray(state["platt"], dtype=np.float64),
        thresholds=np.asarray(state["thresholds"], dtype=np.float64),
        intents=tuple(state["intents"]),
        version=str(manifest.get("model_version", "unknown")),
        manifest=manifest,
    )
    if model.intents != INTENTS:
        raise ModelIntegrityError(
            f"integrity check failed: model intents {model.intents} != {INTENTS}"
        )
    return model
