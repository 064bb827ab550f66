"""Rate limits on sign-in and the /verify links: refusals, Retry-After, recovery, bounded memory."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.core.ratelimit import (
    SIGN_IN_PER_ACCOUNT,
    SIGN_IN_PER_CLIENT,
    VERIFY_PER_CLIENT,
    Limit,
    RateLimits,
    SlidingWindowLimiter,
    client_key,
    rate_limits_of,
)
from app.users import service as users
from app.users.models import User
from tests.dashboard.helpers import PASSWORD, dashboard_app, dashboard_settings, sign_in


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(committed: sessionmaker[Session], database_url: str, clock: FakeClock) -> FastAPI:
    """The API with the dashboard, its rate limits on the injected clock."""
    application = dashboard_app(dashboard_settings(database_url))
    application.state.rate_limits = RateLimits(clock=clock)
    return application


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def make_user(committed: sessionmaker[Session]) -> Callable[..., User]:
    def make(name: str) -> User:
        with committed() as s, s.begin():
            return users.create_user(s, name=name, password=PASSWORD)

    return make


# --- the limiter --------------------------------------------------------------------------------


def test_the_limit_plus_one_is_refused_until_the_oldest_leaves_the_window(
    clock: FakeClock,
) -> None:
    limiter = SlidingWindowLimiter(Limit(3, 60), clock=clock)
    for _ in range(3):
        assert limiter.hit("k").allowed
        clock.advance(10)
    refused = limiter.hit("k")
    assert not refused.allowed
    # The first hit was 30 s ago: it leaves the window in 30 s.
    assert refused.retry_after == 30
    assert refused.headers == {"Retry-After": "30"}
    clock.advance(29)
    assert not limiter.hit("k").allowed
    clock.advance(1)
    assert limiter.hit("k").allowed
    assert not limiter.hit("k").allowed
    assert limiter.hit("other").allowed


def test_refusals_are_not_counted_so_hammering_does_not_extend_the_wait(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(Limit(2, 60), clock=clock)
    assert limiter.hit("k").allowed
    assert limiter.hit("k").allowed
    for _ in range(50):
        clock.advance(1)
        assert not limiter.hit("k").allowed
    clock.advance(10)
    assert limiter.hit("k").allowed


def test_a_refund_gives_the_slot_back(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(Limit(1, 60), clock=clock)
    assert limiter.hit("k").allowed
    limiter.refund("k")
    assert limiter.hit("k").allowed
    assert not limiter.hit("k").allowed


def test_memory_is_bounded_whatever_the_number_of_keys(clock: FakeClock) -> None:
    limiter = SlidingWindowLimiter(Limit(5, 60), max_keys=100, clock=clock)
    for i in range(10_000):
        limiter.hit(f"key-{i}")
    assert len(limiter) <= 100
    # Keys whose hits have all left the window are dropped as new ones arrive.
    clock.advance(61)
    limiter.hit("fresh")
    assert len(limiter) == 1


def test_concurrent_hits_never_exceed_the_limit() -> None:
    limiter = SlidingWindowLimiter(Limit(50, 60))
    allowed: list[bool] = []
    start = threading.Barrier(8)

    def hammer() -> None:
        start.wait()
        results = [limiter.hit("shared").allowed for _ in range(100)]
        allowed.extend(results)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 50


def test_a_multi_key_check_counts_against_all_keys_or_none(clock: FakeClock) -> None:
    limits = RateLimits({SIGN_IN_PER_CLIENT: Limit(5, 60), SIGN_IN_PER_ACCOUNT: Limit(2, 60)})
    assert limits.hit((SIGN_IN_PER_CLIENT, "ip"), (SIGN_IN_PER_ACCOUNT, "bob")).allowed
    assert limits.hit((SIGN_IN_PER_CLIENT, "ip"), (SIGN_IN_PER_ACCOUNT, "bob")).allowed
    # bob is over his limit: this attempt is refused and not counted against the address either.
    assert not limits.hit((SIGN_IN_PER_CLIENT, "ip"), (SIGN_IN_PER_ACCOUNT, "bob")).allowed
    for _ in range(3):
        assert limits.hit((SIGN_IN_PER_CLIENT, "ip"), (SIGN_IN_PER_ACCOUNT, None)).allowed
    assert not limits.hit((SIGN_IN_PER_CLIENT, "ip"), (SIGN_IN_PER_ACCOUNT, None)).allowed


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("testclient", "testclient"),
        (None, "unknown"),
    ],
)
def test_clients_are_keyed_by_address_and_ipv6_by_its_64(host: str | None, key: str) -> None:
    request = SimpleNamespace(client=SimpleNamespace(host=host) if host else None)
    assert client_key(request) == key


def test_an_app_without_injected_limits_gets_the_defaults_once() -> None:
    application = SimpleNamespace(state=SimpleNamespace())
    first = rate_limits_of(application)
    assert rate_limits_of(application) is first
    assert first.limiters[SIGN_IN_PER_CLIENT].limit == Limit(10, 60.0)
    assert first.limiters[VERIFY_PER_CLIENT].limit == Limit(30, 60.0)


# --- sign-in ------------------------------------------------------------------------------------


def test_the_eleventh_failed_sign_in_within_a_minute_is_refused_and_the_user_gets_in_later(
    client: TestClient, make_user: Callable[..., User], clock: FakeClock
) -> None:
    make_user("alice")
    # A password-spraying client: a different wrong account name on every attempt.
    for i in range(10):
        r = sign_in(client, f"guess{i}", password="wrong password here")
        assert r.status_code == 401, (i, r.status_code)
        clock.advance(1)
    refused = sign_in(client, "guess10", password="wrong password here")
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("text/html")
    assert "Too many sign-in attempts" in refused.text
    assert 'id="login-form"' in refused.text
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert "Content-Security-Policy" in refused.headers
    # The right password from the same client is refused too while the window lasts...
    assert sign_in(client, "alice").status_code == 429
    # ...and works once it has passed (the account itself was never locked).
    clock.advance(retry_after)
    ok = sign_in(client, "alice")
    assert ok.status_code == 303
    assert "cs_session" in ok.cookies or "cs_session" in client.cookies


def test_one_account_attacked_from_many_addresses_is_throttled(
    app: FastAPI, make_user: Callable[..., User], clock: FakeClock
) -> None:
    make_user("bob")
    for i in range(10):
        with TestClient(app, client=(f"198.51.100.{i}", 40000)) as attacker:
            assert sign_in(attacker, "bob", password="not bobs password").status_code == 401
    with TestClient(app, client=("198.51.100.200", 40000)) as fresh:
        assert sign_in(fresh, "bob", password="not bobs password").status_code == 429
        # Another account from the same new address is not affected.
        assert sign_in(fresh, "carol", password="whatever password").status_code == 401


def test_successful_sign_ins_do_not_use_up_the_limit(
    client: TestClient, make_user: Callable[..., User]
) -> None:
    make_user("dana")
    for _ in range(12):
        r = sign_in(client, "dana")
        assert r.status_code == 303, r.text
        client.cookies.clear()


# --- /verify ------------------------------------------------------------------------------------


def test_the_thirty_first_verify_request_within_a_minute_is_refused(
    client: TestClient, clock: FakeClock
) -> None:
    for i in range(30):
        assert client.get(f"/verify/unknown-token-{i}").status_code == 410
    refused = client.get("/verify/unknown-token-x")
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("text/html")
    assert int(refused.headers["Retry-After"]) == 60
    assert "Too many requests" in refused.text
    assert "Content-Security-Policy" in refused.headers
    # POSTs share the budget.
    assert client.post("/verify/unknown-token-x", data={"outcome": "legitimate"}).status_code == 429
    clock.advance(60)
    assert client.get("/verify/unknown-token-x").status_code == 410


def test_posts_to_one_link_are_limited_whatever_the_client(app: FastAPI, clock: FakeClock) -> None:
    token = "A" * 43
    for i in range(10):
        with TestClient(app, client=(f"192.0.2.{i}", 40000)) as c:
            r = c.post(f"/verify/{token}", data={"outcome": "legitimate"})
            assert r.status_code == 403, r.status_code  # no form check: refused, link unused
    with TestClient(app, client=("192.0.2.99", 40000)) as c:
        assert c.post(f"/verify/{token}", data={"outcome": "legitimate"}).status_code == 429
        # Reading the page is still possible: GETs are limited per client only.
        assert c.get(f"/verify/{token}").status_code == 410
        assert c.post(f"/verify/{'B' * 43}", data={"outcome": "x"}).status_code == 403
