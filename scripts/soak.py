"""Soak test: two API processes, two outbox workers and a receiver under load, with faults.

    python scripts/soak.py [--duration 600] [--rate 40|max] [--count N] [--json]

What runs, on a scratch database created in DATABASE_URL's Postgres (default
postgresql://postgres@127.0.0.1:5432/postgres) and dropped at the end:

- two API processes (`countersign serve --workers 1` on two loopback ports; the first ones to
  migrate race on the advisory lock, as replicas would);
- two outbox workers (`countersign worker`), delivering to
- a notice receiver (scripts/_soak_receiver.py) that checks every webhook signature, records each
  delivery (outbox id, attempt) and can be told to answer 503 for a while;
- a load generator behaving like a mail gateway behind a load balancer: signed POST
  /v1/messages round-robin over both ports at --rate requests per second (or as fast as
  --concurrency allows with `--rate max`), corpus emails (app/detect/corpus, about 12% risky)
  with fresh Message-IDs, 20% duplicate deliveries (an acknowledged message sent again later, or
  a new one posted to both ports at once), out-of-order arrivals (a reply in a thread sent before
  its original; the same request from two senders of one organisation, sent concurrently), and
  retries with backoff honouring Retry-After on 5xx and connection errors until acknowledged
  (for at most --retry-limit seconds per message).

Faults, each at a configurable time (defaults as a fraction of the duration, 0 or a negative
value disables one): (a) Postgres stopped for --fault-db-seconds then restarted, through
pg_ctlcluster when DATABASE_URL is the local Debian cluster and we may run it (the stop, sleep
and start run in a detached shell, so Postgres comes back even if this script dies), else through
a TCP proxy in front of Postgres (`--fault-db proxy`); (b) the receiver answering 503 for
--fault-notify-seconds; (c) worker 1 killed with SIGKILL while it holds a lease on a notice
(waiting up to 30 s for one), restarted --restart-after seconds later, as a supervisor would.

Every --sample-every seconds a timeline row: messages acknowledged, throughput, p50/p99 latency
of the window's acknowledged requests, errors by status, messages awaiting acknowledgement,
outbox backlog, notices the receiver accepted, resident memory (VmRSS) of each process.

At the end (load stopped, outbox drained, bounded by --drain-timeout) the checks:
1. every acknowledged message is stored exactly once, and nothing else is stored;
2. the tickets are exactly the distinct tickets the responses named, one per request (no two
   tickets share a request key; every ticket has one opening message; replays, thread replies
   sent before their original and concurrent senders of one request agree on the ticket);
3. every ticket_opened notice was delivered to the receiver, with a valid signature; no outbox id
   was accepted twice except the documented at-least-once re-delivery of the notice the killed
   worker held (counted);
4. no error other than 503 (or a refused connection) during the database outage, and every
   message was acknowledged.
PASS/FAIL per check, throughput, latency, errors, CPU per request and peak memory; `--json` for
machine-readable output. Exit status 1 when a check fails, 2 when the run could not be set up.
Every process is stopped on exit or Ctrl-C, and Postgres is always started again if this script
stopped it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import httpx
from bench_ingest import (
    Database,
    Server,
    free_port,
    load_pool,
    machine_cpu_seconds,
    percentile,
    postgres_cpu_seconds,
    process_tree,
    sign,
    start_server,
    tree_cpu_seconds,
)
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from app.detect.signals import FREEMAIL
from app.mail.artifacts import registered_domain

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent
SOURCE = "soak"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
RETRY_STATUSES = {429, 500, 502, 503, 504}
OUTAGE_GRACE = 15.0
"""Seconds after Postgres is back during which 503s still count as the outage's."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# What the gateway sends


@dataclass
class Item:
    """One message to deliver: its body, Message-ID and where it came from."""

    message_id: str
    body: bytes
    template: int
    risky: bool
    scenario: str = "single"
    group: str = ""


@dataclass
class FirstAnswer:
    """What the service answered the first time a message was acknowledged."""

    ticket_id: str | None
    relation: str | None
    action: str
    needs_verification: bool
    intent: str | None
    replayed: bool
    t: float


class MailFactory:
    """Corpus emails with fresh Message-IDs, and the out-of-order scenarios built from them."""

    def __init__(self, rng: random.Random, run_id: str, risky_share: float) -> None:
        benign, risky = load_pool()
        self.templates: list[tuple[dict[str, Any], bool]] = [(e, False) for e in benign] + [
            (e, True) for e in risky
        ]
        self.benign = list(range(len(benign)))
        self.risky = list(range(len(benign), len(self.templates)))
        # Two senders of one organisation make one request only when the counterparty is the
        # organisation, not a free-mail address.
        self.org_risky = [i for i in self.risky if not _freemail(self.templates[i][0].get("from"))]
        self.rng = rng
        self.run_id = run_id
        self.risky_share = risky_share
        self.n = 0

    def _id(self, tag: str) -> str:
        self.n += 1
        return f"<{tag}-{self.n}.{self.run_id}@soak.countersign.invalid>"

    def _item(self, email: dict[str, Any], template: int, **kw: Any) -> Item:
        body = json.dumps(email, ensure_ascii=False).encode()
        return Item(email["message_id"], body, template, self.templates[template][1], **kw)

    def single(self) -> Item:
        risky = self.rng.random() < self.risky_share
        t = self.rng.choice(self.risky if risky else self.benign)
        return self._item({**self.templates[t][0], "message_id": self._id("m")}, t)

    def thread_pair(self) -> list[Item]:
        """An original risky email and a reply repeating the ask, reply first."""
        t = self.rng.choice(self.risky)
        email = self.templates[t][0]
        group = uuid.uuid4().hex[:8]
        original = {**email, "message_id": self._id("orig")}
        subject = str(email.get("subject") or "")
        headers = {
            **(email.get("headers") or {}),
            "In-Reply-To": original["message_id"],
            "References": original["message_id"],
        }
        reply = {
            **email,
            "message_id": self._id("reply"),
            "subject": subject if subject.lower().startswith("re:") else f"RE: {subject}",
            "headers": headers,
        }
        return [
            self._item(reply, t, scenario="thread_reply", group=group),
            self._item(original, t, scenario="thread_original", group=group),
        ]

    def two_senders(self) -> list[Item]:
        """The same request from two people of one organisation."""
        t = self.rng.choice(self.org_risky or self.risky)
        email = self.templates[t][0]
        group = uuid.uuid4().hex[:8]
        name, addr = split_mailbox(email.get("from"))
        local, _, domain = addr.partition("@")
        other = f"{name} <{local}.office@{domain}>" if name else f"{local}.office@{domain}"
        first = {**email, "message_id": self._id("s1")}
        second = {**email, "from": other, "message_id": self._id("s2")}
        return [
            self._item(first, t, scenario="two_senders", group=group),
            self._item(second, t, scenario="two_senders", group=group),
        ]


def split_mailbox(value: Any) -> tuple[str, str]:
    """(display name, address) of `Name <addr>` or a bare address.

    Not email.utils.parseaddr: it splits an unquoted comma in the name ("Jo Pryce, Esq.").
    """
    text = str(value or "").strip()
    m = re.search(r"<([^<>@\s]+@[^<>\s]+)>\s*$", text)
    if m:
        return text[: m.start()].strip().strip('"'), m.group(1)
    return "", parseaddr(text)[1]


def _freemail(sender: Any) -> bool:
    """Whether the service keys this sender's requests by address (free mail), as ingest does."""
    domain = split_mailbox(sender)[1].rpartition("@")[2].lower()
    return not domain or domain in FREEMAIL or registered_domain(domain) in FREEMAIL


# ---------------------------------------------------------------------------------------------
# The load generator


@dataclass
class Attempt:
    """One HTTP attempt: when, what came back, how long it took."""

    t: float
    outcome: str  # "200", "503", ..., or an exception name
    latency: float
    port: int


@dataclass
class LoadState:
    """Everything the load generator saw."""

    attempts: list[Attempt] = field(default_factory=list)
    first: dict[str, FirstAnswer] = field(default_factory=dict)
    items: dict[str, Item] = field(default_factory=dict)
    acked_order: list[str] = field(default_factory=list)
    ack_times: list[float] = field(default_factory=list)
    """Seconds from first send to acknowledgement, per message (retries included)."""
    acks: int = 0
    """Acknowledged requests, duplicates included."""
    duplicates_sent: int = 0
    concurrent_duplicates: int = 0
    replay_mismatches: list[dict[str, Any]] = field(default_factory=list)
    created: Counter[str] = field(default_factory=Counter)
    """Acknowledgements not marked Idempotent-Replayed, per message (must be at most 1)."""
    gave_up: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    pending: int = 0
    new_sent: int = 0
    scenarios: Counter[str] = field(default_factory=Counter)
    client_cpu: float = 0.0


def retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else 0.0


def backoff(attempt: int, rng: random.Random) -> float:
    """0.5, 1, 2, 4 ... seconds (at most 30), with jitter."""
    return min(30.0, 0.5 * 2 ** (attempt - 1)) * rng.uniform(0.5, 1.0)


class Gateway:
    """Sends messages like a gateway behind a load balancer: round-robin, signed, retried."""

    def __init__(
        self,
        ports: list[int],
        secret: bytes,
        state: LoadState,
        *,
        concurrency: int,
        retry_limit: float,
        t0: float,
        rng: random.Random,
    ) -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        timeout = httpx.Timeout(30.0, connect=5.0, pool=None)
        self.clients = [
            (
                port,
                httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}",
                    limits=limits,
                    timeout=timeout,
                    trust_env=False,
                ),
            )
            for port in ports
        ]
        self.secret = secret
        self.state = state
        self.slots = asyncio.Semaphore(concurrency)
        self.retry_limit = retry_limit
        self.t0 = t0
        self.rng = rng
        self.next = 0

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def close(self) -> None:
        for _port, client in self.clients:
            await client.aclose()

    def _pick(self, port: int | None) -> tuple[int, httpx.AsyncClient]:
        if port is not None:
            return next((p, c) for p, c in self.clients if p == port)
        self.next = (self.next + 1) % len(self.clients)
        return self.clients[self.next]

    async def deliver(
        self, item: Item, *, duplicate: bool = False, port: int | None = None
    ) -> None:
        """Send `item` until it is acknowledged, refused (4xx) or the retry limit passes."""
        st = self.state
        started = self.now()
        st.pending += 1
        try:
            attempt = 0
            while True:
                attempt += 1
                # The first attempt may be pinned to a port (concurrent duplicates); retries go
                # wherever the balancer sends them.
                p, client = self._pick(port if attempt == 1 else None)
                timestamp = str(int(time.time()))
                headers = {
                    "content-type": "application/json",
                    "x-countersign-source": SOURCE,
                    "x-countersign-timestamp": timestamp,
                    "x-countersign-signature": sign(self.secret, timestamp, item.body),
                }
                async with self.slots:
                    t_start = time.perf_counter()
                    try:
                        response = await client.post(
                            "/v1/messages", content=item.body, headers=headers
                        )
                    except httpx.HTTPError as exc:
                        response = None
                        outcome = type(exc).__name__
                    else:
                        outcome = str(response.status_code)
                    latency = time.perf_counter() - t_start
                st.attempts.append(Attempt(self.now(), outcome, latency, p))
                if response is not None and response.status_code == 200:
                    self._acknowledged(item, response, duplicate=duplicate, started=started)
                    return
                if response is not None and response.status_code not in RETRY_STATUSES:
                    st.rejected[item.message_id] = (
                        f"HTTP {response.status_code}: {response.text[:200]}"
                    )
                    return
                wait = backoff(attempt, self.rng)
                if response is not None:
                    wait = max(wait, retry_after(response))
                if self.now() + wait - started > self.retry_limit:
                    st.gave_up[item.message_id] = outcome
                    return
                await asyncio.sleep(wait)
        finally:
            st.pending -= 1

    def _acknowledged(
        self, item: Item, response: httpx.Response, *, duplicate: bool, started: float
    ) -> None:
        st = self.state
        st.acks += 1
        try:
            verdict = response.json()
        except ValueError:
            verdict = {}
        ticket = verdict.get("ticket") or {}
        intents = verdict.get("intents") or []
        answer = FirstAnswer(
            ticket_id=ticket.get("id"),
            relation=ticket.get("relation"),
            action=str(verdict.get("action")),
            needs_verification=bool(verdict.get("needs_verification")),
            intent=intents[0].get("name") if intents and isinstance(intents[0], dict) else None,
            replayed=response.headers.get("idempotent-replayed") == "true",
            t=self.now(),
        )
        if not answer.replayed:
            st.created[item.message_id] += 1
        first = st.first.get(item.message_id)
        if first is None:
            st.first[item.message_id] = answer
            st.acked_order.append(item.message_id)
            st.ack_times.append(self.now() - started)
            return
        # Acknowledged before: the same answer again (a replay).
        if (answer.ticket_id, answer.relation, answer.action) != (
            first.ticket_id,
            first.relation,
            first.action,
        ):
            st.replay_mismatches.append(
                {
                    "message_id": item.message_id,
                    "first": [first.ticket_id, first.relation, first.action],
                    "again": [answer.ticket_id, answer.relation, answer.action],
                }
            )


async def generate_load(
    gw: Gateway,
    factory: MailFactory,
    *,
    duration: float,
    count: int | None,
    rate: float | None,
    dup_share: float,
    concurrency: int,
    max_pending: int,
    rng: random.Random,
) -> None:
    """Send at `rate` requests per second (None: as fast as `concurrency` allows) until done."""
    st = gw.state
    tasks: set[asyncio.Task[None]] = set()
    later: list[tuple[float, str]] = []  # heap of (when, message id): duplicates to come
    ready: list[str] = []  # acknowledged messages whose duplicate is due

    def spawn(item: Item, **kw: Any) -> None:
        task = asyncio.create_task(gw.deliver(item, **kw))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def spawn_later(items: list[Item], delay: float) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            for it in items:
                spawn(it)

        task = asyncio.create_task(run())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    start = gw.now()
    next_at = start
    while gw.now() - start < duration and (count is None or st.new_sent < count):
        if rate is None or st.pending >= max_pending:
            # Closed loop (or too much outstanding): wait for room.
            limit = concurrency if rate is None else max_pending
            while st.pending >= limit and gw.now() - start < duration:
                await asyncio.sleep(0.005)
        sent = 1
        while later and later[0][0] <= gw.now():
            when, mid = heapq.heappop(later)
            if mid in st.first:
                ready.append(mid)
            elif mid not in st.gave_up and mid not in st.rejected:
                heapq.heappush(later, (when + 5.0, mid))  # not acknowledged yet: later
        r = rng.random()
        if r < 0.01:
            # The same new message at both replicas at once (a retry after a timeout).
            item = factory.single()
            st.items[item.message_id] = item
            st.new_sent += 1
            st.duplicates_sent += 1
            st.concurrent_duplicates += 1
            st.scenarios["concurrent_duplicate"] += 1
            ports = [p for p, _c in gw.clients]
            spawn(item, port=ports[0])
            spawn(item, duplicate=True, port=ports[-1])
            sent = 2
        elif r < dup_share and ready:
            # A gateway re-delivering a message it already had acknowledged.
            mid = ready.pop(rng.randrange(len(ready)))
            st.duplicates_sent += 1
            spawn(st.items[mid], duplicate=True)
        else:
            pick = rng.random()
            if pick < 0.02:
                items = factory.thread_pair()
                st.scenarios["thread_pair"] += 1
                spawn(items[0])
                spawn_later(items[1:], rng.uniform(0.3, 3.0))
            elif pick < 0.03:
                items = factory.two_senders()
                st.scenarios["two_senders"] += 1
                for it in items:
                    spawn(it)  # round-robin: one per replica, concurrently
            else:
                items = [factory.single()]
                spawn(items[0])
            for it in items:
                st.items[it.message_id] = it
                st.new_sent += 1
                if rng.random() < dup_share * 1.2:
                    heapq.heappush(later, (gw.now() + rng.uniform(1.0, 45.0), it.message_id))
            sent = len(items)
        if rate is not None:
            next_at += sent / rate
            delay = next_at - gw.now()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -5:
                next_at = gw.now()  # fell behind (outage): do not burst to catch up
        else:
            await asyncio.sleep(0)
    log(f"load: stopped sending at t={gw.now():.0f}s; waiting for {st.pending} unacknowledged")
    while tasks:
        await asyncio.gather(*list(tasks), return_exceptions=True)


# ---------------------------------------------------------------------------------------------
# Processes


@dataclass
class Proc:
    """A service process we start, stop, kill and restart (workers, receiver, proxy)."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    generation: int = 0
    cpu_of_dead: float = 0.0

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}-{self.generation}.log"

    def start(self, *, stdout: int | None = None) -> None:
        self.generation += 1
        with self.log_path.open("wb") as fh:
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=self.workdir,
                stdout=stdout if stdout is not None else fh,
                stderr=fh,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


def vm_rss_kib(pids: list[int]) -> int:
    """Sum of VmRSS over `pids` (KiB)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def vm_hwm_kib(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def wait_http(url: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0, trust_env=False).status_code == 200:
                return True
        time.sleep(0.1)
    return False


# ---------------------------------------------------------------------------------------------
# The database outage


class DbFault:
    """Stops and starts the database the services use: the local cluster, or a proxy."""

    def __init__(self, mode: str, admin_url: str, workdir: Path) -> None:
        self.mode = mode
        self.cluster: tuple[str, str] | None = None
        self.stopped_by_us = False
        self.proxy: Proc | None = None
        self.proxy_url = ""
        self.shell: subprocess.Popen[bytes] | None = None
        if mode == "auto":
            self.cluster = local_cluster(admin_url)
            self.mode = "pg_ctlcluster" if self.cluster else "proxy"
        elif mode == "pg_ctlcluster":
            self.cluster = local_cluster(admin_url)
            if self.cluster is None:
                raise SystemExit(
                    "--fault-db pg_ctlcluster: DATABASE_URL is not a local Debian cluster we "
                    "can stop (needs pg_lsclusters, pg_ctlcluster and root)"
                )
        self.workdir = workdir

    def services_url(self, scratch_url: str) -> str:
        """The URL the services get: through the proxy in proxy mode."""
        if self.mode != "proxy":
            return scratch_url
        self.proxy = Proc(
            "pgproxy",
            [sys.executable, str(SCRIPTS / "_soak_proxy.py"), scratch_url],
            dict(os.environ),
            self.workdir,
        )
        self.proxy.start(stdout=subprocess.PIPE)
        assert self.proxy.proc is not None
        assert self.proxy.proc.stdout is not None
        line = self.proxy.proc.stdout.readline().decode().strip()
        if not line.startswith("postgresql"):
            raise RuntimeError(f"the database proxy did not start: {line!r}")
        self.proxy_url = line
        return line

    def _pg(self, action: str) -> list[str]:
        assert self.cluster is not None
        ver, name = self.cluster
        return ["pg_ctlcluster", "--skip-systemctl-redirect", ver, name, action]

    async def outage(self, seconds: float, events: list[tuple[float, str]], now: Any) -> None:
        """The database goes away for `seconds`, then comes back."""
        if self.mode == "proxy":
            assert self.proxy is not None
            assert self.proxy.proc is not None
            events.append((now(), "db: proxy cut"))
            self.proxy.proc.send_signal(signal.SIGUSR1)
            await asyncio.sleep(seconds)
            self.proxy.proc.send_signal(signal.SIGUSR2)
            events.append((now(), "db: proxy restored"))
            return
        # Stop, wait and start in one detached shell: Postgres comes back even if we die.
        stop, start = " ".join(self._pg("stop")), " ".join(self._pg("start"))
        script = f"{stop} -- -m fast; sleep {seconds:g}; {start}"
        self.stopped_by_us = True
        events.append((now(), "db: pg_ctlcluster stop"))
        self.shell = subprocess.Popen(
            ["sh", "-c", script],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        while self.shell.poll() is None:
            await asyncio.sleep(0.2)
        events.append((now(), f"db: pg_ctlcluster start (exit {self.shell.returncode})"))
        self.ensure_up()

    def ensure_up(self) -> None:
        """Start the cluster if we stopped it and it is not running (idempotent)."""
        if self.proxy is not None and self.proxy.alive() and self.proxy.proc is not None:
            self.proxy.proc.send_signal(signal.SIGUSR2)
        if not self.stopped_by_us or self.cluster is None:
            return
        if self.shell is not None and self.shell.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.shell.pid, signal.SIGKILL)
        ver, name = self.cluster
        status = subprocess.run(
            ["pg_ctlcluster", ver, name, "status"], capture_output=True, check=False
        )
        if status.returncode != 0:
            log("starting Postgres again")
            subprocess.run(self._pg("start"), check=False)

    def close(self) -> None:
        self.ensure_up()
        if self.proxy is not None:
            self.proxy.stop()


def local_cluster(url: str) -> tuple[str, str] | None:
    """(version, name) of the local Debian cluster behind `url`, if we can stop it."""
    if not shutil.which("pg_ctlcluster") or not shutil.which("pg_lsclusters"):
        return None
    if os.geteuid() != 0:
        return None
    u = make_url(url)
    host = u.host or str(u.query.get("host") or "")
    if host and host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("/"):
        return None
    port = str(u.port or 5432)
    out = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] == port and parts[3] == "online":
            return parts[0], parts[1]
    return None


# ---------------------------------------------------------------------------------------------
# Sampling


@dataclass
class Sample:
    t: float
    acked: int
    rate: float
    p50_ms: float | None
    p99_ms: float | None
    errors: dict[str, int]
    awaiting: int
    backlog: str
    received: int | None
    rss_mib: dict[str, float]
    events: list[str]


class Soak:
    """The run: processes, load, faults, samples, checks."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = uuid.uuid4().hex[:10]
        self.rng = random.Random(args.seed)
        self.secret = secrets.token_hex(32).encode()
        self.notify_secret = secrets.token_hex(32)
        self.workdir = Path(tempfile.mkdtemp(prefix="countersign-soak-"))
        self.apis: list[Server] = []
        self.workers: list[Proc] = []
        self.receiver: Proc | None = None
        self.receiver_url = ""
        self.db: Database | None = None
        self.fault: DbFault | None = None
        self.engine: Engine | None = None
        self.state = LoadState()
        self.events: list[tuple[float, str]] = []
        self.samples: list[Sample] = []
        self.t0 = time.monotonic()
        self.outage: tuple[float, float] | None = None
        self.notify_window: tuple[float, float] | None = None
        self.kill: dict[str, Any] = {}
        self.peak_rss: dict[str, float] = defaultdict(float)
        self.cpu_start: dict[str, float] = {}
        self.dead_cpu: dict[str, float] = defaultdict(float)
        self.t0_wall = time.time()
        self.hwm: dict[str, float] = {}
        self.pg_last = 0.0
        self.pg_total = 0.0
        self.load_elapsed = 0.0
        self.cpu_end: dict[str, float] = {}
        self.drained = False
        self.drain_seconds: float | None = None

    def now(self) -> float:
        return time.monotonic() - self.t0

    # -- setup ---------------------------------------------------------------------------------

    def setup(self) -> None:
        args = self.args
        admin = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        name = f"countersign_soak_{self.run_id}"
        scratch = make_url(admin).set(database=name).render_as_string(hide_password=False)
        self.db = Database(admin, scratch, name)
        self.fault = DbFault(args.fault_db, admin, self.workdir)
        self.db.execute(f'CREATE DATABASE "{name}"', scratch=False)
        log(f"scratch database {name}; database faults via {self.fault.mode}")
        log(f"logs in {self.workdir}")
        services_url = self.fault.services_url(scratch)

        rport = free_port()
        self.receiver_url = f"http://127.0.0.1:{rport}"
        self.receiver = Proc(
            "receiver",
            [
                sys.executable,
                str(SCRIPTS / "_soak_receiver.py"),
                "--port",
                str(rport),
                "--log",
                str(self.workdir / "deliveries.jsonl"),
                "--delay",
                str(args.receiver_delay),
            ],
            {**os.environ, "SOAK_RECEIVER_SECRET": self.notify_secret},
            self.workdir,
        )
        self.receiver.start()
        if not wait_http(f"{self.receiver_url}/healthz"):
            raise RuntimeError("the notice receiver did not start")

        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "COUNTERSIGN_DATABASE_URL")
        }
        env.update(
            {
                "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])]),
                "DATABASE_URL": services_url,
                "COUNTERSIGN_WEBHOOK_SECRETS": f"{SOURCE}={self.secret.decode()}",
                "COUNTERSIGN_NOTIFY_WEBHOOK_URL": f"{self.receiver_url}/notice",
                "COUNTERSIGN_NOTIFY_WEBHOOK_SECRET": self.notify_secret,
                "COUNTERSIGN_DATA_DIR": str(self.workdir / "unused-pgdata"),
                "COUNTERSIGN_LOG_FORMAT": "json",
            }
        )
        ports = [free_port(), free_port()]
        while ports[0] == ports[1]:
            ports[1] = free_port()
        # Both replicas start at once: the migration on start races on the advisory lock.
        procs = []
        for i, port in enumerate(ports, 1):
            env_i = {**env, "COUNTERSIGN_PUBLIC_URL": f"http://127.0.0.1:{ports[0]}"}
            procs.append(
                (
                    f"api{i}",
                    [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1",
                     "--port", str(port), "--workers", "1"],
                    env_i,
                    port,
                )
            )  # fmt: skip
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            futures = [
                pool.submit(
                    start_server, n, cmd, env=e, workdir=self.workdir, ready_path="/readyz", port=p
                )
                for n, cmd, e, p in procs
            ]
            errors = []
            for fut in futures:
                try:
                    self.apis.append(fut.result())
                except Exception as exc:
                    errors.append(str(exc))
            if errors:
                raise RuntimeError("\n".join(errors))
        log(f"api1 on :{ports[0]}, api2 on :{ports[1]}; receiver on :{rport}")
        for i in (1, 2):
            w = Proc(
                f"worker{i}",
                [sys.executable, "-m", "app.cli", "worker", "--poll-interval", "1",
                 "--lease-seconds", str(args.lease_seconds), "--worker-id", ""],
                env,
                self.workdir,
            )  # fmt: skip
            self._start_worker(w)
            self.workers.append(w)
        self.engine = create_engine(
            self.db.scratch_url.replace("postgresql://", "postgresql+psycopg://", 1),
            pool_pre_ping=True,
            pool_size=2,
            connect_args={"connect_timeout": 3},
        )

    def _start_worker(self, w: Proc) -> None:
        w.cmd[-1] = f"soak-{w.name}-gen{w.generation + 1}"
        w.start()
        time.sleep(0.5)
        if not w.alive():
            raise RuntimeError(f"{w.name} exited at once:\n{w.log_path.read_text()[-2000:]}")

    def worker_id(self, w: Proc) -> str:
        return w.cmd[-1]

    # -- measuring -----------------------------------------------------------------------------

    def service_pids(self) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for s in self.apis:
            out[s.name] = process_tree(s.proc.pid)
        for w in self.workers:
            out[w.name] = [w.pid] if w.alive() and w.pid else []
        return out

    def postgres_cpu(self) -> float:
        """CPU seconds of all Postgres processes, accumulated across restarts.

        The postmaster's count restarts from zero with the cluster; the sampler calls this every
        few seconds, so only the last moments before a stop are lost.
        """
        current = postgres_cpu_seconds()
        delta = current - self.pg_last if current >= self.pg_last else current
        self.pg_last = current
        self.pg_total += delta
        return self.pg_total

    def cpu_now(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for s in self.apis:
            out[s.name] = sum(tree_cpu_seconds(s.proc.pid).values())
        for w in self.workers:
            live = sum(tree_cpu_seconds(w.pid).values()) if w.alive() and w.pid else 0.0
            out[w.name] = live + self.dead_cpu[w.name]
        out["postgres"] = self.postgres_cpu()
        out["machine_busy"], _irq, out["machine_total"] = machine_cpu_seconds()
        return out

    def query(self, sql: str) -> list[Any]:
        assert self.engine is not None
        with self.engine.connect() as conn:
            return list(conn.execute(text(sql)))

    def backlog(self) -> str:
        try:
            rows = self.query(
                "SELECT count(*) FILTER (WHERE status = 'pending'),"
                " count(*) FILTER (WHERE status = 'failed') FROM outbox"
            )
        except Exception:
            return "db down"
        pending, failed = rows[0]
        return f"{pending}" + (f" ({failed} failed)" if failed else "")

    async def receiver_stats(self) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=2.0, trust_env=False) as c:
                return (await c.get(f"{self.receiver_url}/control/stats")).json()
        except (httpx.HTTPError, ValueError):
            return {}

    async def sampler(self, stop: asyncio.Event) -> None:
        every = self.args.sample_every
        last_t, last_attempt, last_event = self.now(), 0, 0
        printed_header = False
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)
            t = self.now()
            st = self.state
            window = st.attempts[last_attempt:]
            last_attempt = len(st.attempts)
            ok = sorted(a.latency for a in window if a.outcome == "200")
            errors = Counter(a.outcome for a in window if a.outcome != "200")
            self.postgres_cpu()
            backlog = await asyncio.to_thread(self.backlog)
            rstats = await self.receiver_stats()
            pids = self.service_pids()
            rss = {name: round(vm_rss_kib(p) / 1024, 1) for name, p in pids.items()}
            for name, mib in rss.items():
                self.peak_rss[name] = max(self.peak_rss[name], mib)
            events = [f"{e}" for _t, e in self.events[last_event:]]
            last_event = len(self.events)
            sample = Sample(
                t=round(t, 1),
                acked=len(st.first),
                rate=round(len(ok) / max(t - last_t, 1e-9), 1),
                p50_ms=round(percentile(ok, 0.5) * 1000, 1) if ok else None,
                p99_ms=round(percentile(ok, 0.99) * 1000, 1) if ok else None,
                errors=dict(errors),
                awaiting=st.pending,
                backlog=backlog,
                received=rstats.get("distinct_delivered"),
                rss_mib=rss,
                events=events,
            )
            last_t = t
            self.samples.append(sample)
            if not printed_header:
                log(timeline_header())
                printed_header = True
            log(timeline_row(sample))

    # -- faults --------------------------------------------------------------------------------

    async def at(self, when: float) -> None:
        await asyncio.sleep(max(0.0, when - self.now()))

    async def db_fault(self, when: float) -> None:
        assert self.fault is not None
        await self.at(when)
        start = self.now()
        await self.fault.outage(self.args.fault_db_seconds, self.events, self.now)
        self.outage = (start, self.now())

    async def notify_fault(self, when: float) -> None:
        await self.at(when)
        seconds = self.args.fault_notify_seconds
        async with httpx.AsyncClient(timeout=5.0, trust_env=False) as c:
            await c.post(f"{self.receiver_url}/control/fail", params={"seconds": seconds})
        self.notify_window = (self.now(), self.now() + seconds)
        self.events.append((self.now(), f"receiver: 503 for {seconds:g}s"))
        await asyncio.sleep(seconds)
        self.events.append((self.now(), "receiver: accepting again"))

    async def kill_fault(self, when: float) -> None:
        await self.at(when)
        w = self.workers[0]
        wid = self.worker_id(w)
        leased: int | None = None
        deadline = self.now() + 30.0
        # Wait until the worker holds a lease (between its claim and its settle): mid-delivery.
        while self.now() < deadline:
            try:
                rows = await asyncio.to_thread(
                    self.query,
                    # A lease taken in the last two seconds: the worker is sending it now
                    # (an older lease is one a database outage left behind).
                    "SELECT id FROM outbox WHERE status = 'pending' AND locked_by = "
                    f"'{wid}' AND locked_until > now() + make_interval("
                    f"secs => {max(0.0, self.args.lease_seconds - 2.0)})",
                )
            except Exception:
                rows = []
            if rows:
                leased = int(rows[0][0])
                break
            await asyncio.sleep(0.02)
        cpu = sum(tree_cpu_seconds(w.pid).values()) if w.pid else 0.0
        assert w.proc is not None
        os.kill(w.proc.pid, signal.SIGKILL)
        w.proc.wait()
        self.dead_cpu[w.name] += cpu
        t_kill = self.now()
        self.kill = {
            "t": round(t_kill, 1),
            "t_exact": t_kill,
            "worker": wid,
            "leased_outbox_id": leased,
        }
        self.events.append(
            (
                t_kill,
                f"{w.name} SIGKILL" + (f" holding outbox {leased}" if leased else " (no lease)"),
            )
        )
        await asyncio.sleep(self.args.restart_after)
        await asyncio.to_thread(self._start_worker, w)
        self.kill["restarted_at"] = round(self.now(), 1)
        self.events.append((self.now(), f"{w.name} restarted as {self.worker_id(w)}"))

    # -- the run -------------------------------------------------------------------------------

    async def run_load(self) -> None:
        args = self.args
        d = args.duration

        def when(value: float) -> float | None:
            if value is None:
                return None
            if value < 0:
                return None
            return value

        faults = []
        db_at = when(args.fault_db_at if args.fault_db_at is not None else 0.2 * d)
        notify_at = when(args.fault_notify_at if args.fault_notify_at is not None else 0.4 * d)
        kill_at = when(args.fault_kill_at if args.fault_kill_at is not None else 0.65 * d)
        if args.fault_db != "none" and db_at is not None and db_at > 0:
            faults.append(self.db_fault(db_at))
        if notify_at is not None and notify_at > 0:
            faults.append(self.notify_fault(notify_at))
        if kill_at is not None and kill_at > 0:
            faults.append(self.kill_fault(kill_at))

        self.t0 = time.monotonic()
        self.t0_wall = time.time()
        self.cpu_start = self.cpu_now()
        cpu0 = time.process_time()
        gw = Gateway(
            [int(s.base_url.rsplit(":", 1)[1]) for s in self.apis],
            self.secret,
            self.state,
            concurrency=args.concurrency,
            retry_limit=args.retry_limit,
            t0=self.t0,
            rng=self.rng,
        )
        factory = MailFactory(self.rng, self.run_id, args.risky_share)
        stop = asyncio.Event()
        sampler = asyncio.create_task(self.sampler(stop))
        fault_tasks = [asyncio.create_task(f) for f in faults]
        try:
            await generate_load(
                gw,
                factory,
                duration=d,
                count=args.count,
                rate=None if args.rate == "max" else float(args.rate),
                dup_share=args.duplicate_share,
                concurrency=args.concurrency,
                max_pending=args.max_pending,
                rng=self.rng,
            )
            self.load_elapsed = self.now()
            self.cpu_end = self.cpu_now()
            self.state.client_cpu = time.process_time() - cpu0
            # Faults scheduled past the end of the load still happen (a kill, an outage), so
            # the drain meets them; cancel only those not begun.
            for task in fault_tasks:
                if not task.done():
                    await task
            await self.drain()
        finally:
            stop.set()
            await sampler
            for task in fault_tasks:
                task.cancel()
            await gw.close()

    async def drain(self) -> None:
        """Wait until the outbox is empty and the receiver has every notice (bounded)."""
        deadline = self.now() + self.args.drain_timeout
        log("drain: waiting for the outbox to empty and the receiver to have every notice")
        self.drained = False
        while self.now() < deadline:
            try:
                rows = await asyncio.to_thread(
                    self.query,
                    "SELECT count(*) FILTER (WHERE status = 'pending'),"
                    " count(*) FILTER (WHERE status = 'delivered') FROM outbox",
                )
                pending, delivered = rows[0]
            except Exception:
                pending, delivered = -1, -1
            stats = await self.receiver_stats()
            if pending == 0 and stats.get("distinct_delivered", -1) >= delivered:
                self.drained = True
                self.drain_seconds = round(self.now() - self.load_elapsed, 1)
                log(f"drain: done {self.drain_seconds} s after the load stopped")
                return
            await asyncio.sleep(2.0)
        self.drain_seconds = round(self.now() - self.load_elapsed, 1)
        log(f"drain: outbox not empty after {self.args.drain_timeout:g} s")

    # -- checks --------------------------------------------------------------------------------

    def checks(self) -> dict[str, Any]:
        assert self.db is not None
        st = self.state
        acked = set(st.first)
        out: dict[str, Any] = {}

        # 1. Stored exactly once.
        rows = self.query(
            f"SELECT message_id, count(*) FROM message WHERE source = '{SOURCE}' GROUP BY 1"
        )
        stored = {r[0]: r[1] for r in rows}
        other_sources = self.query(f"SELECT count(*) FROM message WHERE source <> '{SOURCE}'")[0][0]
        missing = sorted(acked - stored.keys())
        duplicated = sorted(m for m, n in stored.items() if n > 1)
        extra = sorted(stored.keys() - acked)
        unexplained_extra = [m for m in extra if m not in st.gave_up]
        out["stored_exactly_once"] = {
            "ok": not missing and not duplicated and not unexplained_extra and not other_sources,
            "acknowledged": len(acked),
            "stored": len(stored),
            "missing": len(missing),
            "stored_twice": len(duplicated),
            "stored_not_acknowledged": len(extra),
            "stored_after_gateway_gave_up": len(extra) - len(unexplained_extra),
            "examples": (missing + duplicated + unexplained_extra)[:5],
        }

        # 2. Tickets: one per request, the ones the responses named.
        tickets = self.query("SELECT id::text, request_key, status FROM ticket")
        ticket_ids = {r[0] for r in tickets}
        by_key = Counter(r[1] for r in tickets)
        active_by_key = Counter(r[1] for r in tickets if r[2] in ("open", "in_progress"))
        answered = {a.ticket_id for a in st.first.values() if a.ticket_id}
        msg_rows = self.query(
            "SELECT message_id, ticket_id::text, ticket_relation, needs_verification, direction"
            f" FROM message WHERE source = '{SOURCE}'"
        )
        opened_per_ticket = Counter(r[1] for r in msg_rows if r[2] == "opened")
        risky_without_ticket = [r[0] for r in msg_rows if r[3] and r[4] == "inbound" and not r[1]]
        db_ticket_of = {r[0]: r[1] for r in msg_rows}
        response_vs_db = [
            m for m, a in st.first.items() if m in db_ticket_of and a.ticket_id != db_ticket_of[m]
        ]
        # The same request (template and intent) must always land on one ticket.
        per_request: dict[tuple[int, str | None], set[str]] = defaultdict(set)
        for mid, a in st.first.items():
            if a.ticket_id:
                per_request[(st.items[mid].template, a.intent)].add(a.ticket_id)
        split_requests = [k for k, v in per_request.items() if len(v) > 1]
        groups: dict[str, list[str]] = defaultdict(list)
        for mid, item in st.items.items():
            if item.group and mid in st.first:
                groups[item.group].append(mid)
        split_groups, verdicts_differ = [], []
        for mids in groups.values():
            answers = {m: st.first[m] for m in mids}
            described = {
                "scenario": st.items[mids[0]].scenario,
                "template": st.items[mids[0]].template,
                "messages": {
                    m: [a.ticket_id, a.intent, a.needs_verification] for m, a in answers.items()
                },
            }
            risky = [a for a in answers.values() if a.ticket_id]
            if len({a.ticket_id for a in risky}) > 1 and len({a.intent for a in risky}) == 1:
                split_groups.append(described)  # one request, two tickets
            elif len({a.needs_verification for a in answers.values()}) > 1:
                verdicts_differ.append(described)  # detection, not ticketing: reported
        created_twice = sum(1 for n in st.created.values() if n > 1)
        opened_twice = [t for t, n in opened_per_ticket.items() if n > 1]
        never_opened = sorted(ticket_ids - set(opened_per_ticket))
        out["one_ticket_per_request"] = {
            "ok": ticket_ids == answered
            and not [k for k, n in active_by_key.items() if n > 1]
            and not [k for k, n in by_key.items() if n > 1]
            and not opened_twice
            and not never_opened
            and not split_requests
            and not split_groups
            and not st.replay_mismatches
            and not created_twice
            and not response_vs_db
            and not risky_without_ticket,
            "tickets_in_db": len(ticket_ids),
            "distinct_tickets_in_responses": len(answered),
            "in_db_not_in_responses": len(ticket_ids - answered),
            "in_responses_not_in_db": len(answered - ticket_ids),
            "active_tickets_sharing_a_request_key": sum(1 for n in active_by_key.values() if n > 1),
            "tickets_sharing_a_request_key": sum(1 for n in by_key.values() if n > 1),
            "tickets_opened_by_two_messages": len(opened_twice),
            "tickets_without_opening_message": len(never_opened),
            "requests_split_over_tickets": len(split_requests),
            "requests_split_examples": [
                {"template": k[0], "intent": k[1], "tickets": sorted(per_request[k])}
                for k in split_requests[:3]
            ],
            "scenario_groups_split": split_groups[:5],
            "scenario_groups_checked": len(groups),
            "scenario_verdicts_differ": verdicts_differ[:5],
            "scenario_verdicts_differ_count": len(verdicts_differ),
            "replay_mismatches": st.replay_mismatches[:5],
            "messages_created_twice": created_twice,
            "response_ticket_differs_from_db": len(response_vs_db),
            "risky_messages_without_ticket": len(risky_without_ticket),
            "risky_acknowledged": sum(1 for a in st.first.values() if a.needs_verification),
        }

        # 3. Notices.
        outbox = self.query(
            "SELECT id, ticket_id::text, kind, status, attempts, coalesce(last_error, '')"
            " FROM outbox"
        )
        receipts = []
        log_path = self.workdir / "deliveries.jsonl"
        if log_path.exists():
            receipts = [json.loads(x) for x in log_path.read_text().splitlines() if x.strip()]
        ok_by_id: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for r in receipts:
            if r.get("answer") == "ok":
                ok_by_id[r.get("delivery")].append(r)
        opened_rows = [r for r in outbox if r[2] == "ticket_opened"]
        notices_per_ticket = Counter(r[1] for r in opened_rows)
        not_delivered = [r[0] for r in opened_rows if r[0] not in ok_by_id]
        not_marked = [(r[0], r[3], r[5][:120]) for r in opened_rows if r[3] != "delivered"]
        wrong_ticket = [
            r[0] for r in opened_rows for x in ok_by_id.get(r[0], []) if x.get("ticket_id") != r[1]
        ]
        known_ids = {r[0] for r in outbox}
        unknown = [i for i in ok_by_id if i not in known_ids]
        twice = {i: v for i, v in ok_by_id.items() if len(v) > 1}
        leased = self.kill.get("leased_outbox_id")
        # The notice the killed worker held, first accepted just before (or as) it died.
        t_kill = self.kill.get("t_exact", -100.0) + self.t0_wall
        after_kill = [
            i for i in twice if i == leased and t_kill - 15 <= twice[i][0]["t"] <= t_kill + 2
        ]
        wb = self.outage or (-1.0, -1.0)
        w0 = (wb[0] - 1.0 + self.t0_wall, wb[1] + self.t0_wall)
        after_outage = [
            i for i in twice if i not in after_kill and w0[0] <= twice[i][0]["t"] <= w0[1]
        ]
        other_twice = [i for i in twice if i not in after_kill and i not in after_outage]
        bad_signatures = sum(1 for r in receipts if r.get("answer") == "bad_signature")
        problems = [r for r in receipts if r.get("problems")]
        refused_on_purpose = sum(1 for r in receipts if r.get("answer") == "failed_on_purpose")
        attempts = Counter(r[4] for r in opened_rows)
        out["notices_delivered"] = {
            "ok": not not_delivered
            and not not_marked
            and not wrong_ticket
            and not unknown
            and not after_outage
            and not other_twice
            and not bad_signatures
            and not problems
            and all(n == 1 for n in notices_per_ticket.values())
            and len(notices_per_ticket) == len(ticket_ids),
            "ticket_opened_notices": len(opened_rows),
            "tickets_with_a_notice": len(notices_per_ticket),
            "tickets_with_several_notices": sum(1 for n in notices_per_ticket.values() if n > 1),
            "never_received": len(not_delivered),
            "not_marked_delivered": not_marked[:5],
            "receipts": len(receipts),
            "refused_on_purpose_503": refused_on_purpose,
            "bad_signatures": bad_signatures,
            "malformed": len(problems),
            "received_for_another_ticket": len(wrong_ticket),
            "unknown_outbox_ids": len(unknown),
            "accepted_twice_after_killed_worker": len(after_kill),
            "accepted_twice_after_db_outage": len(after_outage),
            "accepted_twice_otherwise": len(other_twice),
            "accepted_twice_examples": [
                {
                    "id": i,
                    "attempts": [x["attempt"] for x in v],
                    "t": [round(x["t"] - self.t0_wall, 1) for x in v],
                }
                for i, v in list(twice.items())[:5]
            ],
            "attempts_histogram": dict(sorted(attempts.items())),
            "killed_worker": self.kill,
        }

        # 4. Errors: HTTP errors only as 503 during the outage. Connection errors (a refused
        # connect, a keep-alive connection the server closed as the request went out) are
        # retried by any gateway and counted apart; a crash shows in services_survived.
        lo, hi = self.outage if self.outage else (float("inf"), float("-inf"))
        in_outage: Counter[str] = Counter()
        outside: Counter[str] = Counter()
        transport: Counter[str] = Counter()
        outside_at: list[float] = []
        for a in st.attempts:
            if a.outcome == "200":
                continue
            if not a.outcome.isdigit():
                transport[a.outcome] += 1
            elif a.outcome == "503" and lo - 1.0 <= a.t <= hi + OUTAGE_GRACE:
                in_outage[a.outcome] += 1
            else:
                outside[a.outcome] += 1
                outside_at.append(round(a.t, 1))
        out["errors_only_during_outage"] = {
            "ok": not outside and not st.gave_up and not st.rejected,
            "during_outage": dict(in_outage),
            "outside_outage": dict(outside),
            "outside_outage_first_at": outside_at[:10],
            "connection_errors_retried": dict(transport),
            "connection_errors_at": [round(a.t, 1) for a in st.attempts if a.outcome in transport][
                :10
            ],
            "not_acknowledged_gave_up": len(st.gave_up),
            "refused_4xx": len(st.rejected),
            "refused_examples": list(st.rejected.values())[:3],
        }
        return out

    # -- report --------------------------------------------------------------------------------

    def figures(self) -> dict[str, Any]:
        st = self.state
        elapsed = self.load_elapsed or self.now()
        ok = sorted(a.latency for a in st.attempts if a.outcome == "200")
        lo, hi = self.outage if self.outage else (float("inf"), float("-inf"))
        calm = sorted(
            a.latency
            for a in st.attempts
            if a.outcome == "200" and not lo - 1.0 <= a.t <= hi + OUTAGE_GRACE
        )
        tta = sorted(st.ack_times)
        errors = Counter(a.outcome for a in st.attempts if a.outcome != "200")
        cpu0, cpu1 = self.cpu_start, self.cpu_end or self.cpu_now()
        used = {k: round(cpu1.get(k, 0.0) - cpu0.get(k, 0.0), 2) for k in cpu1}
        api_cpu = sum(used.get(s.name, 0.0) for s in self.apis)
        worker_cpu = sum(used.get(w.name, 0.0) for w in self.workers)
        per_req = 1000.0 / st.acks if st.acks else 0.0
        api_ms = api_cpu * per_req
        pg_ms = used.get("postgres", 0.0) * per_req
        worker_ms = worker_cpu * per_req
        total_ms = api_ms + pg_ms + worker_ms
        ms = lambda v: round(v * 1000, 1)  # noqa: E731
        return {
            "load_seconds": round(elapsed, 1),
            "messages_sent": st.new_sent,
            "messages_acknowledged": len(st.first),
            "requests_acknowledged": st.acks,
            "duplicates_sent": st.duplicates_sent,
            "concurrent_duplicates": st.concurrent_duplicates,
            "scenarios": dict(st.scenarios),
            "http_attempts": len(st.attempts),
            "throughput_acknowledged_per_second": round(st.acks / elapsed, 1) if elapsed else 0.0,
            "latency_ms": {
                "p50": ms(percentile(ok, 0.5)),
                "p99": ms(percentile(ok, 0.99)),
                "max": ms(ok[-1] if ok else 0.0),
                "p50_outside_outage": ms(percentile(calm, 0.5)),
                "p99_outside_outage": ms(percentile(calm, 0.99)),
            },
            "time_to_acknowledge_ms": {
                "p50": ms(percentile(tta, 0.5)),
                "p99": ms(percentile(tta, 0.99)),
                "max": ms(tta[-1] if tta else 0.0),
            },
            "errors": dict(errors),
            "verdict_actions": dict(Counter(a.action for a in st.first.values())),
            "risky_share_acknowledged": round(
                sum(1 for a in st.first.values() if a.needs_verification) / max(1, len(st.first)), 3
            ),
            "cpu_seconds": used,
            "cpu_ms_per_acknowledged_request": {
                "api": round(api_ms, 2),
                "postgres": round(pg_ms, 2),
                "workers": round(worker_ms, 2),
                "total": round(total_ms, 2),
            },
            "capacity_per_core_requests_per_second": round(1000.0 / total_ms, 0) if total_ms else 0,
            "machine_busy_share": round(
                used.get("machine_busy", 0.0) / max(used.get("machine_total", 0.0), 1e-9), 3
            ),
            "other_processes_cpu_share": round(
                max(
                    0.0,
                    used.get("machine_busy", 0.0)
                    - api_cpu
                    - worker_cpu
                    - used.get("postgres", 0.0)
                    - st.client_cpu,
                )
                / max(used.get("machine_total", 0.0), 1e-9),
                3,
            ),
            "load_generator_cpu_share_of_one_core": round(st.client_cpu / elapsed, 3)
            if elapsed
            else 0,
            "peak_rss_mib": dict(self.peak_rss),
            "peak_hwm_mib": self.hwm,
            "rss_growth_mib": self.rss_growth(),
            "outage": [round(x, 1) for x in self.outage] if self.outage else None,
            "receiver_503_window": [round(x, 1) for x in self.notify_window]
            if self.notify_window
            else None,
            "drained": self.drained,
            "drain_seconds": self.drain_seconds,
            "cpus": os.cpu_count(),
        }

    def rss_growth(self) -> dict[str, float]:
        """RSS at the last sample minus the first sample after a third of the run, per process."""
        if len(self.samples) < 4:
            return {}
        base = self.samples[len(self.samples) // 3].rss_mib
        last = self.samples[-1].rss_mib
        return {k: round(last[k] - base[k], 1) for k in last if k in base and last[k] and base[k]}

    def log_findings(self) -> dict[str, Any]:
        """Warnings, errors and tracebacks in each service log, by message."""
        out: dict[str, Any] = {}
        for path in sorted(self.workdir.glob("*.log")):
            levels: dict[str, Counter[str]] = {"warning": Counter(), "error": Counter()}
            tracebacks: list[str] = []
            lines = path.read_text(errors="replace").splitlines()
            for n, line in enumerate(lines):
                try:
                    rec = json.loads(line)
                except ValueError:
                    rec = None
                if isinstance(rec, dict):
                    level = (
                        "error" if rec.get("level") in ("error", "critical") else rec.get("level")
                    )
                    if level in levels:
                        message = re.sub(r"\d+", "N", str(rec.get("message", "")))
                        levels[level][message[:160]] += 1
                        if rec.get("exception") and len(tracebacks) < 3:
                            tracebacks.append(str(rec["exception"])[-1500:])
                elif line.startswith("Traceback") and len(tracebacks) < 3:
                    block = [line]
                    for more in lines[n + 1 : n + 60]:
                        block.append(more)
                        if more and not more.startswith((" ", "Traceback", "During", "The ")):
                            break
                    tracebacks.append("\n".join(block)[-1500:])
            if levels["warning"] or levels["error"] or tracebacks:
                out[path.name] = {
                    "errors": dict(levels["error"].most_common(8)),
                    "warnings": dict(levels["warning"].most_common(8)),
                    "tracebacks": tracebacks,
                }
        return out


def timeline_header() -> str:
    return (
        f"{'t s':>6} {'acked':>7} {'req/s':>6} {'p50ms':>7} {'p99ms':>7} {'await':>6} "
        f"{'outbox':>12} {'recvd':>6} {'api1':>5} {'api2':>5} {'w1':>5} {'w2':>5}  errors / events"
    )


def timeline_row(s: Sample) -> str:
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    rss = s.rss_mib
    errs = ", ".join(f"{k}:{v}" for k, v in sorted(s.errors.items()))
    extra = "; ".join(x for x in [errs, *s.events] if x)
    return (
        f"{s.t:>6.0f} {s.acked:>7} {s.rate:>6.1f} {f(s.p50_ms):>7} {f(s.p99_ms):>7} "
        f"{s.awaiting:>6} {s.backlog:>12} {s.received if s.received is not None else '-':>6} "
        f"{rss.get('api1', 0):>5.0f} {rss.get('api2', 0):>5.0f} {rss.get('worker1', 0):>5.0f} "
        f"{rss.get('worker2', 0):>5.0f}  {extra}"
    )


def print_report(report: dict[str, Any]) -> None:
    w = sys.stdout.write
    cfg = report["config"]
    w(
        f"Soak: {cfg['duration']} s at {cfg['rate']} req/s, 2 API processes, 2 workers, "
        f"{cfg['cpus']} CPUs, database faults via {cfg['fault_db']}\n\n"
    )
    w("Timeline (RSS in MiB; outbox = pending notices; recvd = notices the receiver accepted)\n")
    w(timeline_header() + "\n")
    for s in report["timeline"]:
        w(timeline_row(Sample(**s)) + "\n")
    f = report["figures"]
    lat, tta = f["latency_ms"], f["time_to_acknowledge_ms"]
    w("\n")
    w(
        f"messages: {f['messages_sent']} sent, {f['messages_acknowledged']} acknowledged; "
        f"{f['requests_acknowledged']} acknowledged requests incl. {f['duplicates_sent']} "
        f"duplicates ({f['concurrent_duplicates']} concurrent); scenarios {f['scenarios']}\n"
        f"throughput: {f['throughput_acknowledged_per_second']} acknowledged req/s over "
        f"{f['load_seconds']} s; {f['http_attempts']} HTTP attempts\n"
        f"latency (acknowledged requests): p50 {f['latency_ms']['p50']} ms, p99 "
        f"{f['latency_ms']['p99']} ms, max {f['latency_ms']['max']} ms; outside the outage p50 "
        f"{lat['p50_outside_outage']} ms, p99 {lat['p99_outside_outage']} ms\n"
        f"time to acknowledgement (retries included): p50 {tta['p50']} ms, "
        f"p99 {tta['p99']} ms, max {tta['max']} ms\n"
        f"errors by status: {f['errors'] or 'none'}\n"
        f"verdicts: {f['verdict_actions']} (risky share {f['risky_share_acknowledged']:.1%})\n"
        f"CPU ms per acknowledged request: {f['cpu_ms_per_acknowledged_request']} -> "
        f"~{f['capacity_per_core_requests_per_second']:.0f} req/s per core; machine busy "
        f"{f['machine_busy_share']:.0%}, load generator "
        f"{f['load_generator_cpu_share_of_one_core']:.0%} of a core, other processes "
        f"{f['other_processes_cpu_share']:.0%} of the machine\n"
        f"peak RSS MiB (sampled VmRSS): {f['peak_rss_mib']}; "
        f"VmHWM at the end: {f['peak_hwm_mib']}\n"
        f"RSS growth over the last two thirds (MiB): {f['rss_growth_mib']}\n"
        f"outage {f['outage']}, receiver 503 window {f['receiver_503_window']}, drained "
        f"{f['drained']} ({f['drain_seconds']} s after the load)\n\n"
    )
    for name, c in report["checks"].items():
        detail = {k: v for k, v in c.items() if k != "ok" and v not in (0, [], {}, None)}
        w(f"{'PASS' if c['ok'] else 'FAIL'}  {name}: {json.dumps(detail, default=str)}\n")
    if report["service_logs"]:
        w("\nservice logs (message: count):\n")
        for name, v in report["service_logs"].items():
            w(f"  {name}: errors {v['errors']}; warnings {v['warnings']}\n")
            for tb in v["tracebacks"][:1]:
                w("".join(f"    | {line}\n" for line in tb.splitlines()[-12:]))
    w(f"\n{'PASS' if report['ok'] else 'FAIL'}\n")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    p.add_argument("--count", type=int, default=None, help="stop after this many new messages")
    p.add_argument("--rate", default="40", help="requests per second, or 'max'")
    p.add_argument("--concurrency", type=int, default=32, help="HTTP requests in flight at most")
    p.add_argument("--max-pending", type=int, default=5000, help="unacknowledged messages at most")
    p.add_argument("--duplicate-share", type=float, default=0.2)
    p.add_argument("--risky-share", type=float, default=0.12)
    p.add_argument("--retry-limit", type=float, default=180.0, help="seconds to retry a message")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fault-db", choices=["auto", "pg_ctlcluster", "proxy", "none"], default="auto")
    p.add_argument("--fault-db-at", type=float, default=None, help="default 20%% of --duration")
    p.add_argument("--fault-db-seconds", type=float, default=20.0)
    p.add_argument("--fault-notify-at", type=float, default=None, help="default 40%% of --duration")
    p.add_argument("--fault-notify-seconds", type=float, default=60.0)
    p.add_argument("--fault-kill-at", type=float, default=None, help="default 65%% of --duration")
    p.add_argument("--restart-after", type=float, default=5.0)
    p.add_argument("--lease-seconds", type=float, default=120.0, help="worker --lease-seconds")
    p.add_argument("--receiver-delay", type=float, default=0.1)
    p.add_argument("--sample-every", type=float, default=10.0)
    p.add_argument("--drain-timeout", type=float, default=420.0)
    p.add_argument("--keep-logs", action="store_true", help="keep the log directory")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.rate != "max":
        try:
            if float(args.rate) <= 0:
                raise ValueError
        except ValueError:
            p.error("--rate must be a positive number or 'max'")
    return args


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(129))
    soak = Soak(args)
    report: dict[str, Any] | None = None
    status = 2
    try:
        soak.setup()
        try:
            import uvloop

            runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
        except ImportError:
            runner = asyncio.Runner()
        with runner:
            runner.run(soak.run_load())
        soak.hwm = {
            **{
                s.name: round(sum(vm_hwm_kib(p) for p in process_tree(s.proc.pid)) / 1024, 1)
                for s in soak.apis
            },
            **{
                w.name: round(vm_hwm_kib(w.pid) / 1024, 1)
                for w in soak.workers
                if w.alive() and w.pid
            },
        }
        alive = {s.name: s.proc.poll() is None for s in soak.apis}
        alive.update({w.name: w.alive() for w in soak.workers})
        checks = soak.checks()
        checks["services_survived"] = {"ok": all(alive.values()), "alive": alive}
        report = {
            "config": {
                "duration": args.duration,
                "rate": args.rate,
                "concurrency": args.concurrency,
                "duplicate_share": args.duplicate_share,
                "risky_share": args.risky_share,
                "fault_db": soak.fault.mode if soak.fault else args.fault_db,
                "cpus": os.cpu_count(),
                "seed": args.seed,
            },
            "figures": soak.figures(),
            "timeline": [s.__dict__ for s in soak.samples],
            "events": [(round(t, 1), e) for t, e in soak.events],
            "checks": checks,
            "service_logs": soak.log_findings(),
            "log_dir": str(soak.workdir),
        }
        report["ok"] = all(c["ok"] for c in checks.values())
        status = 0 if report["ok"] else 1
    except KeyboardInterrupt:
        log("interrupted")
        status = 130
    except (RuntimeError, OSError) as exc:
        log(f"soak could not run: {exc}")
        status = 2
    finally:
        cleanup(soak, keep=args.keep_logs or status != 0)
    if report is not None:
        if args.json:
            print(json.dumps(report, indent=2, default=str))
        else:
            print_report(report)
    return status


def cleanup(soak: Soak, *, keep: bool) -> None:
    """Stop everything we started, bring Postgres back, drop the scratch database."""
    for w in soak.workers:
        w.stop()
    for s in soak.apis:
        s.stop()
    if soak.receiver is not None:
        soak.receiver.stop()
    if soak.fault is not None:
        soak.fault.close()
    if soak.engine is not None:
        soak.engine.dispose()
    if soak.db is not None:
        for attempt in range(10):
            try:
                soak.db.execute(
                    f'DROP DATABASE IF EXISTS "{soak.db.scratch_name}" WITH (FORCE)', scratch=False
                )
                break
            except Exception as exc:
                if attempt == 9:
                    log(f"could not drop {soak.db.scratch_name}: {exc}")
                time.sleep(1.0)
    if keep:
        log(f"logs kept in {soak.workdir}")
    else:
        shutil.rmtree(soak.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
