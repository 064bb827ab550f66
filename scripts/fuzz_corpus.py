"""Fuzz the MIME parser and the detector with real mail and hostile variants of it.

    python scripts/fuzz_corpus.py [--heavy-every 10] [--bound 2.0] [--workers 2] [--json]

Sources: every file under ../shared/corpora (skipped when absent) and CPython's email test
samples (test/test_email/data/msg_*.txt; skipped when the stdlib test package is not installed).
Each message runs as it is and mutated: truncated, flipped bytes, wrong charset labels, nested 200
multiparts deep, 2,000 attached messages deep, 50,000 extra headers; and, for every Nth message
(`--heavy-every`), with a 5 MB line, a base64 part that decodes to 6 MB, 10,000 parts, and an
HTML-only body nested 40,000 elements deep.

Every variant is parsed (app.mail.parse.email_from_mime) and, when it parses, classified
(Detector.from_dir(), the shipped model) inside worker processes under an address-space limit;
a worker that hangs past `--timeout` or dies is killed, counted and replaced. Per category the
report gives the count, refusals (InvalidInput/PayloadTooLarge: the documented clean outcome),
crashes (any other exception, or a dead worker), hangs, variants over `--bound` seconds, the
maximum and 99th-percentile time per message, and the largest peak-RSS growth of one message.
Exit status 1 on any crash, hang or variant over the bound; failing inputs are written to
`--save` for reproduction.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import math
import multiprocessing as mp
import os
import random
import re
import resource
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_CORPORA = ROOT.parent / "shared" / "corpora"
MB = 1024 * 1024

# --- sources ------------------------------------------------------------------------------------


def stdlib_samples() -> list[Path]:
    """CPython's email test messages, or none when the stdlib test package is not installed."""
    try:
        import test  # the stdlib's own test package
    except ImportError:
        return []
    data = Path(os.path.dirname(test.__file__)) / "test_email" / "data"
    return sorted(data.glob("msg_*.txt")) if data.is_dir() else []


def corpus_files(corpora: Path) -> list[Path]:
    """Every regular file under the corpora directory except its documentation."""
    if not corpora.is_dir():
        return []
    return sorted(p for p in corpora.rglob("*") if p.is_file() and p.suffix.lower() != ".md")


# --- mutations ----------------------------------------------------------------------------------

BOGUS_CHARSETS = [
    b"x-unknown",
    b"utf-16",
    b"utf-7",
    b"rot13",
    b"base64",
    b"idna",
    b"iso-2022-jp",
    b"unicode-escape",
    b"",
    b'"',
    b"a" * 300,
]
HEAD_END = re.compile(rb"\r?\n\r?\n")


def split_head(raw: bytes) -> tuple[bytes, bytes]:
    """(headers with their final line break, body) of a message."""
    found = HEAD_END.search(raw)
    if found is None:
        return raw, b""
    return raw[: found.end()], raw[found.end() :]


def truncated(raw: bytes, rng: random.Random) -> bytes:
    """Cut anywhere from the first header to the end of the body."""
    return raw[: rng.randint(0, max(len(raw) - 1, 0))]


def bit_flips(raw: bytes, rng: random.Random) -> bytes:
    """About one byte in five hundred changed (at least one)."""
    data = bytearray(raw)
    for _ in range(max(1, len(data) // 500)):
        if data:
            data[rng.randrange(len(data))] ^= rng.randint(1, 255)
    return bytes(data)


def wrong_charset(raw: bytes, rng: random.Random) -> bytes:
    """Every charset label replaced by a wrong or bogus one (one added when there is none)."""
    label = rng.choice(BOGUS_CHARSETS)
    out, count = re.subn(rb'charset="?[^";\r\n]*"?', b"charset=" + label, raw, flags=re.I)
    if count:
        return out
    return b"Content-Type: text/plain; charset=" + label + b"\r\n" + raw


def deep_multipart(raw: bytes, rng: random.Random, levels: int = 200) -> bytes:
    """The message as the innermost part of 200 nested multiparts (past MAX_DEPTH)."""
    head, body = split_head(raw)
    inner = b"Content-Type: text/plain\r\n\r\n" + body
    for i in range(levels):
        inner = (
            b"Content-Type: multipart/mixed; boundary=n%d\r\n\r\n--n%d\r\n" % (i, i)
            + inner
            + b"\r\n--n%d--\r\n" % i
        )
    return head.rstrip(b"\r\n") + b"\r\nMIME-Version: 1.0\r\n" + inner


def deep_rfc822(raw: bytes, rng: random.Random, levels: int = 2_000) -> bytes:
    """The message attached inside 2,000 nested message/rfc822 parts (past the parser's stack)."""
    wrapper = b"From: fwd@example.com\r\nContent-Type: message/rfc822\r\n\r\n"
    return wrapper * levels + raw


def many_headers(raw: bytes, rng: random.Random, count: int = 50_000) -> bytes:
    """50,000 extra header lines before the real ones."""
    return b"".join(b"X-Filler-%d: value\r\n" % i for i in range(count)) + raw


def huge_line(raw: bytes, rng: random.Random, size: int = 5 * 1024 * 1024) -> bytes:
    """A single 5 MB line at the start of the body."""
    head, body = split_head(raw)
    return head + rng.choice([b"A", b"=", b"\xe9"]) * size + b"\r\n" + body


def base64_bomb(raw: bytes, rng: random.Random, decoded: int = 6 * 1024 * 1024) -> bytes:
    """The message plus a text part of base64 that decodes to 6 MB (8 MB on the wire)."""
    payload = base64.encodebytes(b"please wire the funds today " * (decoded // 28))
    return (
        b"From: a@example.com\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=bomb\r\n\r\n"
        b"--bomb\r\nContent-Type: message/rfc822\r\n\r\n" + raw + b"\r\n"
        b"--bomb\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + payload
        + b"--bomb--\r\n"
    )


def many_parts(raw: bytes, rng: random.Random, count: int = 10_000) -> bytes:
    """10,000 tiny parts, then the message attached."""
    part = b"--p\r\nContent-Type: text/plain\r\n\r\nx\r\n"
    return (
        b"From: a@example.com\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=p\r\n\r\n"
        + part * count
        + b"--p\r\nContent-Type: message/rfc822\r\n\r\n"
        + raw
        + b"\r\n--p--\r\n"
    )


def deep_html(raw: bytes, rng: random.Random, depth: int = 40_000) -> bytes:
    """An HTML-only body nested 40,000 elements deep (200 KB), with the original text inside."""
    head, body = split_head(raw)
    head = re.sub(rb"(?im)^content-(type|transfer-encoding):.*\r?\n(?:[ \t].*\r?\n)*", b"", head)
    text = body[:2000].replace(b"<", b"&lt;")
    return (
        head.rstrip(b"\r\n")
        + b"\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        + b"<div>" * depth
        + text
        + b"\r\n"
    )


Mutation = Callable[[bytes, random.Random], bytes]
LIGHT: dict[str, Mutation] = {
    "original": lambda raw, _rng: raw,
    "truncated": truncated,
    "bit-flips": bit_flips,
    "wrong-charset": wrong_charset,
    "deep-multipart": deep_multipart,
    "deep-rfc822": deep_rfc822,
    "many-headers": many_headers,
}
HEAVY: dict[str, Mutation] = {
    "huge-line": huge_line,
    "base64-bomb": base64_bomb,
    "many-parts": many_parts,
    "deep-html": deep_html,
}
CATEGORIES: dict[str, Mutation] = {**LIGHT, **HEAVY}


def variant(path: str, category: str, seed: int) -> bytes:
    """The bytes of one variant, rebuilt deterministically from the file, category and seed."""
    raw = Path(path).read_bytes()
    digest = hashlib.sha256(f"{seed}:{path}:{category}".encode()).digest()
    return CATEGORIES[category](raw, random.Random(int.from_bytes(digest[:8], "big")))


# --- worker -------------------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    """What one variant did: ok, refused, crash or hang, how long it took and its memory."""

    source: str
    category: str
    size: int = 0
    status: str = "ok"
    seconds: float = 0.0
    parse_seconds: float = 0.0
    rss_growth_mb: float = 0.0
    error: str = ""


def _status_kb(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux clear_refs), so each message gets its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def worker(conn: Connection, memory_mb: int) -> None:
    """Parse and classify the variants the parent sends until it sends None."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if memory_mb > 0:
        limit = memory_mb * MB
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    from app.core.errors import InvalidInput, PayloadTooLarge
    from app.detect.engine import Detector
    from app.mail.parse import email_from_mime

    detector = Detector.from_dir()
    detector.classify(email_from_mime(b"From: warm@example.com\r\n\r\nwarm up\r\n"))
    conn.send("ready")
    while True:
        task = conn.recv()
        if task is None:
            return
        path, category, seed = task
        out = Outcome(source=path, category=category)
        try:
            raw = variant(path, category, seed)
        except Exception as exc:  # a bug of this script, not of the parser
            out.status, out.error = "crash", f"building the variant: {exc!r}"
            conn.send(asdict(out))
            continue
        out.size = len(raw)
        exact_peak = _reset_peak_rss()
        before_kb = _status_kb("VmRSS") or 0
        before_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        try:
            email = email_from_mime(raw)
            out.parse_seconds = time.perf_counter() - started
            detector.classify(email)
        except (InvalidInput, PayloadTooLarge) as exc:
            out.status, out.error = "refused", f"{type(exc).__name__}: {exc}"[:300]
        except BaseException as exc:
            out.status = "crash"
            tb = traceback.extract_tb(exc.__traceback__)
            where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"
            out.error = f"{type(exc).__name__} at {where}: {exc}"[:500]
        out.seconds = time.perf_counter() - started
        if exact_peak:
            peak_kb = _status_kb("VmHWM") or before_kb
            out.rss_growth_mb = max(0, peak_kb - before_kb) / 1024
        else:
            grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_max
            out.rss_growth_mb = max(0, grown) / 1024
        del raw
        conn.send(asdict(out))


class Worker:
    """One worker process and its pipe; restarted after a hang or a death."""

    def __init__(self, ctx: Any, memory_mb: int) -> None:
        self.ctx = ctx
        self.memory_mb = memory_mb
        self.task: tuple[str, str, int] | None = None
        self.started_at = 0.0
        self._start()

    def _start(self) -> None:
        parent, child = self.ctx.Pipe()
        self.conn: Connection = parent
        self.proc = self.ctx.Process(target=worker, args=(child, self.memory_mb), daemon=True)
        self.proc.start()
        child.close()
        if not self.conn.poll(120) or self.conn.recv() != "ready":
            raise RuntimeError("a fuzz worker did not start (model not loadable?)")

    def send(self, task: tuple[str, str, int]) -> None:
        self.task = task
        self.started_at = time.perf_counter()
        self.conn.send(task)

    def restart(self) -> None:
        self.proc.kill()
        self.proc.join(10)
        self.conn.close()
        self._start()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()


def run(tasks: list[tuple[str, str, int]], args: argparse.Namespace) -> list[Outcome]:
    """Run every task on the workers; a hang or death becomes an outcome, not a stop."""
    ctx = mp.get_context("spawn")
    workers = [Worker(ctx, args.max_memory_mb) for _ in range(max(1, args.workers))]
    pending = list(reversed(tasks))
    results: list[Outcome] = []
    done_at = time.perf_counter()
    try:
        while pending or any(w.task for w in workers):
            for w in workers:
                if w.task is None and pending:
                    w.send(pending.pop())
            for w in workers:
                if w.task is None:
                    continue
                path, category, _seed = w.task
                if w.conn.poll(0.01):
                    try:
                        results.append(Outcome(**w.conn.recv()))
                        w.task = None
                        continue
                    except (EOFError, OSError):
                        pass
                elapsed = time.perf_counter() - w.started_at
                if not w.proc.is_alive():
                    code = w.proc.exitcode
                    results.append(
                        Outcome(path, category, status="crash", seconds=elapsed,
                                error=f"worker died (exit code {code}; -9 is the kernel's "
                                "OOM killer or the address-space limit)")
                    )  # fmt: skip
                    w.task = None
                    w.restart()
                elif elapsed > args.timeout:
                    results.append(
                        Outcome(path, category, status="hang", seconds=elapsed,
                                error=f"killed after {args.timeout:.0f} s")
                    )  # fmt: skip
                    w.task = None
                    w.restart()
            if args.progress and time.perf_counter() - done_at > 15:
                done_at = time.perf_counter()
                print(f"  {len(results)}/{len(tasks)} variants", file=sys.stderr, flush=True)
    finally:
        for w in workers:
            w.stop()
    return results


# --- report -------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of values (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass(slots=True)
class CategoryReport:
    """Figures of one category of variants."""

    category: str
    count: int = 0
    ok: int = 0
    refused: int = 0
    crashes: int = 0
    hangs: int = 0
    over_bound: int = 0
    max_seconds: float = 0.0
    p99_seconds: float = 0.0
    max_parse_seconds: float = 0.0
    max_rss_growth_mb: float = 0.0
    max_size_mb: float = 0.0
    examples: list[str] = field(default_factory=list)


def summarise(results: list[Outcome], bound: float) -> list[CategoryReport]:
    """One report per category, in the order of CATEGORIES."""
    by_category: dict[str, list[Outcome]] = defaultdict(list)
    for r in results:
        by_category[r.category].append(r)
    reports = []
    for category in CATEGORIES:
        items = by_category.get(category, [])
        if not items:
            continue
        rep = CategoryReport(category, count=len(items))
        times = [r.seconds for r in items]
        rep.ok = sum(r.status == "ok" for r in items)
        rep.refused = sum(r.status == "refused" for r in items)
        rep.crashes = sum(r.status == "crash" for r in items)
        rep.hangs = sum(r.status == "hang" for r in items)
        rep.over_bound = sum(r.seconds > bound and r.status != "hang" for r in items)
        rep.max_seconds = max(times)
        rep.p99_seconds = percentile(times, 0.99)
        rep.max_parse_seconds = max(r.parse_seconds for r in items)
        rep.max_rss_growth_mb = max(r.rss_growth_mb for r in items)
        rep.max_size_mb = max(r.size for r in items) / MB
        bad = [r for r in items if r.status in ("crash", "hang") or r.seconds > bound]
        rep.examples = [
            f"{r.status} {r.seconds:.2f}s {r.source} {r.error}".strip() for r in bad[:5]
        ]
        reports.append(rep)
    return reports


def save_failures(results: list[Outcome], bound: float, target: Path, seed: int) -> list[Path]:
    """Write the bytes of each failing variant (at most 50) for reproduction."""
    target.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []
    for r in results:
        if r.status not in ("crash", "hang") and r.seconds <= bound:
            continue
        if len(saved) >= 50:
            break
        name = f"{r.category}-{Path(r.source).stem[:40]}-{r.status}.eml"
        path = target / name
        path.write_bytes(variant(r.source, r.category, seed))
        saved.append(path)
    return saved


def print_table(reports: list[CategoryReport], bound: float) -> None:
    header = (
        f"{'category':15s} {'count':>6s} {'ok':>6s} {'refused':>7s} {'crash':>5s} {'hang':>4s} "
        f"{'>' + format(bound, 'g') + 's':>6s} {'max s':>7s} {'p99 s':>7s} {'max parse':>9s} "
        f"{'max RSS+':>9s} {'max size':>9s}"
    )
    print(header)
    print("-" * len(header))
    for r in reports:
        print(
            f"{r.category:15s} {r.count:6d} {r.ok:6d} {r.refused:7d} {r.crashes:5d} {r.hangs:4d} "
            f"{r.over_bound:6d} {r.max_seconds:7.3f} {r.p99_seconds:7.3f} "
            f"{r.max_parse_seconds:9.3f} {r.max_rss_growth_mb:7.1f}MB {r.max_size_mb:7.2f}MB"
        )
    for r in reports:
        for line in r.examples:
            print(f"  [{r.category}] {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    parser.add_argument("--no-stdlib", action="store_true", help="skip CPython's email samples")
    parser.add_argument("--limit", type=int, default=0, help="at most this many source files")
    parser.add_argument(
        "--heavy-every", type=int, default=10, help="heavy variants for every Nth file (1: all)"
    )
    parser.add_argument("--categories", default="", help="comma-separated subset to run")
    parser.add_argument("--bound", type=float, default=2.0, help="seconds allowed per message")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a kill")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-memory-mb", type=int, default=3072, help="address space/worker")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--save", type=Path, default=Path(tempfile.gettempdir()) / "countersign-fuzz-failures"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)

    sources = corpus_files(args.corpora)
    if not sources:
        print(f"corpora: none at {args.corpora} (skipped)", file=sys.stderr)
    samples = [] if args.no_stdlib else stdlib_samples()
    if not args.no_stdlib and not samples:
        print("CPython email samples: stdlib test package not installed (skipped)", file=sys.stderr)
    files = sources + samples
    if args.limit:
        files = files[: args.limit]
    if not files:
        print("nothing to fuzz", file=sys.stderr)
        return 0
    wanted = {c for c in args.categories.split(",") if c} or set(CATEGORIES)
    unknown = wanted - set(CATEGORIES)
    if unknown:
        parser.error(f"unknown categories: {', '.join(sorted(unknown))}")
    tasks: list[tuple[str, str, int]] = []
    for i, path in enumerate(files):
        for category in CATEGORIES:
            heavy = category in HEAVY
            if category in wanted and (not heavy or i % max(1, args.heavy_every) == 0):
                tasks.append((str(path), category, args.seed))
    print(
        f"{len(files)} files ({len(sources)} corpora, {len(samples)} CPython samples), "
        f"{len(tasks)} variants, {args.workers} workers",
        file=sys.stderr,
    )
    started = time.perf_counter()
    results = run(tasks, args)
    elapsed = time.perf_counter() - started
    reports = summarise(results, args.bound)
    failed = any(r.crashes or r.hangs or r.over_bound for r in reports)
    saved = save_failures(results, args.bound, args.save, args.seed) if failed else []
    if args.json:
        print(
            json.dumps(
                {
                    "files": len(files),
                    "variants": len(results),
                    "seconds": round(elapsed, 1),
                    "bound": args.bound,
                    "categories": [asdict(r) for r in reports],
                    "saved": [str(p) for p in saved],
                },
                indent=2,
            )
        )
    else:
        print_table(reports, args.bound)
        print(f"{len(results)} variants of {len(files)} files in {elapsed:.0f} s")
        if saved:
            print(f"failing inputs written to {args.save}/ ({len(saved)} files)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
