"""In-process rate limits: sliding-window counters keyed by client address and account name.

Each limiter remembers, per key, the times of the last `limit` counted requests and refuses a new
one while `limit` of them fall inside the window; `Retry-After` is when the oldest leaves it. The
state is bounded: at most `max_keys` keys per limiter (least recently used evicted first) and at
most `limit` timestamps per key, so a flood of distinct names or addresses costs fixed memory.

Per process, deliberately: every uvicorn worker and every replica counts on its own, so with N
processes behind a load balancer a client gets up to N times each limit. A limit shared by all
processes needs a shared store (Redis: a sorted set or INCR with EXPIRE per key; or a Postgres
table), which this service does not require. These limits are a brake on brute force and link
guessing; the per-account lockout in the database (app/users/service.py) is the hard limit.

Keys come from `request.client`: behind a reverse proxy run uvicorn with `--proxy-headers` and
`--forwarded-allow-ips` set to the proxy, or every client shares the proxy's address (and its
limit). IPv6 clients are keyed by their /64, which one subscriber usually holds whole.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Clock = Callable[[], float]
MAX_KEYS = 10_000
MAX_KEY_CHARS = 200


@dataclass(frozen=True, slots=True)
class Limit:
    """At most `count` requests per `window` seconds."""

    count: int
    window: float


# Sensible defaults that need no configuration.
SIGN_IN_PER_CLIENT = "sign-in/client"
SIGN_IN_PER_ACCOUNT = "sign-in/account"
VERIFY_PER_CLIENT = "verify/client"
VERIFY_POST_PER_LINK = "verify-post/link"
DEFAULT_LIMITS: dict[str, Limit] = {
    # Unsuccessful sign-ins (a success is refunded, so an office behind one NAT is not slowed).
    SIGN_IN_PER_CLIENT: Limit(10, 60.0),
    SIGN_IN_PER_ACCOUNT: Limit(10, 60.0),
    # Every GET and POST of /verify/{token} from one client.
    VERIFY_PER_CLIENT: Limit(30, 60.0),
    # Form submissions to one link (keyed by the token's first characters).
    VERIFY_POST_PER_LINK: Limit(10, 60.0),
}
TOKEN_PREFIX_CHARS = 12


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer of a limiter: allowed, or refused until `retry_after` seconds have passed."""

    allowed: bool
    retry_after: int = 0

    @property
    def headers(self) -> dict[str, str]:
        """`Retry-After` for a refusal (no headers when allowed)."""
        return {} if self.allowed else {"Retry-After": str(self.retry_after)}


class SlidingWindowLimiter:
    """At most `limit.count` counted requests per key within any `limit.window` seconds."""

    def __init__(
        self,
        limit: Limit,
        *,
        max_keys: int = MAX_KEYS,
        clock: Clock = time.monotonic,
        lock: threading.Lock | None = None,
    ) -> None:
        if limit.count < 1 or limit.window <= 0 or max_keys < 1:
            raise ValueError("a limit needs a positive count, window and key budget")
        self.limit = limit
        self.max_keys = max_keys
        self.clock = clock
        self._lock = lock or threading.Lock()
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hits)

    def _retry_after(self, key: str, now: float) -> float:
        """Seconds until `key` may be counted again (0 when it may now); caller holds the lock."""
        stamps = self._hits.get(key)
        if stamps is None:
            return 0.0
        cutoff = now - self.limit.window
        while stamps and stamps[0] <= cutoff:
            stamps.popleft()
        if len(stamps) < self.limit.count:
            return 0.0
        return stamps[0] + self.limit.window - now

    def _record(self, key: str, now: float) -> None:
        stamps = self._hits.get(key)
        if stamps is None:
            stamps = self._hits[key] = deque(maxlen=self.limit.count)
        stamps.append(now)
        self._hits.move_to_end(key)
        self._prune(now)

    def _prune(self, now: float) -> None:
        """Drop keys with nothing inside the window, then the least recently used beyond budget."""
        cutoff = now - self.limit.window
        while self._hits:
            oldest_key, stamps = next(iter(self._hits.items()))
            if len(self._hits) > self.max_keys or not stamps or stamps[-1] <= cutoff:
                del self._hits[oldest_key]
            else:
                break

    def hit(self, key: str) -> Decision:
        """Count one request for `key` if the limit allows it; a refusal is not counted."""
        with self._lock:
            now = self.clock()
            return self._hit_locked(key, now)

    def _hit_locked(self, key: str, now: float) -> Decision:
        wait = self._retry_after(key, now)
        if wait > 0:
            return Decision(False, max(1, math.ceil(wait)))
        self._record(key, now)
        return Decision(True)

    def refund(self, key: str) -> None:
        """Forget the newest counted request of `key` (it turned out to be legitimate)."""
        with self._lock:
            stamps = self._hits.get(key)
            if stamps:
                stamps.pop()

    def reset(self) -> None:
        """Forget every key."""
        with self._lock:
            self._hits.clear()


class RateLimits:
    """The named limiters of one application (one lock, so a multi-key check is atomic)."""

    def __init__(
        self,
        overrides: Mapping[str, Limit] | None = None,
        *,
        clock: Clock = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self._lock = threading.Lock()
        self.clock = clock
        limits = {**DEFAULT_LIMITS, **(overrides or {})}
        self.limiters = {
            name: SlidingWindowLimiter(limit, max_keys=max_keys, clock=clock, lock=self._lock)
            for name, limit in limits.items()
        }

    def hit(self, *checks: tuple[str, str | None]) -> Decision:
        """Count a request against every (limiter name, key) pair, or against none if one refuses.

        A None key is skipped (for example an empty account name).
        """
        pairs = [(self.limiters[name], key) for name, key in checks if key is not None]
        with self._lock:
            now = self.clock()
            waits = [limiter._retry_after(key, now) for limiter, key in pairs]
            worst = max(waits, default=0.0)
            if worst > 0:
                return Decision(False, max(1, math.ceil(worst)))
            for limiter, key in pairs:
                limiter._record(key, now)
        return Decision(True)

    def refund(self, *checks: tuple[str, str | None]) -> None:
        """Undo the counting of a request that turned out to be legitimate."""
        for name, key in checks:
            if key is not None:
                self.limiters[name].refund(key)


_create_lock = threading.Lock()


def rate_limits_of(app: Any) -> RateLimits:
    """The application's limiters, created with the defaults on first use.

    Tests (or create_app) may set `app.state.rate_limits` beforehand, e.g. with an injected clock.
    """
    limits = getattr(app.state, "rate_limits", None)
    if isinstance(limits, RateLimits):
        return limits
    with _create_lock:
        limits = getattr(app.state, "rate_limits", None)
        if not isinstance(limits, RateLimits):
            limits = RateLimits()
            app.state.rate_limits = limits
    return limits


def client_key(request: Any) -> str:
    """The key of the client sending `request`: its address, IPv6 reduced to the /64."""
    host = getattr(getattr(request, "client", None), "host", None) or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:MAX_KEY_CHARS] or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def account_key(name: str) -> str | None:
    """The key of an account name as typed at sign-in (None when empty)."""
    normalised = name.strip().lower()[:MAX_KEY_CHARS]
    return normalised or None


def token_key(token: str) -> str:
    """The key of a verification token: its first characters (bounded, still near-unique)."""
    return token[:TOKEN_PREFIX_CHARS]
