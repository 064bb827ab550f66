"""Benchmark `countersign classify` against bare stdlib parsing of the same .eml files, same run.

    python scripts/bench_classify.py [DIR ...] [--count 4000] [--workers 2] [--rounds 2]

Two ceilings are measured beside classify:

- "bare": `policy.compat32`, `get_payload(decode=True)` and a charset decode of every text/* part.
  HTML parts stay raw markup, so this is parsing and decoding only, not text extraction.
- "extraction": what a plain stdlib extractor does to get the text classify reads:
  `policy.default`, `get_content()` of the text/plain and text/html parts (falling back to a lenient
  decode when a part's charset or encoding is broken), and HTML turned into text with
  `html.parser.HTMLParser` (data kept, script and style skipped).

All sides run as child processes with the same number of worker processes over the same files
(cycled to --count), alternating round by round so that drift in machine load hits them alike; the
ratios compare like with like on this machine, now. Peak memory is the largest resident set of any
process of that side.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIRS = [ROOT.parent / "shared" / "corpora" / "spamassassin"]

# Both ceilings: the same imports, the same lenient decoding of a part's bytes, and the same
# pool over the listed files (each defines `work(path)` in between).
_HEAD = r"""
import email, sys
from email import policy
from multiprocessing import Pool

def lenient(part):
    data = part.get_payload(decode=True) or b""
    try:
        return data.decode(part.get_content_charset() or "utf-8", "replace")
    except LookupError:
        return data.decode("latin-1")
"""

_POOL = r"""
if __name__ == "__main__":
    paths = [line.strip() for line in open(sys.argv[2]) if line.strip()]
    with Pool(int(sys.argv[1])) as pool:
        total = sum(pool.imap(work, paths, chunksize=64))
    print(len(paths), total)
"""

BARE = (
    _HEAD
    + r"""
def work(path):
    msg = email.message_from_bytes(open(path, "rb").read(), policy=policy.compat32)
    n = 0
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            n += len(lenient(part))
    return n
"""
    + _POOL
)

EXTRACT = (
    _HEAD
    + r"""
from html.parser import HTMLParser

class TextOf(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.chunks = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.hidden += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.hidden:
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.chunks.append(data)

def html_text(markup):
    parser = TextOf()
    parser.feed(markup)
    parser.close()
    return "".join(parser.chunks)

def content(part):
    try:
        return part.get_content()
    except Exception:  # unknown charset, broken transfer encoding: read the part leniently
        return lenient(part)

def work(path):
    msg = email.message_from_bytes(open(path, "rb").read(), policy=policy.default)
    n = 0
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "text/plain":
            n += len(content(part))
        elif ctype == "text/html":
            n += len(html_text(content(part)))
    return n
"""
    + _POOL
)

# Runs a command, then prints its wall time and the peak resident set of its processes (KiB) on
# stderr's last line: RUSAGE_CHILDREN of a fresh process covers only what that process started.
TIMED = r"""
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:]).returncode
elapsed = time.perf_counter() - start
print(elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def run(cmd: list[str]) -> tuple[float, int, str]:
    """Wall time, peak RSS (KiB) of the command's processes, and its stdout's last line."""
    proc = subprocess.run(
        [sys.executable, "-c", TIMED, *cmd], capture_output=True, text=True, check=True
    )
    elapsed, peak = proc.stderr.strip().splitlines()[-1].split()
    lines = proc.stdout.strip().splitlines()
    return float(elapsed), int(peak), (lines[-1] if lines else "") + f" ({len(lines)} lines)"


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
        extract = Path(tmp) / "extract.py"
        extract.write_text(EXTRACT)
        print(
            f"{len(chosen)} emails ({len(files)} distinct files), {args.workers} workers, "
            f"{os.cpu_count()} CPUs, best of {args.rounds} rounds"
        )
        bare_best = ext_best = cls_best = startup = float("inf")
        bare_mem = ext_mem = cls_mem = 0
        for _round in range(args.rounds):
            # Alternate the sides so drift in machine load hits them alike.
            t, mem, out = run([sys.executable, str(script), str(args.workers), str(listing)])
            bare_best = min(bare_best, t)
            bare_mem = max(bare_mem, mem)
            t, mem, out = run([sys.executable, str(extract), str(args.workers), str(listing)])
            ext_best = min(ext_best, t)
            ext_mem = max(ext_mem, mem)
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
            t, _m, _o = run([countersign, "classify", "--workers", "1", str(chosen[0])])
            startup = min(startup, t)
    bare_rate = len(chosen) / bare_best
    ext_rate = len(chosen) / ext_best
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
    print(
        f"stdlib text extraction   : {ext_rate:8.0f} emails/s  ({ext_best:.2f} s; policy.default, "
        "get_content() of text/plain and text/html, HTMLParser for HTML)"
    )
    print(
        f"ratio classify / extract.: {cls_rate / ext_rate:8.3f}  (after start-up: "
        f"{steady / ext_rate:.3f})"
    )
    print(f"peak RSS, extraction     : {ext_mem / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
