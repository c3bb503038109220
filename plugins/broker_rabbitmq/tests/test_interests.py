"""Which keys a process's queue is bound to (``interests.Interests``), with the
binding itself recorded instead of sent to RabbitMQ."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from farcall_broker_rabbitmq.interests import Interests


class Recorded:
    """Binds and unbinds as calls, a bind held until the test lets it go."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.bound: list[str] = []
        self.waiting: set[str] = set()
        self.release = asyncio.Event()
        self.release.set()

    async def bind(self, key: str) -> None:
        await self.release.wait()
        self.calls.append(f"bind {key}")

    async def unbind(self, key: str) -> None:
        self.calls.append(f"unbind {key}")

    def interests(self, linger: float = 60.0) -> Interests:
        return Interests(lambda work: asyncio.ensure_future(work), self.bind, self.unbind,
                         lambda key: key in self.waiting, self.bound.append, linger)


def _settle() -> Coroutine[Any, Any, None]:
    return asyncio.sleep(0.01)


def test_a_key_is_bound_once_however_often_it_is_wanted_and_said_when_bound() -> None:
    async def scenario() -> None:
        recorded = Recorded()
        recorded.release.clear()
        interests = recorded.interests()
        interests.want("results.alice")
        interests.want("results.alice")  # while binding
        await _settle()
        assert not interests.is_bound("results.alice") and recorded.bound == []
        recorded.release.set()
        await _settle()
        interests.want("results.alice")  # bound
        assert recorded.calls == ["bind results.alice"]
        assert recorded.bound == ["results.alice"] and interests.is_bound("results.alice")

    asyncio.run(scenario())


def test_a_key_nobody_wanted_for_linger_seconds_and_nothing_waits_on_is_unbound() -> None:
    async def scenario() -> None:
        recorded = Recorded()
        interests = recorded.interests(linger=0.05)
        for key in ("results.alice", "results.bob", "offer.ep"):
            interests.want(key)
        await _settle()
        recorded.waiting.add("results.bob")  # a listener still there
        await asyncio.sleep(0.06)
        interests.want("offer.ep")  # just now
        await interests.sweep()
        assert recorded.calls[3:] == ["unbind results.alice"]
        assert not interests.is_bound("results.alice")
        assert interests.is_bound("results.bob") and interests.is_bound("offer.ep")
        interests.want("results.alice")  # wanted again: bound again
        await _settle()
        assert recorded.calls[-1] == "bind results.alice"

    asyncio.run(scenario())


def test_a_failed_bind_is_tried_again_by_the_next_waiter() -> None:
    async def scenario() -> None:
        attempts: list[str] = []

        async def refuse_once(key: str) -> None:
            attempts.append(key)
            if len(attempts) == 1:
                raise ConnectionError("the broker is away")

        interests = Interests(lambda work: asyncio.ensure_future(work), refuse_once,
                              Recorded().unbind, lambda key: False, lambda key: None)
        interests.want("results.alice")
        await _settle()
        assert not interests.is_bound("results.alice")
        interests.want("results.alice")
        await _settle()
        assert interests.is_bound("results.alice") and len(attempts) == 2

    asyncio.run(scenario())
