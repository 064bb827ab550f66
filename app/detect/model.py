"""The intent model: features, scores, and model files that are checked before they are loaded.

A model file is code. It is saved with skops (no pickle) beside a manifest holding its SHA-256
and the library versions; loading refuses any file whose hash or versions do not match.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import zipfile
from array import array
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import version as dist_version
from itertools import repeat
from operator import ne
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.detect.features import ask_text
from app.detect.intents import INTENTS

if TYPE_CHECKING:
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer

ARTIFACT_NAME = "model.skops"
MANIFEST_NAME = "manifest.json"
QUOTED_WEIGHT = 0.5
ASK_WEIGHT = 1.0
WORD_PATTERN = r"(?u)\b\w[\w'\-]*\b"
DEFAULT_PATTERN = r"(?u)\b\w\w+\b"
_COMMON = {"lowercase": True, "norm": "l2", "use_idf": True, "smooth_idf": True}
# The vectorizer settings: training builds scikit-learn vectorizers from them, and classification
# reproduces the same analyzers without scikit-learn (see LeanScorer).
VECTORIZER_SETTINGS: dict[str, dict[str, Any]] = {
    "word": {
        "analyzer": "word",
        "ngram_range": (1, 2),
        "min_df": 2,
        "max_features": 60_000,
        "sublinear_tf": True,
        "token_pattern": WORD_PATTERN,
        **_COMMON,
    },
    "char": {
        "analyzer": "char_wb",
        "ngram_range": (3, 5),
        "min_df": 3,
        "max_features": 120_000,
        "sublinear_tf": True,
        "token_pattern": DEFAULT_PATTERN,
        **_COMMON,
    },
    "quoted": {
        "analyzer": "word",
        "ngram_range": (1, 1),
        "min_df": 3,
        "max_features": 20_000,
        "sublinear_tf": True,
        "token_pattern": DEFAULT_PATTERN,
        **_COMMON,
    },
    "ask": {
        "analyzer": "word",
        "ngram_range": (1, 2),
        "min_df": 2,
        "max_features": 40_000,
        "sublinear_tf": True,
        "token_pattern": WORD_PATTERN,
        **_COMMON,
    },
}
BLOCKS = ("word", "char", "quoted", "ask")
BLOCK_WEIGHTS = {"word": 1.0, "char": 1.0, "quoted": QUOTED_WEIGHT, "ask": ASK_WEIGHT}


class ModelIntegrityError(RuntimeError):
    """A model file failed its integrity check and was not loaded."""


def build_vectorizers() -> dict[str, TfidfVectorizer]:
    """Fresh, unfitted vectorizers: word 1-2 grams and char 3-5 grams of the main text, the
    words of the quoted history, and the ask sentences, each in their own columns."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return {
        name: TfidfVectorizer(dtype=np.float32, **settings)
        for name, settings in VECTORIZER_SETTINGS.items()
    }


CHAR_CACHE_WORDS = 100_000
_CACHED_INT = np.dtype(f"=i{array('i').itemsize}")  # how `array("i")` stores the cached columns
CHAR_HEAD = 1_500
CHAR_TAIL = 500


def char_view(main: str) -> str:
    # Character n-grams cost the most per character; the head and tail carry the ask.
    if len(main) <= CHAR_HEAD + CHAR_TAIL:
        return main
    return main[:CHAR_HEAD] + " " + main[-CHAR_TAIL:]


def calibrated(decision: np.ndarray, calibration: np.ndarray) -> np.ndarray:
    """Probabilities from raw scores (n, k) under a stacked calibration (k, k + 1)."""
    k = calibration.shape[0]
    z = decision @ calibration[:, :k].T + calibration[:, k]
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


@dataclass(slots=True)
class IntentModel:
    """Multi-label linear model over TF-IDF features with stacked, calibrated scores per intent."""

    vocab: dict[str, tuple[dict[str, int], np.ndarray]]
    """Per block: the fitted vocabulary (term -> column) and its IDF weights."""
    coef: np.ndarray  # (n_intents, n_features)
    intercept: np.ndarray  # (n_intents,)
    calibration: np.ndarray
    """(n_intents, n_intents + 1): p_j = sigmoid(decision @ cal[j, :-1] + cal[j, -1]).

    Each intent's probability is a logistic regression over the raw scores of every intent (a
    stacked calibration fitted on out-of-fold scores), so an email that reads half like a payment
    change and half like an urgent transfer is not lost between the two."""
    thresholds: np.ndarray  # (n_intents,)
    intents: tuple[str, ...] = INTENTS
    version: str = "untrained"
    manifest: dict[str, Any] = field(default_factory=dict)
    _vectorizers: dict[str, TfidfVectorizer] | None = None
    _scorer: LeanScorer | None = None

    @classmethod
    def from_fitted(cls, vectorizers: dict[str, TfidfVectorizer], **kwargs: Any) -> IntentModel:
        """A model over fitted scikit-learn vectorizers (training)."""
        vocab = {
            name: (dict(vec.vocabulary_), np.asarray(vec.idf_, dtype=np.float64))
            for name, vec in vectorizers.items()
        }
        model = cls(vocab=vocab, **kwargs)
        model._vectorizers = vectorizers
        return model

    @property
    def vectorizers(self) -> dict[str, TfidfVectorizer]:
        """scikit-learn vectorizers carrying the fitted vocabularies (built on first use)."""
        if self._vectorizers is None:
            vectorizers = build_vectorizers()
            for name, vec in vectorizers.items():
                terms, idf = self.vocab[name]
                vec.vocabulary_ = terms
                vec.idf_ = idf
            self._vectorizers = vectorizers
        return self._vectorizers

    def features(self, mains: list[str], quoteds: list[str]) -> sp.csr_matrix:
        """Feature matrix for a batch of (main, quoted) texts (training and evaluation)."""
        import scipy.sparse as sp

        vecs = self.vectorizers
        blocks = [
            vecs["word"].transform(mains),
            vecs["char"].transform([char_view(m) for m in mains]),
            vecs["quoted"].transform(quoteds) * QUOTED_WEIGHT,
            vecs["ask"].transform([ask_text(m) for m in mains]) * ASK_WEIGHT,
        ]
        return sp.hstack(blocks, format="csr")

    def decision(self, features: sp.csr_matrix) -> np.ndarray:
        """Raw linear scores, one column per intent."""
        return np.asarray(features @ self.coef.T) + self.intercept

    def calibrate(self, decision: np.ndarray) -> np.ndarray:
        """Calibrated probabilities from raw scores."""
        return calibrated(decision, self.calibration)

    def predict_proba(self, mains: list[str], quoteds: list[str]) -> np.ndarray:
        """Calibrated probability per intent for a batch."""
        if not mains:
            return np.zeros((0, len(self.intents)))
        scorer = self._lean()
        decision = np.stack([scorer.decision(m, q) for m, q in zip(mains, quoteds, strict=True)])
        return self.calibrate(decision)

    def warm_up(self) -> None:
        """Build the classify-time scorer now rather than on first use."""
        self._lean()

    def _lean(self) -> LeanScorer:
        if self._scorer is None:
            self._scorer = LeanScorer(self)
        return self._scorer

    def sentence_decisions(self, sentences: list[str]) -> np.ndarray:
        """Raw scores of single (normalised) sentences, for evidence."""
        scorer = self._lean()
        return np.stack([scorer.decision(s, "") for s in sentences])

    def state(self) -> dict[str, Any]:
        """Everything the model file holds: numpy arrays and plain values only.

        Vocabularies are stored as arrays of terms (compact and fast to load) and put back into
        vectorizers built by this code, whose settings must match the file's `feature_spec`.
        """
        vocab = {}
        for name, (terms_of, idf) in self.vocab.items():
            terms = sorted(terms_of, key=terms_of.__getitem__)
            joined = "\x00".join(terms).encode("utf-8")
            vocab[name] = {
                "terms": np.frombuffer(joined, dtype=np.uint8).copy(),
                "idf": np.asarray(idf, dtype=np.float32),
            }
        return {
            "feature_spec": feature_spec(),
            "vocab": vocab,
            "coef": self.coef,
            "intercept": self.intercept,
            "calibration": self.calibration,
            "thresholds": self.thresholds,
            "intents": list(self.intents),
        }

    def parameter_hash(self) -> str:
        """Hash of the fitted parameters: equal for two trainings that learned the same model."""
        digest = hashlib.sha256()
        for name in sorted(self.vocab):
            terms, idf = self.vocab[name]
            digest.update(json.dumps(sorted((k, int(v)) for k, v in terms.items())).encode())
            digest.update(np.ascontiguousarray(idf, dtype=np.float32).tobytes())
        for arr in (self.coef, self.intercept, self.calibration, self.thresholds):
            digest.update(np.ascontiguousarray(np.round(arr.astype(np.float64), 10)).tobytes())
        return digest.hexdigest()


def _word_analyzer(settings: dict[str, Any]) -> Any:
    """scikit-learn's word analyzer for these settings: lower-case, tokens, then n-grams."""
    pattern = re.compile(settings["token_pattern"])
    lo, hi = settings["ngram_range"]

    def analyze(text: str) -> list[str]:
        tokens: list[str] = pattern.findall(text.lower())
        if hi == 1:
            return tokens
        grams = list(tokens) if lo == 1 else []
        count = len(tokens)
        for n in range(max(lo, 2), min(hi, count) + 1):
            # " ".join(tokens[i : i + n]) for every i, without slicing the list each time.
            grams.extend(map(" ".join, zip(*(tokens[k:] for k in range(n)), strict=False)))
        return grams

    return analyze


def _first_seen_counts(cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of `cols` in order of first appearance, and how often each appears:
    `Counter(cols)`'s keys and values, computed by sorting instead of hashing.

    Each value is sorted together with its position (value in the high 32 bits, position in the
    low ones), so a value's first entry holds its first position; sorting those first positions
    (in the high bits now, the value's rank below) gives the order of first appearance.
    """
    n = cols.size
    key = cols.astype(np.uint64)
    key <<= _HALF
    key |= np.arange(n, dtype=np.uint64)
    key.sort()
    values = key >> _HALF
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    first = key[starts] & _LOW
    first <<= _HALF
    first |= np.arange(starts.size, dtype=np.uint64)
    first.sort()
    rank = (first & _LOW).astype(np.intp)
    counts = np.diff(starts, append=n)
    return values[starts][rank].astype(np.intp), counts[rank].astype(np.float64)


_HIT = partial(ne, -1)  # a vocabulary lookup that found a column (see `vocab.get(term, -1)`)
_HALF = np.uint64(32)
_LOW = np.uint64(0xFFFFFFFF)


class LeanScorer:
    """The model's linear scores for one email without building sparse matrices.

    Same arithmetic as `IntentModel.decision(IntentModel.features(...))` (sublinear TF times IDF,
    L2-normalised per block, block weights, dot product with the coefficients), but with the
    fitted vocabularies and a transposed coefficient matrix, which avoids scikit-learn's
    per-call overhead: a single email costs a fraction of a batch-of-one `transform`.

    Each block's terms are put in the order in which they first appear in the text (the order of
    a `Counter`), so that the sums are formed in the same order every time.
    """

    def __init__(self, model: IntentModel) -> None:
        coef_t = np.ascontiguousarray(model.coef.T, dtype=np.float64)  # (n_features, k)
        self.coef_t = coef_t
        self.intercept = np.asarray(model.intercept, dtype=np.float64)
        self._char_cache: dict[str, bytes] = {}
        self.char_range = VECTORIZER_SETTINGS["char"]["ngram_range"]
        self.blocks = []
        offset = 0
        for name in BLOCKS:
            terms, idf = model.vocab[name]
            self.blocks.append(
                (
                    name,
                    _word_analyzer(VECTORIZER_SETTINGS[name]),
                    terms,
                    np.asarray(idf, dtype=np.float64),
                    coef_t[offset : offset + len(terms)],  # this block's rows (a view)
                    BLOCK_WEIGHTS[name],
                )
            )
            offset += len(terms)

    def _word_char_cols(self, word: str, vocab: dict[str, int]) -> bytes:
        # scikit-learn's char_wb n-grams of one word: padded with spaces, every n-gram of each
        # size in turn, up to the padded word itself when that is shorter than the largest size.
        # The vocabulary columns they hit, as the bytes of a C int array, cached per word: most
        # words repeat within and across emails.
        lo, hi = self.char_range
        padded = " " + word + " "
        size = len(padded)
        grams = [
            padded[i : i + n] for n in range(lo, min(hi, size) + 1) for i in range(size - n + 1)
        ]
        found = filter(_HIT, map(vocab.get, grams, repeat(-1)))
        hit = array("i", found).tobytes()
        if len(self._char_cache) < CHAR_CACHE_WORDS:
            self._char_cache[word] = hit
        return hit

    def _char_counts(self, text: str, vocab: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
        # scikit-learn's char_wb analyzer, word by word: lower-case, split on whitespace, and the
        # n-grams of each word; then each column's count, in order of first appearance.
        words = text.lower().split()
        hits = list(map(self._char_cache.get, words))
        try:
            joined = b"".join(hits)  # type: ignore[arg-type]
        except TypeError:  # words met for the first time (None in `hits`)
            joined = b"".join(
                hit if hit is not None else self._word_char_cols(word, vocab)
                for word, hit in zip(words, hits, strict=True)
            )
        cols = np.frombuffer(joined, dtype=_CACHED_INT)
        if not cols.size:
            return cols, np.zeros(0)
        return _first_seen_counts(cols)

    def decision(self, main: str, quoted: str) -> np.ndarray:
        """Raw linear scores of one (main, quoted) text pair."""
        out = self.intercept.copy()
        texts = {"word": main, "char": char_view(main), "quoted": quoted, "ask": ask_text(main)}
        for name, analyze, vocab, idf, coef_t, weight in self.blocks:
            if name == "char":
                cols, tf = self._char_counts(texts[name], vocab)
                if not cols.size:
                    continue
            else:
                terms = Counter(analyze(texts[name]))
                if not terms:
                    continue
                found = np.fromiter(
                    map(vocab.get, terms, repeat(-1)), dtype=np.int64, count=len(terms)
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
            out += (values * (weight / norm)) @ coef_t[cols]
        return out


def feature_spec() -> str:
    """The feature settings; a model file only fits the settings it was built with."""
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
    parts = [
        f"{name}:" + ",".join(f"{k}={settings[k]!r}" for k in keys)
        for name, settings in sorted(VECTORIZER_SETTINGS.items())
    ]
    head = (
        f"quoted_weight={QUOTED_WEIGHT};ask_weight={ASK_WEIGHT};char_view={CHAR_HEAD}+{CHAR_TAIL};"
        "calibration=stacked;"
    )
    return head + ";".join(parts)


def _restore_vocab(vocab: dict[str, Any]) -> dict[str, tuple[dict[str, int], np.ndarray]]:
    out = {}
    for name in BLOCKS:
        terms = (
            np.asarray(vocab[name]["terms"], dtype=np.uint8).tobytes().decode("utf-8").split("\x00")
        )
        out[name] = (
            dict(zip(terms, range(len(terms)), strict=True)),
            np.asarray(vocab[name]["idf"], dtype=np.float64),
        )
    return out


def versions() -> dict[str, str]:
    """Library versions a model file is bound to."""
    return {
        "scikit-learn": dist_version("scikit-learn"),
        "skops": dist_version("skops"),
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
    import skops.io as sio

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
    state = read_state(artifact)
    if state.get("feature_spec") != feature_spec():
        raise ModelIntegrityError(
            "integrity check failed: the model was built with other feature settings than this "
            "version of Countersign; retrain with `countersign train`"
        )
    model = IntentModel(
        vocab=_restore_vocab(state["vocab"]),
        coef=np.asarray(state["coef"], dtype=np.float32),
        intercept=np.asarray(state["intercept"], dtype=np.float64),
        calibration=np.asarray(state["calibration"], dtype=np.float64),
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


_MAX_SCHEMA_BYTES = 5 * 1024 * 1024


def read_state(artifact: Path) -> dict[str, Any]:
    """Read a skops file that holds only dicts, lists, JSON values and numpy arrays.

    No object is constructed from the file: any other node type is refused. This is stricter
    than `skops.io.load` with a trusted-types list, and does not import scikit-learn.
    """
    try:
        with zipfile.ZipFile(artifact) as archive:
            info = archive.getinfo("schema.json")
            if info.file_size > _MAX_SCHEMA_BYTES:
                raise ModelIntegrityError("integrity check failed: schema.json is too large")
            schema = json.loads(archive.read("schema.json"))
            names = set(archive.namelist())

            def node(item: Any) -> Any:
                if not isinstance(item, dict):
                    raise ModelIntegrityError("integrity check failed: malformed schema")
                kind = item.get("__loader__")
                cls = (item.get("__module__"), item.get("__class__"))
                if kind == "DictNode" and cls == ("builtins", "dict"):
                    return {str(k): node(v) for k, v in item["content"].items()}
                if kind == "ListNode" and cls == ("builtins", "list"):
                    return [node(v) for v in item["content"]]
                if kind == "JsonNode" and cls[0] == "builtins":
                    return json.loads(item["content"])
                if kind == "NdArrayNode" and cls == ("numpy", "ndarray"):
                    name = str(item.get("file", ""))
                    if item.get("type") != "numpy" or name not in names:
                        raise ModelIntegrityError("integrity check failed: bad array entry")
                    with archive.open(name) as fh:
                        return np.load(fh, allow_pickle=False)
                raise ModelIntegrityError(
                    f"integrity check failed: the artifact holds a {cls[0]}.{cls[1]} "
                    "object; only dicts, lists, JSON values and arrays are accepted"
                )

            state = node(schema)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ModelIntegrityError(f"integrity check failed: unreadable artifact ({exc})") from None
    if not isinstance(state, dict):
        raise ModelIntegrityError("integrity check failed: the artifact is not a model state")
    return state
