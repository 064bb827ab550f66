"""Benchmark the gateway webhook against a bare FastAPI + ORM insert app, in the same run.

    python scripts/bench_ingest.py [--requests 3000] [--concurrency 64] [--workers 2]
        [--paced-seconds 30] [--paced-fraction 0.7] [--json]

Both sides are real uvicorn servers with the same number of worker processes on a free loopback
port, driven by the same load generator (asyncio + httpx, one connection per concurrent client):

- service: `countersign serve` (migrations, signature check, parsing, detection, idempotent store,
  tickets), on a scratch database created for this run and dropped at the end;
- bare: scripts/_bare_ingest_app.py, which parses the same Email JSON with the service's
  `EmailIn` model and inserts one row through the SQLAlchemy ORM (sync, psycopg 3).

Every request is a distinct, signed message built from the corpus in app/detect/corpus (about
90% benign or hard-negative emails, 10% risky ones, each with a fresh Message-ID). A warm-up
phase runs first on each side and is excluded from the figures. The closed-loop phase measures
each side's maximum throughput; an open-loop phase on the same server then sends requests at
--paced-fraction (0.7) of that maximum, at Poisson (or evenly spaced) times for --paced-seconds,
whatever the answers, and measures each latency from the request's scheduled send time, so time
spent queueing (in the server or in the generator) is counted, not hidden. Postgres comes from
DATABASE_URL, else an embedded one (pgserver) is started in a temporary directory. After the run,
the script checks that every acknowledged message (all phases) is stored exactly once.

The load generator runs on the same machine and costs about 1 ms of CPU per request (httpx), so
at the bare app's rate it takes a large share of the CPUs from the server; the report prints its
share, the CPU time the servers spent per request (the figure least affected by it) and the CPU
taken by other processes, which must be near zero for the figures to mean anything. Each
closed-loop phase stops sending after --time-limit seconds; servers get 120 s to start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import os
import random
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent
CORPUS = ROOT / "app" / "detect" / "corpus"
SOURCE = "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
START_TIMEOUT = 120.0


# ---------------------------------------------------------------------------------------------
# Requests


def load_pool() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The corpus' Email JSON objects: (benign and hard negatives, risky)."""
    benign: list[dict[str, Any]] = []
    risky: list[dict[str, Any]] = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                record = json.loads(line)
                if isinstance(record.get("email"), dict):
                    (risky if record.get("kind") == "risky" else benign).append(record["email"])
    if not benign or not risky:
        raise SystemExit(f"no usable corpus records under {CORPUS}")
    return benign, risky


@dataclass
class Batch:
    """Request bodies ready to send, with their Message-IDs."""

    bodies: list[bytes]
    message_ids: list[str]
    risky: int


def choose_emails(
    pool: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    *,
    count: int,
    risky_share: float,
    rng: random.Random,
) -> list[tuple[dict[str, Any], bool]]:
    """`count` corpus emails, about `risky_share` of them risky: (email, is risky)."""
    benign, risky = pool
    chosen = []
    for _ in range(count):
        is_risky = rng.random() < risky_share
        chosen.append((rng.choice(risky if is_risky else benign), is_risky))
    return chosen


def build_batch(chosen: list[tuple[dict[str, Any], bool]], *, label: str, run_id: str) -> Batch:
    """The request bodies of `chosen`, each with a fresh Message-ID."""
    bodies, ids = [], []
    for i, (template, _risky) in enumerate(chosen):
        email = {**template, "message_id": f"<{label}-{i}.{run_id}@bench.countersign.invalid>"}
        ids.append(email["message_id"])
        bodies.append(json.dumps(email, ensure_ascii=False).encode())
    return Batch(bodies, ids, sum(r for _e, r in chosen))


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value, computed as the gateway does (app.core.security.sign)."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={mac}"


def signed_headers(secret: bytes, body: bytes) -> dict[str, str]:
    """The headers of one webhook post of `body`, signed now."""
    timestamp = str(int(time.time()))
    return {
        "content-type": "application/json",
        "x-countersign-source": SOURCE,
        "x-countersign-timestamp": timestamp,
        "x-countersign-signature": sign(secret, timestamp, body),
    }


# ---------------------------------------------------------------------------------------------
# Load generator


@dataclass
class PhaseResult:
    """What one phase of load measured."""

    sent: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    exceptions: Counter[str] = field(default_factory=Counter)
    acked: list[str] = field(default_factory=list)
    actions: Counter[str] = field(default_factory=Counter)
    replayed: int = 0
    tickets: int = 0
    not_sent: int = 0
    client_cpu: float = 0.0

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    def record(self, response: httpx.Response, message_id: str) -> None:
        """Count one answer: its status and, when acknowledged, the message and its verdict."""
        self.statuses[response.status_code] += 1
        if response.status_code != 200:
            return
        self.acked.append(message_id)
        if response.headers.get("idempotent-replayed") == "true":
            self.replayed += 1
        with contextlib.suppress(ValueError):
            verdict = response.json()
            if isinstance(verdict.get("action"), str):
                self.actions[verdict["action"]] += 1
            if verdict.get("ticket"):
                self.tickets += 1

    def errors(self) -> dict[str, int]:
        """Failures by HTTP status or exception name."""
        out = {str(s): n for s, n in sorted(self.statuses.items()) if not 200 <= s < 300}
        out.update(self.exceptions)
        if self.not_sent:
            out["not sent (time limit)"] = self.not_sent
        return out


async def drive(
    base_url: str,
    batch: Batch,
    *,
    secret: bytes,
    concurrency: int,
    per_connection: int,
    time_limit: float,
) -> PhaseResult:
    """Send every body of `batch` over `concurrency` connections; stop sending at the limit.

    Each connection is closed and reopened after `per_connection` requests (0: never), so the
    uvicorn workers, which share one listening socket, get to accept a fair share of them.
    """
    result = PhaseResult()
    todo = iter(range(len(batch.bodies)))
    # One client per connection: httpx's shared pool scans all its connections on every request,
    # which at 64 connections costs the generator about three times the CPU of this layout.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    timeout = httpx.Timeout(30.0, connect=10.0)
    deadline = time.monotonic() + time_limit

    async def send(client: httpx.AsyncClient, i: int) -> None:
        body = batch.bodies[i]
        headers = signed_headers(secret, body)
        result.sent += 1
        start = time.perf_counter()
        try:
            response = await client.post("/v1/messages", content=body, headers=headers)
        except httpx.HTTPError as exc:
            result.exceptions[type(exc).__name__] += 1
            return
        result.latencies.append(time.perf_counter() - start)
        result.record(response, batch.message_ids[i])

    async def one_connection(n: int) -> None:
        # Connections opened in one burst all land on whichever worker wakes first: open them
        # a few milliseconds apart, and reopen them after a varying number of requests.
        await asyncio.sleep(n * 0.005)
        rng = random.Random(n)
        while True:
            async with httpx.AsyncClient(
                base_url=base_url, limits=limits, timeout=timeout, trust_env=False
            ) as client:
                quota = round(per_connection * rng.uniform(0.5, 1.5))
                for i in todo:  # the iterator is shared: each index is taken by one client only
                    if time.monotonic() > deadline:
                        result.not_sent += 1
                        continue
                    await send(client, i)
                    quota -= 1
                    if per_connection and quota <= 0:
                        break
                else:
                    return

    cpu0 = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(one_connection(n) for n in range(concurrency)))
    result.elapsed = time.perf_counter() - start
    result.client_cpu = time.process_time() - cpu0
    return result


def arrival_times(rate: float, seconds: float, *, poisson: bool, rng: random.Random) -> list[float]:
    """Send times in seconds from the start of a paced phase, `rate` per second for `seconds`.

    Poisson arrivals (exponential gaps, as independent gateways would produce) or evenly spaced.
    """
    times: list[float] = []
    t = rng.expovariate(rate) if poisson else 0.0
    while t < seconds:
        times.append(t)
        t += rng.expovariate(rate) if poisson else 1.0 / rate
    return times


@dataclass
class _PooledClient:
    client: httpx.AsyncClient
    quota: int
    last_used: float = 0.0


class ClientPool:
    """Up to `limit` single-connection clients, used in turn; a new one only when all are busy.

    One client per connection for the reason given in `drive`. A client is closed after about
    `per_connection` requests (so the uvicorn workers keep accepting a fair share of the
    connections) or when it has been idle for `max_idle` seconds (before a server with a short
    keep-alive, such as uvicorn's default 5 s, closes it under us).
    """

    def __init__(self, base_url: str, *, limit: int, per_connection: int, max_idle: float = 4.0):
        self.base_url = base_url
        self.per_connection = per_connection
        self.max_idle = max_idle
        self.slots = asyncio.Semaphore(limit)
        self.idle: deque[_PooledClient] = deque()
        self.closing: set[asyncio.Task[None]] = set()
        self.rng = random.Random(limit)
        self.opened = 0
        self.in_use = 0
        self.peak_in_use = 0
        # Creating a client builds an SSL context (certificates included) unless given one.
        self.ssl = ssl.create_default_context()
        self.limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self.timeout = httpx.Timeout(30.0, connect=10.0)

    async def acquire(self) -> _PooledClient:
        await self.slots.acquire()
        now = time.perf_counter()
        while self.idle and now - self.idle[0].last_used > self.max_idle:
            self._close(self.idle.popleft())
        self.in_use += 1
        self.peak_in_use = max(self.peak_in_use, self.in_use)
        if self.idle:
            # The longest idle first: requests rotate over every open connection, and so over
            # the workers that accepted them, instead of piling onto the most recent one.
            return self.idle.popleft()
        self.opened += 1
        client = httpx.AsyncClient(
            base_url=self.base_url,
            limits=self.limits,
            timeout=self.timeout,
            verify=self.ssl,
            trust_env=False,
        )
        quota = (
            round(self.per_connection * self.rng.uniform(0.5, 1.5)) if self.per_connection else 0
        )
        return _PooledClient(client, quota)

    def release(self, pooled: _PooledClient, *, broken: bool = False) -> None:
        self.in_use -= 1
        pooled.quota -= 1
        pooled.last_used = time.perf_counter()
        if broken or (self.per_connection and pooled.quota <= 0):
            self._close(pooled)
        else:
            self.idle.append(pooled)
        self.slots.release()

    def _close(self, pooled: _PooledClient) -> None:
        task = asyncio.get_running_loop().create_task(pooled.client.aclose())
        self.closing.add(task)
        task.add_done_callback(self.closing.discard)

    async def aclose(self) -> None:
        while self.idle:
            self._close(self.idle.popleft())
        await asyncio.gather(*self.closing, return_exceptions=True)


async def drive_paced(
    base_url: str,
    batch: Batch,
    schedule: list[float],
    *,
    secret: bytes,
    connections: int,
    per_connection: int,
) -> tuple[PhaseResult, list[float], int, int]:
    """Send body i of `batch` at `schedule[i]` seconds after the start, whatever the answers.

    Open loop: a request is due at its scheduled time even when earlier ones are still waiting,
    and its latency runs from that scheduled time, so queueing anywhere (server, generator,
    waiting for one of the `connections` connections) is counted rather than hidden (no
    coordinated omission). Also returns how late each request actually left the generator, the
    peak number of connections in use and the number opened.
    """
    result = PhaseResult()
    lags: list[float] = []
    pool = ClientPool(base_url, limit=connections, per_connection=per_connection)
    tasks: set[asyncio.Task[None]] = set()

    async def send(i: int, due: float) -> None:
        pooled = await pool.acquire()
        body = batch.bodies[i]
        headers = signed_headers(secret, body)
        lags.append(time.perf_counter() - due)
        try:
            response = await pooled.client.post("/v1/messages", content=body, headers=headers)
        except httpx.HTTPError as exc:
            pool.release(pooled, broken=True)
            result.exceptions[type(exc).__name__] += 1
            return
        result.latencies.append(time.perf_counter() - due)
        pool.release(pooled)
        result.record(response, batch.message_ids[i])

    cpu0 = time.process_time()
    start = time.perf_counter()
    for i, offset in enumerate(schedule):
        due = start + offset
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        result.sent += 1
        task = asyncio.get_running_loop().create_task(send(i, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - start
    await pool.aclose()
    result.client_cpu = time.process_time() - cpu0
    return result, lags, pool.peak_in_use, pool.opened


def _run(coro: Any) -> Any:
    """`coro` on its own event loop (uvloop when installed, as uvicorn uses it too)."""
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def run_load(base_url: str, batch: Batch, **kwargs: Any) -> PhaseResult:
    """`drive` on its own event loop."""
    return _run(drive(base_url, batch, **kwargs))


def run_paced(
    base_url: str, batch: Batch, schedule: list[float], **kwargs: Any
) -> tuple[PhaseResult, list[float], int, int]:
    """`drive_paced` on its own event loop."""
    return _run(drive_paced(base_url, batch, schedule, **kwargs))


# ---------------------------------------------------------------------------------------------
# Processes: start, wait, measure, stop


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_stat(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, CPU ticks, command name) of a process, None if it is gone.

    The CPU ticks are the process' own (user + system) plus those of its children that have
    exited and been waited for, so work done by short-lived children is not lost.
    """
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    # After the command name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    return int(fields[1]), sum(int(v) for v in fields[11:15]), comm


def _all_procs() -> dict[int, tuple[int, int, str]]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _proc_stat(int(entry.name))
            if stat is not None:
                out[int(entry.name)] = stat
    return out


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (uvicorn's supervisor and its worker processes)."""
    procs = _all_procs()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _cpu, _comm) in procs.items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            tree.append(pid)
            todo.extend(children.get(pid, []))
    return tree


def tree_cpu_seconds(root: int) -> dict[int, float]:
    """CPU time used so far by each process of the tree under `root`."""
    out = {}
    for pid in process_tree(root):
        stat = _proc_stat(pid)
        if stat is not None:
            out[pid] = stat[1] / CLK_TCK
    return out


def postgres_cpu_seconds() -> float:
    """CPU time used so far by every `postgres` process (backends exit into the postmaster's).

    This is the whole Postgres server: queries of other databases count too.
    """
    return sum(cpu for _ppid, cpu, comm in _all_procs().values() if comm == "postgres") / CLK_TCK


def machine_cpu_seconds() -> tuple[float, float, float]:
    """(busy, of which interrupts, total) CPU seconds of all CPUs since boot, from /proc/stat.

    Interrupt time (irq, softirq) is mostly loopback networking on behalf of the processes
    above, but is not charged to them.
    """
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLK_TCK, (values[5] + values[6]) / CLK_TCK, sum(values) / CLK_TCK


@dataclass
class Usage:
    """CPU seconds used so far, by whom."""

    server_by_pid: dict[int, float]
    postgres: float
    machine_busy: float
    machine_interrupts: float
    machine_total: float

    @property
    def server(self) -> float:
        return sum(self.server_by_pid.values())

    @classmethod
    def now(cls, server_pid: int) -> Usage:
        busy, interrupts, total = machine_cpu_seconds()
        return cls(tree_cpu_seconds(server_pid), postgres_cpu_seconds(), busy, interrupts, total)

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            {p: t - other.server_by_pid.get(p, 0.0) for p, t in self.server_by_pid.items()},
            self.postgres - other.postgres,
            self.machine_busy - other.machine_busy,
            self.machine_interrupts - other.machine_interrupts,
            self.machine_total - other.machine_total,
        )


def peak_rss_kib(root: int) -> tuple[int, int, int]:
    """(sum, largest, processes) of the peak resident set (VmHWM) over the process tree."""
    peaks = []
    for pid in process_tree(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]))
        except OSError:
            continue
    return sum(peaks), max(peaks, default=0), len(peaks)


@dataclass
class Server:
    """A server subprocess in its own process group, its log file and URL."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    base_url: str

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def error_excerpt(self, limit: int = 60) -> list[str]:
        """The first error and traceback lines of the server's log."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        for n, line in enumerate(lines):
            if "Traceback" in line or " ERROR " in line or line.startswith("ERROR"):
                return lines[n : n + limit]
        return []

    def stop(self) -> None:
        """SIGTERM to the server (uvicorn stops its workers), then SIGKILL to what is left."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=20)
        # Our own process group (start_new_session): clear out any worker left behind.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


def start_server(
    name: str, cmd: list[str], *, env: dict[str, str], workdir: Path, ready_path: str, port: int
) -> Server:
    """Start `cmd` and wait until `ready_path` answers 200 on every worker (or fail)."""
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = Server(name, proc, log_path, f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + START_TIMEOUT
    streak = 0
    with httpx.Client(base_url=server.base_url, timeout=5.0) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with status {proc.returncode} while starting:\n"
                    f"{server.log_tail()}"
                )
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(
                    f"{name} not ready after {START_TIMEOUT:.0f} s:\n{server.log_tail()}"
                )
            try:
                ok = client.get(ready_path).status_code == 200
            except httpx.HTTPError:
                ok = False
            # Several answers in a row on fresh connections, so both workers are likely up;
            # the warm-up phase covers the rest.
            streak = streak + 1 if ok else 0
            if streak >= 5:
                return server
            time.sleep(0.2)


# ---------------------------------------------------------------------------------------------
# Database


@dataclass
class Database:
    """The Postgres used for the run and the scratch database created in it."""

    admin_url: str
    scratch_url: str
    scratch_name: str
    embedded_dir: Path | None = None

    def execute(self, sql: str, *, scratch: bool = True) -> list[Any]:
        from app.core.db import normalise_url

        url = self.scratch_url if scratch else self.admin_url
        engine = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                result = conn.execute(text(sql))
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()


def open_database(workdir: Path, run_id: str) -> Database:
    """DATABASE_URL, else an embedded Postgres in `workdir`; plus a fresh scratch database."""
    admin = os.environ.get("DATABASE_URL")
    embedded_dir = None
    if not admin:
        from app.core.db import embedded_database_url

        embedded_dir = workdir / "pgdata"
        print(f"starting an embedded Postgres in {embedded_dir}", file=sys.stderr)
        admin = embedded_database_url(embedded_dir)
    name = f"countersign_bench_{run_id}"
    scratch = make_url(admin).set(database=name).render_as_string(hide_password=False)
    db = Database(admin, scratch, name, embedded_dir)
    db.execute(f'CREATE DATABASE "{name}"', scratch=False)
    return db


def close_database(db: Database) -> None:
    """Drop the scratch database; stop the embedded Postgres if this run started it."""
    try:
        db.execute(f'DROP DATABASE IF EXISTS "{db.scratch_name}" WITH (FORCE)', scratch=False)
    except Exception as exc:
        print(f"could not drop {db.scratch_name}: {exc}", file=sys.stderr)
    if db.embedded_dir is not None:
        import pgserver

        pgserver.get_server(db.embedded_dir).cleanup()


def stored_once(db: Database, table: str, where: str, acked: list[str]) -> dict[str, Any]:
    """Whether every acknowledged Message-ID is stored, each exactly once."""
    rows = db.execute(f"SELECT message_id, count(*) FROM {table} {where} GROUP BY message_id")
    stored = {r[0]: r[1] for r in rows}
    acked_set = set(acked)
    missing = len(acked_set - stored.keys())
    duplicated = sum(1 for n in stored.values() if n > 1)
    return {
        "acknowledged": len(acked_set),
        "acknowledged_twice": len(acked) - len(acked_set),
        "stored": len(stored),
        "missing": missing,
        "duplicated": duplicated,
        "stored_not_acknowledged": len(stored.keys() - acked_set),
        "ok": missing == 0 and duplicated == 0 and len(acked) == len(acked_set),
    }


# ---------------------------------------------------------------------------------------------
# One side: start, warm up, measure, collect, stop


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_figures(latencies: list[float], quantiles: tuple[float, ...]) -> dict[str, float]:
    """Nearest-rank percentiles and the maximum of `latencies`, in milliseconds."""
    lat = sorted(latencies)
    out = {f"p{round(q * 100)}": round(percentile(lat, q) * 1000, 1) for q in quantiles}
    out["max"] = round((lat[-1] if lat else 0.0) * 1000, 1)
    return out


def usage_figures(res: PhaseResult, used: Usage) -> dict[str, Any]:
    """CPU figures of one phase: per acknowledged request, and shares of the machine."""
    per_req = 1000.0 / res.ok if res.ok else 0.0
    total = max(used.machine_total, 1e-9)
    other = (
        used.machine_busy - used.machine_interrupts - used.server - used.postgres - res.client_cpu
    )
    return {
        "server_cpu_ms_per_request": round(used.server * per_req, 2),
        # Uneven numbers mean one uvicorn worker took most of the (long-lived) connections.
        "server_cpu_seconds_by_process": sorted(
            (round(t, 2) for t in used.server_by_pid.values()), reverse=True
        ),
        "postgres_cpu_ms_per_request": round(used.postgres * per_req, 2),
        "machine_busy": round(used.machine_busy / total, 3),
        "interrupt_share": round(used.machine_interrupts / total, 3),
        # CPU used by anything but this server, Postgres and the load generator (other people's
        # jobs on a shared machine): the figures are only comparable when it is small.
        "other_cpu_share": round(max(0.0, other) / total, 3),
        "client_cpu_share_of_one_core": round(res.client_cpu / res.elapsed, 3)
        if res.elapsed
        else 0.0,
    }


def measure_side(
    name: str,
    cmd: list[str],
    *,
    env: dict[str, str],
    workdir: Path,
    ready_path: str,
    port: int,
    warmup: Batch,
    batch: Batch,
    paced_batch: Callable[[int], Batch],
    args: argparse.Namespace,
    secret: bytes,
    servers: list[Server],
) -> tuple[dict[str, Any], list[str]]:
    """Figures for one side and every Message-ID it acknowledged (warm-up and paced included).

    Phases on one server: warm-up, closed-loop maximum throughput, then (unless
    --paced-seconds is 0) open-loop arrivals at --paced-fraction of the maximum just measured,
    with bodies from `paced_batch(count)`.
    """
    print(f"{name}: starting", file=sys.stderr)
    server = start_server(name, cmd, env=env, workdir=workdir, ready_path=ready_path, port=port)
    servers.append(server)
    load = {
        "secret": secret,
        "concurrency": args.concurrency,
        "per_connection": args.per_connection,
        "time_limit": args.time_limit,
    }
    print(f"{name}: warm-up, {len(warmup.bodies)} requests", file=sys.stderr)
    warm = run_load(server.base_url, warmup, **load)
    print(f"{name}: measuring, {len(batch.bodies)} requests", file=sys.stderr)
    before = Usage.now(server.proc.pid)
    res = run_load(server.base_url, batch, **load)
    used = Usage.now(server.proc.pid) - before
    max_rate = res.ok / res.elapsed if res.elapsed else 0.0
    paced = None
    paced_res = None
    if args.paced_seconds > 0 and max_rate > 0:
        rate = args.paced_fraction * max_rate
        schedule = arrival_times(
            rate,
            args.paced_seconds,
            poisson=args.paced_arrivals == "poisson",
            rng=random.Random(args.seed),
        )
        bodies = paced_batch(len(schedule))
        print(
            f"{name}: paced, {len(schedule)} requests at {rate:.1f}/s "
            f"({args.paced_fraction:.0%} of {max_rate:.1f}/s) for {args.paced_seconds:g} s",
            file=sys.stderr,
        )
        paced_before = Usage.now(server.proc.pid)
        paced_res, lags, peak_connections, opened = run_paced(
            server.base_url,
            bodies,
            schedule,
            secret=secret,
            connections=args.concurrency,
            per_connection=args.per_connection,
        )
        paced_used = Usage.now(server.proc.pid) - paced_before
        paced = {
            "fraction_of_maximum": args.paced_fraction,
            "arrivals": args.paced_arrivals,
            "scheduled_seconds": args.paced_seconds,
            "target_requests_per_second": round(rate, 1),
            "requests": len(schedule),
            "sent": paced_res.sent,
            "acknowledged": paced_res.ok,
            # From the first scheduled send to the last answer.
            "seconds": round(paced_res.elapsed, 3),
            "requests_per_second": round(paced_res.ok / paced_res.elapsed, 1)
            if paced_res.elapsed
            else 0.0,
            # From each request's scheduled send time to its answer.
            "latency_ms": latency_figures(paced_res.latencies, (0.5, 0.9, 0.99)),
            # How late the generator actually sent (included in the latencies above).
            "send_lag_ms": latency_figures(lags, (0.5, 0.99)),
            "connections": {
                "limit": args.concurrency,
                "peak_in_use": peak_connections,
                "opened": opened,
            },
            "errors": paced_res.errors(),
            **usage_figures(paced_res, paced_used),
            "actions": dict(paced_res.actions),
            "responses_with_ticket": paced_res.tickets,
        }
    rss_sum, rss_max, nprocs = peak_rss_kib(server.proc.pid)
    failed = res.ok < res.sent or (paced_res is not None and paced_res.ok < paced_res.sent)
    server.stop()
    servers.remove(server)
    figures = {
        "requests": len(batch.bodies),
        "sent": res.sent,
        "acknowledged": res.ok,
        "seconds": round(res.elapsed, 3),
        "requests_per_second": round(max_rate, 1),
        "latency_ms": latency_figures(res.latencies, (0.5, 0.9, 0.99)),
        "errors": res.errors(),
        "warmup_errors": warm.errors(),
        **usage_figures(res, used),
        "peak_rss_mib": {
            "sum": round(rss_sum / 1024, 1),
            "largest": round(rss_max / 1024, 1),
            "processes": nprocs,
        },
        "server_log_errors": server.error_excerpt() if failed else [],
        "actions": dict(res.actions),
        "responses_with_ticket": res.tickets,
        "replayed": res.replayed + warm.replayed + (paced_res.replayed if paced_res else 0),
        "paced": paced,
    }
    acked = warm.acked + res.acked + (paced_res.acked if paced_res else [])
    return figures, acked


# ---------------------------------------------------------------------------------------------
# Report


def _fmt_errors(errors: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in errors.items()) or "none"


def print_report(report: dict[str, Any]) -> None:
    """The human-readable report."""
    w = sys.stdout.write
    cfg = report["config"]
    w(
        f"POST /v1/messages, {cfg['requests']} requests per side after {cfg['warmup']} warm-up, "
        f"{cfg['concurrency']} connections, {cfg['workers']} uvicorn workers per side, "
        f"{cfg['cpus']} CPUs\n"
        f"emails: {cfg['risky']} risky, {cfg['requests'] - cfg['risky']} benign or hard-negative "
        f"(corpus bodies, fresh Message-IDs); database {cfg['database']}\n\n"
    )
    rows = [("bare: EmailIn + ORM insert", report["bare"]), ("countersign", report["service"])]
    w(
        f"{'':<28}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'srv CPU ms/req':>16}"
        f"{'pg CPU ms/req':>15}{'peak RSS MiB':>15}  errors\n"
    )
    for label, f in rows:
        rss = f["peak_rss_mib"]
        w(
            f"{label:<28}{f['requests_per_second']:>9.1f}{f['latency_ms']['p50']:>9.1f}"
            f"{f['latency_ms']['p99']:>9.1f}{f['server_cpu_ms_per_request']:>16.2f}"
            f"{f['postgres_cpu_ms_per_request']:>15.2f}"
            f"{rss['sum']:>9.0f} ({rss['processes']}p)  {_fmt_errors(f['errors'])}\n"
        )
    r = report["ratio_service_over_bare"]
    w(
        f"{'ratio countersign / bare':<28}{r['requests_per_second']:>9.3f}"
        f"{r['p50']:>9.2f}{r['p99']:>9.2f}{r['server_cpu_per_request']:>16.2f}\n\n"
    )
    for label, f in rows:
        rss = f["peak_rss_mib"]
        w(
            f"{label}: {f['acknowledged']}/{f['requests']} acknowledged in {f['seconds']} s; "
            f"peak RSS largest process {rss['largest']:.0f} MiB; machine busy "
            f"{f['machine_busy']:.0%} (interrupts {f['interrupt_share']:.0%}, other processes "
            f"{f['other_cpu_share']:.0%}); "
            f"load generator used {f['client_cpu_share_of_one_core']:.0%} of a core; "
            f"server CPU seconds by process {f['server_cpu_seconds_by_process']}\n"
        )
    paced_rows = [(label, f["paced"]) for label, f in rows if f["paced"]]
    if paced_rows:
        cfg_p = paced_rows[0][1]
        w(
            f"\nopen loop: {cfg_p['arrivals']} arrivals at {cfg_p['fraction_of_maximum']:.0%} of "
            f"each side's maximum for {cfg_p['scheduled_seconds']:g} s; latency from the "
            "scheduled send time\n"
            f"{'':<28}{'target/s':>9}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"
            f"{'max ms':>9}{'lag p99':>9}{'conns':>7}{'srv CPU ms/req':>16}  errors\n"
        )
        for label, p in paced_rows:
            lat = p["latency_ms"]
            w(
                f"{label:<28}{p['target_requests_per_second']:>9.1f}"
                f"{p['requests_per_second']:>9.1f}{lat['p50']:>9.1f}{lat['p90']:>9.1f}"
                f"{lat['p99']:>9.1f}{lat['max']:>9.1f}{p['send_lag_ms']['p99']:>9.1f}"
                f"{p['connections']['peak_in_use']:>7}{p['server_cpu_ms_per_request']:>16.2f}"
                f"  {_fmt_errors(p['errors'])}\n"
            )
        rp = r.get("paced")
        if rp:
            w(
                f"{'ratio countersign / bare':<28}{'':>18}{rp['p50']:>9.2f}{rp['p90']:>9.2f}"
                f"{rp['p99']:>9.2f}{rp['max']:>9.2f}\n"
            )
        w("\n")
        for label, p in paced_rows:
            w(
                f"{label}, paced: {p['acknowledged']}/{p['requests']} acknowledged in "
                f"{p['seconds']} s; machine busy {p['machine_busy']:.0%} (interrupts "
                f"{p['interrupt_share']:.0%}, other processes {p['other_cpu_share']:.0%}); "
                f"load generator used {p['client_cpu_share_of_one_core']:.0%} of a core; "
                f"{p['connections']['opened']} connections opened; server CPU seconds by "
                f"process {p['server_cpu_seconds_by_process']}\n"
            )
    phases = [f for _label, f in rows] + [p for _label, p in paced_rows]
    if any(f["other_cpu_share"] > 0.05 for f in phases):
        w(
            "WARNING: other processes used more than 5% of the machine during a phase; "
            "the figures are not reliable, run again on a quiet machine\n"
        )
    for label, f in rows:
        if f["server_log_errors"]:
            w(f"\n{label}: first error in the server log:\n")
            w("".join(f"  | {line}\n" for line in f["server_log_errors"]) + "\n")
    svc = report["service"]
    w(
        "countersign verdicts: "
        + ", ".join(f"{k} {v}" for k, v in sorted(svc["actions"].items()))
        + f"; responses with a ticket: {svc['responses_with_ticket']}"
        + (f" (paced phase: {svc['paced']['responses_with_ticket']})" if svc["paced"] else "")
        + "; "
        f"tickets in the database: {report['tickets_in_database']}\n"
    )
    for side in ("bare", "service"):
        s = report["stored_exactly_once"][side]
        w(
            f"stored exactly once ({side}): {'yes' if s['ok'] else 'NO'}: "
            f"{s['acknowledged']} acknowledged (warm-up and paced phase included), "
            f"{s['stored']} stored, "
            f"{s['missing']} missing, {s['duplicated']} duplicated, "
            f"{s['stored_not_acknowledged']} stored but not acknowledged\n"
        )


# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000, help="measured requests per side")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up requests per side")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent connections")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers per side")
    parser.add_argument(
        "--per-connection",
        type=int,
        default=100,
        help="requests per connection before it is reopened (0: keep it for the whole phase)",
    )
    parser.add_argument("--risky-share", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--time-limit",
        type=float,
        default=300.0,
        help="seconds after which a phase stops sending (the rest count as not sent)",
    )
    parser.add_argument(
        "--paced-seconds",
        type=float,
        default=30.0,
        help="length of the open-loop phase at --paced-fraction of each side's maximum "
        "(0: skip it)",
    )
    parser.add_argument(
        "--paced-fraction",
        type=float,
        default=0.7,
        help="arrival rate of the open-loop phase, as a fraction of the measured maximum",
    )
    parser.add_argument(
        "--paced-arrivals",
        choices=("poisson", "even"),
        default="poisson",
        help="open-loop send times: Poisson (exponential gaps) or evenly spaced",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    if args.requests < 1 or args.concurrency < 1 or args.workers < 1:
        parser.error("--requests, --concurrency and --workers must be positive")
    if args.paced_seconds < 0 or not 0 < args.paced_fraction <= 2:
        parser.error("--paced-seconds must be >= 0 and --paced-fraction in (0, 2]")

    # SIGTERM, like Ctrl-C, unwinds through the `finally` below: servers and database go.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted; servers stopped and scratch database dropped", file=sys.stderr)
        return 130


def run(args: argparse.Namespace) -> int:
    """Both sides, the checks and the report; cleans up whatever happens."""
    run_id = uuid.uuid4().hex[:10]
    secret = secrets.token_hex(32).encode()
    pool = load_pool()
    rng = random.Random(args.seed)
    warm_emails = choose_emails(pool, count=args.warmup, risky_share=args.risky_share, rng=rng)
    emails = choose_emails(pool, count=args.requests, risky_share=args.risky_share, rng=rng)
    # The same emails in the same order on both sides; only the Message-IDs differ.
    batches = {
        side: (
            build_batch(warm_emails, label=f"{side}-warm", run_id=run_id),
            build_batch(emails, label=side, run_id=run_id),
        )
        for side in ("bare", "service")
    }

    def paced_batch(side: str) -> Callable[[int], Batch]:
        # The same emails in the same order on both sides, as many as each side's rate needs.
        def build(count: int) -> Batch:
            chosen = choose_emails(
                pool, count=count, risky_share=args.risky_share, rng=random.Random(args.seed + 1)
            )
            return build_batch(chosen, label=f"{side}-paced", run_id=run_id)

        return build

    workdir = Path(tempfile.mkdtemp(prefix="countersign-bench-"))
    servers: list[Server] = []
    db: Database | None = None
    try:
        db = open_database(workdir, run_id)
        print(f"scratch database {db.scratch_name}", file=sys.stderr)
        base_env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "COUNTERSIGN_DATABASE_URL")
        }
        base_env["PYTHONPATH"] = os.pathsep.join(
            [str(SCRIPTS), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        port = free_port()
        bare_figures, bare_acked = measure_side(
            "bare",
            [
                sys.executable,
                *f"-m uvicorn --factory _bare_ingest_app:create_app --host 127.0.0.1 --port {port}"
                f" --workers {args.workers} --log-level info".split(),
            ],
            env={**base_env, "BENCH_BARE_DATABASE_URL": db.scratch_url},
            workdir=workdir,
            ready_path="/healthz",
            port=port,
            warmup=batches["bare"][0],
            batch=batches["bare"][1],
            paced_batch=paced_batch("bare"),
            args=args,
            secret=secret,
            servers=servers,
        )
        port = free_port()
        service_env = {
            **base_env,
            "DATABASE_URL": db.scratch_url,
            "COUNTERSIGN_WEBHOOK_SECRETS": f"{SOURCE}={secret.decode()}",
            "COUNTERSIGN_DATA_DIR": str(workdir / "unused-pgdata"),
            "COUNTERSIGN_PUBLIC_URL": f"http://127.0.0.1:{port}",
        }
        service_figures, service_acked = measure_side(
            "service",
            [
                sys.executable,
                *f"-m app.cli serve --host 127.0.0.1 --port {port}"
                f" --workers {args.workers}".split(),
            ],
            env=service_env,
            workdir=workdir,
            ready_path="/readyz",
            port=port,
            warmup=batches["service"][0],
            batch=batches["service"][1],
            paced_batch=paced_batch("service"),
            args=args,
            secret=secret,
            servers=servers,
        )
        once = {
            "bare": stored_once(db, "bench_bare.message", "", bare_acked),
            "service": stored_once(db, "message", f"WHERE source = '{SOURCE}'", service_acked),
        }
        tickets = db.execute("SELECT count(*) FROM ticket")[0][0]
    finally:
        for server in list(servers):
            server.stop()
        if db is not None:
            close_database(db)
        shutil.rmtree(workdir, ignore_errors=True)

    def ratio(a: float, b: float) -> float:
        return round(a / b, 3) if b else 0.0

    report = {
        "config": {
            "requests": args.requests,
            "warmup": args.warmup,
            "concurrency": args.concurrency,
            "workers": args.workers,
            "requests_per_connection": args.per_connection,
            "cpus": os.cpu_count(),
            "risky": batches["bare"][1].risky,
            "database": "DATABASE_URL" if os.environ.get("DATABASE_URL") else "embedded",
            "seed": args.seed,
            "paced_seconds": args.paced_seconds,
            "paced_fraction": args.paced_fraction,
            "paced_arrivals": args.paced_arrivals,
        },
        "bare": bare_figures,
        "service": service_figures,
        "ratio_service_over_bare": {
            "requests_per_second": ratio(
                service_figures["requests_per_second"], bare_figures["requests_per_second"]
            ),
            "p50": ratio(service_figures["latency_ms"]["p50"], bare_figures["latency_ms"]["p50"]),
            "p99": ratio(service_figures["latency_ms"]["p99"], bare_figures["latency_ms"]["p99"]),
            "server_cpu_per_request": ratio(
                service_figures["server_cpu_ms_per_request"],
                bare_figures["server_cpu_ms_per_request"],
            ),
        },
        "stored_exactly_once": once,
        "tickets_in_database": tickets,
    }
    if bare_figures["paced"] and service_figures["paced"]:
        bp, sp = bare_figures["paced"]["latency_ms"], service_figures["paced"]["latency_ms"]
        report["ratio_service_over_bare"]["paced"] = {q: ratio(sp[q], bp[q]) for q in sp}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    healthy = (
        all(s["ok"] for s in once.values())
        and not service_figures["errors"]
        and not (service_figures["paced"] or {}).get("errors")
    )
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
