"""Benchmark `countersign classify` against bare stdlib parsing of the same .eml files, same run.

    python scripts/bench_classify.py [DIR ...] [--count 4000] [--workers 2] [--rounds 2]

Both sides run as child processes with the same number of worker processes over the same files
(cycled to --count), so the ratio compares like with like on this machine, now. Peak memory is
the largest resident set of any child process of that side.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIRS = [ROOT.parent / "shared" / "corpora" / "spamassassin"]

BARE = r"""
import email, sys
from email import policy
from multiprocessing import Pool

def work(path):
    msg = email.message_from_bytes(open(path, "rb").read(), policy=policy.compat32)
    n = 0
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            data = part.get_payload(decode=True) or b""
            try:
                text = data.decode(part.get_content_charset() or "utf-8", "replace")
            except LookupError:
                text = data.decode("latin-1")
            n += len(text)
    return n

if __name__ == "__main__":
    paths = [line.strip() for line in open(sys.argv[2]) if line.strip()]
    with Pool(int(sys.argv[1])) as pool:
        total = sum(pool.imap(work, paths, chunksize=64))
    print(len(paths), total)
"""


def run(cmd: list[str]) -> tuple[float, int, str]:
    """Wall time, peak RSS (KiB) of the command's processes, and its stdout's last line."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    lines = proc.stdout.strip().splitlines()
    return elapsed, max(after, before), (lines[-1] if lines else "") + f" ({len(lines)} lines)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dirs", nargs="*", type=Path)
    parser.add_argument("--count", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    dirs = args.dirs or DEFAULT_DIRS
    files = sorted(p for d in dirs if d.is_dir() for p in d.rglob("*.eml"))
    if not files:
        print(f"no .eml files under {[str(d) for d in dirs]}", file=sys.stderr)
        return 2
    chosen = [files[i % len(files)] for i in range(args.count)]
    countersign = str(Path(sys.executable).with_name("countersign"))
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "files.txt"
        listing.write_text("\n".join(str(p) for p in chosen))
        script = Path(tmp) / "bare.py"
        script.write_text(BARE)
        print(
            f"{len(chosen)} emails ({len(files)} distinct files), {args.workers} workers, "
            f"{os.cpu_count()} CPUs, best of {args.rounds} rounds"
        )
        bare_best = cls_best = float("inf")
        bare_mem = cls_mem = 0
        # Start-up (imports, model load and integrity check) measured on its own, one email.
        for round_no in range(args.rounds):
            # Alternate the two sides so drift in machine load hits both alike.
            t, mem, out = run([sys.executable, str(script), str(args.workers), str(listing)])
            if round_no == 0:
                bare_mem = mem  # getrusage keeps the maximum over all children so far
            bare_best = min(bare_best, t)
            t, mem, out = run(
                [countersign, "classify", "--workers", str(args.workers), *map(str, chosen)]
            )
            cls_best = min(cls_best, t)
            cls_mem = max(cls_mem, mem)
            lines = int(out.rsplit("(", 1)[1].split()[0])
            if lines != len(chosen):
                print(f"classify printed {lines} lines for {len(chosen)} inputs", file=sys.stderr)
                return 1
        # Start-up (imports, model load and integrity check) measured on its own, one email.
        startup, _m, _o = run([countersign, "classify", "--workers", "1", str(chosen[0])])
    bare_rate = len(chosen) / bare_best
    cls_rate = len(chosen) / cls_best
    print(f"bare stdlib parse + text : {bare_rate:8.0f} emails/s  ({bare_best:.2f} s)")
    print(
        f"countersign classify     : {cls_rate:8.0f} emails/s  ({cls_best:.2f} s, incl. start-up "
        "and model load)"
    )
    steady = len(chosen) / max(cls_best - startup, 1e-9)
    print(f"classify after start-up  : {steady:8.0f} emails/s  (start-up {startup:.2f} s)")
    print(
        f"ratio classify / bare    : {cls_rate / bare_rate:8.3f}  (after start-up: "
        f"{steady / bare_rate:.3f})"
    )
    print(
        f"peak RSS, largest process: bare {bare_mem / 1024:.0f} MiB, "
        f"classify {cls_mem / 1024:.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
