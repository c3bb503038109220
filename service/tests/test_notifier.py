"""The notifier's hand-off: an offer is taken at most once, and never after it is withdrawn."""

from __future__ import annotations

import asyncio

from farcall_service.notifier import Notifier


def test_an_offer_is_taken_once_and_its_value_arrives() -> None:
    async def scenario() -> None:
        notifier = Notifier()
        future = notifier.waiter("ep")
        assert notifier.take("ep") is None  # registered but not offered
        notifier.offer(future, "session s1")
        taken = notifier.take("ep")
        assert taken is not None and taken.offer == "session s1"
        assert notifier.take("ep") is None
        notifier.hand(taken, ["task"])
        assert notifier.withdraw(future)  # taken first: the value must be awaited
        assert await asyncio.wait_for(future, 5) == ["task"]
        notifier.discard("ep", future)

    asyncio.run(scenario())


def test_a_withdrawn_offer_cannot_be_taken() -> None:
    async def scenario() -> None:
        notifier = Notifier()
        future = notifier.waiter("ep")
        notifier.offer(future, "s1")
        assert notifier.offering("ep")
        assert not notifier.withdraw(future)
        assert notifier.take("ep") is None
        notifier.notify("ep", "woken")  # a plain notification still reaches it
        assert await asyncio.wait_for(future, 5) == "woken"

    asyncio.run(scenario())
