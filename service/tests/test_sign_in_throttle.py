"""The sign-in throttle: per user (name or id), per address, global; waits that decay;
bounded tables; a cap on concurrent password hashes; old hashes upgraded."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest
from farcall_service import admin
from farcall_service.app import create_app
from farcall_service.context import ServiceContext
from farcall_service.oauth import passwords
from farcall_service.oauth.throttle import HashSlots, SignInThrottle, address_key
from farcall_service.settings import Settings
from farcall_testkit.service import pkce_pair, sign_in
from fastapi.testclient import TestClient

AUTH = "http://testserver/auth"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(clock: Clock) -> SignInThrottle:
    return SignInThrottle(clock=clock)


def test_a_spray_across_names_from_one_address_is_throttled(throttle: SignInThrottle) -> None:
    allowed = 0
    for n in range(100):
        if throttle.check(f"name:user{n}", "203.0.113.5") is None:
            throttle.failed(f"name:user{n}", "203.0.113.5")
            allowed += 1
    assert allowed == 20
    refusal = throttle.check("name:another", "203.0.113.5")
    assert refusal is not None and "from your address" in refusal.message
    assert throttle.check("name:another", "203.0.113.6") is None


def test_guesses_from_many_addresses_cannot_lock_the_user_out(
        throttle: SignInThrottle, clock: Clock) -> None:
    for n in range(500):
        address = f"198.51.{n // 250}.{n % 250}"
        if throttle.check("user:alice", address) is None:
            throttle.failed("user:alice", address)
        clock.now += 0.25  # under the global brake's rate
    # The attackers' addresses are refused for alice...
    refusal = throttle.check("user:alice", "198.51.1.249")
    assert refusal is not None and "for this user" in refusal.message
    assert refusal.retry_after <= 60
    # ...while alice, from an address that has not been failing, may still try.
    assert throttle.check("user:alice", "192.0.2.10") is None
    # And however long the attack went on, one refill later the attackers may try again.
    clock.now += 60
    assert throttle.check("user:alice", "198.51.1.249") is None


def test_the_lockout_of_one_address_decays(throttle: SignInThrottle, clock: Clock) -> None:
    for _ in range(1000):
        if throttle.check("user:alice", "203.0.113.9") is None:
            throttle.failed("user:alice", "203.0.113.9")
        clock.now += 0.01
    refusal = throttle.check("user:alice", "203.0.113.9")
    assert refusal is not None and refusal.retry_after <= 60
    clock.now += 60
    assert throttle.check("user:alice", "203.0.113.9") is None


def test_the_global_brake_is_short(clock: Clock) -> None:
    throttle = SignInThrottle(clock=clock, global_burst=50, global_rate=5.0)
    for n in range(60):
        throttle.failed(f"name:u{n}", f"10.0.{n}.1")  # fifty addresses, one failure each
    refusal = throttle.check("user:alice", "192.0.2.10")
    assert refusal is not None and "on this service" in refusal.message
    assert refusal.retry_after <= 1
    clock.now += 1
    assert throttle.check("user:alice", "192.0.2.10") is None


def test_tables_are_bounded_and_full_buckets_dropped(clock: Clock) -> None:
    throttle = SignInThrottle(clock=clock, max_entries=100, global_burst=10**6)
    for n in range(1000):
        throttle.failed(f"name:u{n}", f"10.{n // 250}.{n % 250}.1")
    assert max(throttle.sizes().values()) == 100
    clock.now += 3600
    for n in range(1000, 1100):  # entries that refilled are dropped when seen again
        throttle.check(f"name:u{n - 1000}", f"10.{(n - 1000) // 250}.{n % 250}.1")
    assert all(size <= 100 for size in throttle.sizes().values())


def test_ipv6_addresses_count_by_their_64() -> None:
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:2") == "2001:db8::/64"
    assert address_key("2001:db8:0:1::1") != address_key("2001:db8::1")
    assert address_key("127.0.0.2") == "127.0.0.2"


def test_hash_slots_turn_the_excess_away() -> None:
    async def run() -> list[bool]:
        slots = HashSlots(2, wait=0.2, max_waiting=1)
        outcomes: list[bool] = []

        async def one() -> None:
            async with slots.slot() as had:
                outcomes.append(had)
                if had:
                    await asyncio.sleep(0.5)

        await asyncio.gather(*(one() for _ in range(5)))
        return outcomes

    outcomes = asyncio.run(run())
    assert sorted(outcomes) == [False, False, False, True, True]


def test_old_hashes_verify_and_are_upgraded() -> None:
    old = passwords._scrypt("pw", b"s" * 16, 2**14, 8, 1)
    stored = "$".join(["scrypt", str(2**14), "8", "1", passwords._b64(b"s" * 16),
                       passwords._b64(old)])
    assert passwords.verify_password("pw", stored)
    assert passwords.needs_rehash(stored)
    assert passwords.N >= 2**15
    assert not passwords.needs_rehash(passwords.hash_password("pw"))
    huge = stored.replace(str(2**14), str(2**30), 1)
    assert not passwords.verify_password("pw", huge)


# -- over HTTP ----------------------------------------------------------------------------


@pytest.fixture
def app_ctx(settings: Settings) -> Iterator[tuple[ServiceContext, object]]:
    app = create_app(settings)
    ctx: ServiceContext = app.state.farcall
    admin.add_user(ctx.store, "alice", "correct horse")
    yield ctx, app


def _client(app: object, address: str) -> TestClient:
    return TestClient(app, raise_server_exceptions=False, client=(address, 40000))  # type: ignore[arg-type]


def _try(http: TestClient, name: str, password: str):  # type: ignore[no-untyped-def]
    _verifier, challenge = pkce_pair()
    return sign_in(http, AUTH, name, password, challenge=challenge)


def test_name_and_id_are_one_key_and_a_clean_address_still_signs_in(app_ctx) -> None:  # type: ignore[no-untyped-def]
    ctx, app = app_ctx
    alice_id = ctx.store.get_user("alice").id
    alice = _client(app, "192.0.2.44")  # another address, on the attacker's lifespan
    with _client(app, "203.0.113.7") as attacker:
        answers = [_try(attacker, "alice" if n % 2 else alice_id, f"guess {n}")
                   for n in range(11)]
        assert [a.status_code for a in answers[:10]] == [401] * 10
        assert answers[10].status_code == 429, answers[10].text
        assert "for this user" in answers[10].text
        assert int(answers[10].headers["retry-after"]) <= 60
        assert _try(alice, "alice", "correct horse").status_code == 303


def test_a_spray_over_http_is_refused_per_address(app_ctx) -> None:  # type: ignore[no-untyped-def]
    ctx, app = app_ctx
    with _client(app, "203.0.113.8") as attacker:
        codes = [_try(attacker, f"user{n}", "Winter2026!").status_code for n in range(22)]
    assert codes[:20] == [401] * 20 and codes[20:] == [429, 429], codes


def test_a_sign_in_upgrades_an_old_hash(app_ctx) -> None:  # type: ignore[no-untyped-def]
    ctx, app = app_ctx
    alice = ctx.store.get_user("alice")
    salt = b"t" * 16
    old = "$".join(["scrypt", str(2**14), "8", "1", passwords._b64(salt),
                    passwords._b64(passwords._scrypt("correct horse", salt, 2**14, 8, 1))])
    ctx.store.set_password_hash(alice.id, old)
    with _client(app, "192.0.2.45") as http:
        assert _try(http, "alice", "correct horse").status_code == 303
    upgraded = ctx.store.get_password_hash(alice.id)
    assert upgraded != old and re.match(rf"scrypt\${passwords.N}\$", upgraded or "")
    assert passwords.verify_password("correct horse", upgraded)
