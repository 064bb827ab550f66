"""The `countersign` command."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from app.detect.service import InputItem

CHUNK = 64

# `countersign classify` imports only what classifying needs: app.detect.service imports training
# and scikit-learn (about a second) only when training, tqdm is imported only when a progress bar
# is shown, and the database-backed commands not at all (see `main`).
# tests/cli/test_classify_startup.py checks this.


def _iter_items(paths: list[str], stdin: TextIO) -> Iterator[InputItem]:
    from app.detect.service import InputItem

    for path in paths or ["-"]:
        if path == "-":
            for n, line in enumerate(stdin, 1):
                if line.strip():
                    yield InputItem(f"-:{n}", "json", line)
        elif path.endswith(".jsonl") or path.endswith(".json"):
            try:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    for n, line in enumerate(fh, 1):
                        if line.strip():
                            yield InputItem(f"{path}:{n}", "json", line)
            except OSError as exc:
                yield InputItem(path, "json", json.dumps({"__error__": str(exc)}))
        else:
            yield InputItem(path, "mime-path", path)


def _chunks(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_worker_detector: Any = None


def _init_worker(model_dir: str | None, directory: str | None) -> None:
    global _worker_detector
    from app.detect.service import build_detector

    _worker_detector = build_detector(
        Path(model_dir) if model_dir else None, Path(directory) if directory else None
    )


def _work(chunk: list[InputItem]) -> list[str]:
    from app.detect.service import classify_items

    return [json.dumps(v, ensure_ascii=False) for v in classify_items(_worker_detector, chunk)]


class _NoBar:
    """Stands in for a tqdm bar that is not shown (tqdm is not imported then)."""

    def update(self, _n: int) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to close."""


def cmd_classify(args: argparse.Namespace) -> int:
    """Stream verdicts, one JSON line per input, in input order."""
    from app.detect.model import ModelIntegrityError
    from app.detect.service import build_detector, classify_items

    model_dir = str(args.model_dir) if args.model_dir else None
    directory = str(args.directory) if args.directory else None
    try:
        detector = build_detector(args.model_dir, args.directory)
    except ModelIntegrityError as exc:
        print(f"countersign: {exc}", file=sys.stderr)
        return 2
    workers = args.workers if args.workers is not None else min(2, os.cpu_count() or 1)
    chunks = _chunks(_iter_items(args.paths, sys.stdin), CHUNK)
    show = args.progress or (sys.stderr.isatty() and bool(args.paths))
    bar: Any = _NoBar()
    if show:
        from tqdm import tqdm

        bar = tqdm(unit="email", file=sys.stderr)
    out = sys.stdout
    if workers <= 1 or args.paths == ["-"] or not args.paths:
        for chunk in chunks:
            for verdict in classify_items(detector, chunk):
                out.write(json.dumps(verdict, ensure_ascii=False) + "\n")
            out.flush()
            bar.update(len(chunk))
    else:
        global _worker_detector
        if sys.platform.startswith("linux"):
            # Forked workers share the already loaded (and vetted) model copy-on-write: everything
            # a worker would otherwise build on first use is built here, once, and the garbage
            # collector is told to leave these objects alone so that it does not copy their pages
            # into every worker.
            detector.warm_up()
            import gc

            gc.freeze()
            _worker_detector = detector
            ctx = multiprocessing.get_context("fork")
            init: Any = None
            initargs: tuple[Any, ...] = ()
        else:
            ctx = multiprocessing.get_context("spawn")
            init, initargs = _init_worker, (model_dir, directory)
        with ctx.Pool(workers, initializer=init, initargs=initargs) as pool:
            for lines in pool.imap(_work, chunks, chunksize=1):
                out.write("\n".join(lines) + "\n")
                bar.update(len(lines))
            out.flush()
    bar.close()
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train from the corpus and write a model directory."""
    from app.detect.service import train_and_save

    manifest = train_and_save(
        args.out,
        budget=args.budget,
        jobs=args.jobs,
        progress=lambda m: print(f"train: {m}", file=sys.stderr),
    )
    val = manifest["validation"]
    print(
        json.dumps(
            {
                "model_version": manifest["model_version"],
                "out": str(args.out),
                "sha256": manifest["sha256"],
                "thresholds": manifest["thresholds"],
                "validation": {
                    k: val[k]
                    for k in (
                        "emails",
                        "recall",
                        "false_positive_rate",
                        "hard_negative_fpr",
                        "top_intent_accuracy",
                        "grammar_pair_flips",
                        "grammar_pairs",
                    )
                },
            },
            indent=2,
        )
    )
    return 0


def _print_labelled(title: str, val: dict[str, Any]) -> None:
    w = sys.stdout.write
    w(
        f"{title}: {val['emails']} emails "
        f"({val['risky']} risky, {val['benign']} benign, "
        f"{val['hard_negatives']} of them hard negatives)\n\n"
    )
    w(f"{'intent':<20}{'support':>8}{'precision':>11}{'recall':>8}{'FPR':>8}\n")
    for name, m in val["per_intent"].items():

        def fmt(x: float | None) -> str:
            return "-" if x is None else f"{x:.3f}"

        w(
            f"{name:<20}{m['support']:>8}{fmt(m['precision']):>11}{fmt(m['recall']):>8}"
            f"{fmt(m['false_positive_rate']):>8}\n"
        )
    w(
        f"\noverall recall {val['recall']}  false-positive rate {val['false_positive_rate']}  "
        f"hard-negative FPR {val['hard_negative_fpr']}  "
        f"top intent right {val['top_intent_accuracy']}\n"
    )
    w(
        f"grammar pairs {val['grammar_pairs']}, flips {val['grammar_pair_flips']} "
        f"(rate {val['grammar_pair_flip_rate']})\n\n"
        "confusion (true primary label -> top predicted)\n"
    )
    cols = [
        "none",
        "payment_change",
        "credential_request",
        "urgent_transfer",
        "gift_card",
        "data_request",
    ]
    w(f"{'':<20}" + "".join(f"{c[:10]:>12}" for c in cols) + "\n")
    for row, counts in val["confusion"].items():
        w(f"{row:<20}" + "".join(f"{counts.get(c, 0):>12}" for c in cols) + "\n")
    for heading, key, metric in (
        ("recall by style", "recall_by_style", "recall"),
        ("recall by language", "recall_by_lang", "recall"),
        ("false-positive rate by style", "fpr_by_style", "fpr"),
    ):
        w(
            f"\n{heading}: "
            + ", ".join(f"{k} {v[metric]} (n={v['n']})" for k, v in val[key].items())
            + "\n"
        )


def _print_report(report: dict[str, Any]) -> None:
    w = sys.stdout.write
    _print_labelled(f"model {report['model_version']}  validation split", report["validation"])
    for held in report.get("holdout", []):
        w("\n")
        _print_labelled(f"held-out set {held['path']} (never trained on)", held["figures"])
    for legit in report.get("legitimate", []):
        w(
            f"\nlegitimate mail {legit['path']}: {legit['flagged']}/{legit['emails']} flagged "
            f"(flag rate {legit['flag_rate']}), {legit['unparseable']} unparseable\n"
        )
        for f in legit["flagged_files"][:20]:
            w(f"  {f['file']}: {', '.join(f['intents'])}: {f['evidence'][:1]}\n")


def cmd_eval(args: argparse.Namespace) -> int:
    """Report quality on the validation split and flag rates on legitimate mail."""
    from tqdm import tqdm

    from app.detect.corpus import HOLDOUT_DIR, Example, corpus_files, load_corpus
    from app.detect.evaluate import evaluate_examples, flag_rate, iter_eml
    from app.detect.model import ModelIntegrityError
    from app.detect.service import build_detector

    try:
        detector = build_detector(args.model_dir, args.directory)
    except ModelIntegrityError as exc:
        print(f"countersign: {exc}", file=sys.stderr)
        return 2

    def bar(total: int, desc: str) -> tqdm[Any]:
        return tqdm(
            total=total, desc=desc, unit="email", file=sys.stderr, disable=not sys.stderr.isatty()
        )

    def labelled(name: str, examples: list[Example]) -> dict[str, Any]:
        with bar(len(examples), name) as progress:
            return evaluate_examples(detector, examples, progress=progress.update)

    report: dict[str, Any] = {
        "model_version": detector.model_version,
        "validation": labelled("validation", [e for e in load_corpus() if e.split == "validation"]),
        "holdout": [],
        "legitimate": [],
    }
    # Each held-out file is its own set: they come from different writers.
    for held in args.holdout if args.holdout is not None else [HOLDOUT_DIR]:
        for path in corpus_files(held):
            report["holdout"].append(
                {"path": str(path), "figures": labelled(path.stem, load_corpus(path))}
            )
    for legit in args.legit or []:
        files = iter_eml([legit])
        with bar(len(files), str(legit.name)) as progress:
            figures = flag_rate(detector, files, progress=progress.update)
        report["legitimate"].append({"path": str(legit), **figures})
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    return 0


def cmd_corpus(args: argparse.Namespace) -> int:
    """Counts of the training corpus and its near-duplicates."""
    from app.detect.corpus import HOLDOUT_DIR, load_corpus, near_duplicate_pairs, summarize

    examples = load_corpus()
    summary = summarize(examples)
    dups = near_duplicate_pairs(examples)
    summary["near_duplicates"] = [
        {
            "a": examples[i].id,
            "b": examples[j].id,
            "cosine": round(s, 3),
            "same_split": examples[i].split == examples[j].split,
        }
        for i, j, s in dups
    ]
    held = load_corpus(HOLDOUT_DIR)
    holdout: dict[str, object] = {"total": len(held)}
    summary["holdout"] = holdout
    if held:
        both = examples + held
        # A held-out email that is a near-copy of a training email would overstate quality.
        holdout["near_duplicates_of_training"] = [
            {"training": both[i].id, "holdout": both[j].id, "cosine": round(s, 3)}
            for i, j, s in near_duplicate_pairs(both)
            if i < len(examples) <= j
        ]
    print(json.dumps(summary, indent=2))
    return 0


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the HTTP API (migrating the database first; embedded Postgres without DATABASE_URL)."""
    import uvicorn

    from app.core.config import Settings
    from app.core.db import stop_embedded
    from app.core.logs import configure_logging
    from app.core.runtime import open_database

    if not os.environ.get("COUNTERSIGN_PUBLIC_URL"):
        # Links in verdicts and notices point at where this server listens unless told otherwise.
        shown = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host  # noqa: S104
        os.environ["COUNTERSIGN_PUBLIC_URL"] = f"http://{shown}:{args.port}"
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    embedded = settings.database and not settings.database_url
    if settings.database:
        # Start the embedded Postgres (if needed) and migrate once here, so every uvicorn worker
        # finds the schema ready and uses the same URL.
        engine, _ = open_database(settings, migrate=True)
        os.environ["DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
        engine.dispose()
        print(f"database ready: {engine.url.render_as_string(hide_password=True)}", file=sys.stderr)
    # uvicorn re-raises SIGTERM after its graceful shutdown; with this handler that becomes a
    # normal exit, so the `finally` below still stops the embedded Postgres.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        uvicorn.run(
            "app.main:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="info",
            # Our own access log (JSON, no query strings) replaces uvicorn's; uvicorn's other
            # lines go through the same JSON handler.
            access_log=False,
            log_config=None,
            timeout_keep_alive=args.timeout_keep_alive,
        )
    finally:
        if embedded:
            stop_embedded(settings.data_dir)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Migrate the database (DATABASE_URL, else the embedded one) to a revision."""
    from app.core.config import Settings
    from app.core.migrate import downgrade, upgrade
    from app.core.runtime import open_database

    engine, _ = open_database(Settings())
    try:
        current = _current_revision(engine)
        if args.revision == "head" or args.revision > (current or ""):
            upgrade(engine, args.revision)
        else:
            downgrade(engine, args.revision)
        print(f"database at revision {_current_revision(engine) or 'base'}")
    finally:
        engine.dispose()
    return 0


def _current_revision(engine: Any) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        rev: str | None = MigrationContext.configure(conn).get_current_revision()
        return rev


def build_parser(*, full: bool = True) -> argparse.ArgumentParser:
    """The argument parser of every subcommand (`full=False`: only the commands defined in this
    module, whose registration imports nothing)."""
    parser = argparse.ArgumentParser(prog="countersign", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("classify", help="print one Verdict JSON line per email")
    p.add_argument(
        "paths", nargs="*", help=".eml files, .jsonl files of Email JSON, or - for stdin"
    )
    p.add_argument("--model-dir", type=Path, default=None)
    p.add_argument("--directory", type=Path, default=None, help="directory file (YAML or JSON)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: 2 or CPU count)")
    p.add_argument("--progress", action="store_true", help="show a progress bar on stderr")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("train", help="train a model from the corpus")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        help="target false-positive rate of the thresholds (default: 0.0075, DEFAULT_FPR_BUDGET in "
        "app/detect/train.py)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="processes for the six fits (default: one per core); the model does not depend on it",
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="report model quality")
    p.add_argument("--model-dir", type=Path, default=None)
    p.add_argument("--directory", type=Path, default=None)
    p.add_argument(
        "--legit",
        type=Path,
        action="append",
        help="directory of .eml files treated as legitimate (repeatable)",
    )
    p.add_argument(
        "--holdout",
        type=Path,
        action="append",
        help="labelled *.jsonl file, or directory of them, kept out of training; each file is "
        "reported as its own set (repeatable; default: the held-out sets the package ships)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("corpus", help="corpus counts and near-duplicates")
    p.set_defaults(func=cmd_corpus)

    p = sub.add_parser("serve", help="run the HTTP API")
    p.add_argument("--host", default=os.environ.get("COUNTERSIGN_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("COUNTERSIGN_PORT", "8000")))
    p.add_argument("--workers", type=int, default=1)
    p.add_argument(
        "--timeout-keep-alive",
        type=int,
        default=75,
        help="seconds an idle connection stays open (keep it above your load balancer's idle "
        "timeout, e.g. 60 s on AWS ALB)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("migrate", help="migrate the database to the latest schema")
    p.add_argument("--revision", default="head")
    p.set_defaults(func=cmd_migrate)
    if not full:
        return parser

    from app.directory.commands import register as register_directory_commands

    register_directory_commands(sub)

    from app.users.commands import register as register_user_commands

    register_user_commands(sub)

    from app.demo.commands import register as register_demo_command

    register_demo_command(sub)

    from app.verification import worker

    p = sub.add_parser("worker", help="deliver verification notices and run periodic upkeep")
    worker.add_arguments(p)
    p.set_defaults(func=worker.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = sys.argv[1:] if argv is None else argv
    # Registering the database-backed commands imports SQLAlchemy and the ORM models (about half
    # a second): `classify` does without them.
    args = build_parser(full=not argv or argv[0] != "classify").parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
