"""Unknown bearer tokens cost little: they are remembered apart from known ones (a flood
cannot push known tokens out of the cache) and paced per client address."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from farcall_service import admin
from farcall_service.app import create_app
from farcall_service.auth import resolve_token
from farcall_service.cache import MISSING, TTLCache
from farcall_service.context import UNKNOWN_TOKENS_BURST, ServiceContext
from farcall_service.errors import ApiError
from farcall_service.limits import RateLimiter
from farcall_service.settings import Settings
from farcall_service.tokens import hash_token
from fastapi.testclient import TestClient


@pytest.fixture
def cached_app(tmp_path: Path) -> Iterator[tuple[TestClient, ServiceContext, str]]:
    app = create_app(Settings(home=tmp_path, cache_ttl=300.0, rate_limit=0))
    ctx: ServiceContext = app.state.farcall
    admin.add_user(ctx.store, "alice")
    token = admin.create_token(ctx.store, "alice")
    with TestClient(app, raise_server_exceptions=False, client=("203.0.113.1", 1)) as client:
        yield client, ctx, token


def _counting(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    original = ctx.store.user_for_token

    def counted(token_hash: str):  # type: ignore[no-untyped-def]
        calls.append(token_hash)
        return original(token_hash)

    monkeypatch.setattr(ctx.store, "user_for_token", counted)
    return calls


def test_a_flood_of_unknown_tokens_does_not_flush_known_ones(
        cached_app: tuple[TestClient, ServiceContext, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    client, ctx, token = cached_app
    ctx.tokens.max_entries, ctx.bad_tokens.max_entries = 500, 100  # as 10,000 and 4,096
    ok = client.get("/v2/endpoints", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    calls = _counting(ctx, monkeypatch)
    for n in range(ctx.tokens.max_entries + 500):
        with pytest.raises(ApiError):
            resolve_token(ctx, secrets.token_urlsafe(32), address=f"10.0.{n // 250}.{n % 250}")
    assert len(ctx.bad_tokens) <= ctx.bad_tokens.max_entries
    assert ctx.tokens.get(hash_token(token)) is not MISSING
    calls.clear()
    assert resolve_token(ctx, token).name == "alice"
    assert calls == [], "the known token was looked up again"


def test_unknown_tokens_are_paced_per_address(
        cached_app: tuple[TestClient, ServiceContext, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    client, ctx, token = cached_app
    assert client.get("/v2/endpoints",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 200
    calls = _counting(ctx, monkeypatch)
    answers = [client.get("/v2/endpoints",
                          headers={"Authorization": f"Bearer {secrets.token_urlsafe(32)}"})
               for _ in range(UNKNOWN_TOKENS_BURST + 5)]
    codes = [a.status_code for a in answers]
    assert codes[:UNKNOWN_TOKENS_BURST] == [401] * UNKNOWN_TOKENS_BURST
    assert codes[UNKNOWN_TOKENS_BURST:] == [429] * 5, codes
    assert answers[-1].json()["code"] == "RATE_LIMITED"
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert len(calls) == UNKNOWN_TOKENS_BURST, "refused tokens reached the database"
    # A known token, cached, still works from that address; other addresses are not slowed.
    assert client.get("/v2/endpoints",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 200
    other = TestClient(client.app, raise_server_exceptions=False, client=("198.51.100.9", 1))
    refused = other.get("/v2/endpoints",
                        headers={"Authorization": f"Bearer {secrets.token_urlsafe(32)}"})
    assert refused.status_code == 401


def test_a_full_cache_evicts_its_oldest_not_everything() -> None:
    cache: TTLCache[str, int] = TTLCache(60.0, max_entries=3)
    for n in range(5):
        cache.put(f"k{n}", n)
    assert len(cache) == 3
    assert cache.get("k0") is MISSING and cache.get("k4") == 4 and cache.get("k2") == 2


def test_the_rate_limiter_table_is_bounded() -> None:
    limiter = RateLimiter(10, 1.0, max_entries=100)
    for n in range(1000):
        limiter.check(f"user{n}")
    assert len(limiter) <= 100
