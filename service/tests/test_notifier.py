"""The notifier's hand-off: an offer is taken at most once, and never after it is withdrawn."""

from __future__ import annotations

import asyncio

from farcall_service.brokers.interface import ClaimOffer
from farcall_service.brokers.notifier import Notifier
from farcall_service.dispatching import EmptyQueues


def test_an_offer_is_taken_once_and_its_value_arrives() -> None:
    async def scenario() -> None:
        notifier = Notifier()
        future = notifier.waiter("ep")
        assert notifier.take("ep") is None  # registered but not offered
        notifier.offer(future, ClaimOffer("s1", 10))
        taken = notifier.take("ep")
        assert taken is not None and taken.offer == ClaimOffer("s1", 10)
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
        notifier.offer(future, ClaimOffer("s1", 10))
        assert notifier.offering("ep")
        assert not notifier.withdraw(future)
        assert notifier.take("ep") is None
        notifier.notify("ep", "woken")  # a plain notification still reaches it
        assert await asyncio.wait_for(future, 5) == "woken"

    asyncio.run(scenario())


def test_an_empty_queue_is_remembered_until_the_endpoint_is_notified() -> None:
    notifier = Notifier()
    queues = EmptyQueues(notifier, ttl=60)
    assert not queues.known_empty("ep", "s1")
    queues.found_empty("ep", "s1", notifier.notifications("ep"))
    assert queues.known_empty("ep", "s1")
    assert not queues.known_empty("ep", "s2")  # another session reads: it takes over
    assert not queues.known_empty("other", "s1")
    notifier.notify("ep")  # something was queued
    assert not queues.known_empty("ep", "s1")


def test_a_notification_during_the_read_voids_what_it_found() -> None:
    notifier = Notifier()
    queues = EmptyQueues(notifier, ttl=60)
    seen = notifier.notifications("ep")  # taken before reading the database
    notifier.notify("ep")  # a submission commits while the claim reads
    queues.found_empty("ep", "s1", seen)
    assert not queues.known_empty("ep", "s1")


def test_an_empty_queue_is_forgotten_after_its_ttl() -> None:
    notifier = Notifier()
    queues = EmptyQueues(notifier, ttl=0.0)
    queues.found_empty("ep", "s1", notifier.notifications("ep"))
    assert not queues.known_empty("ep", "s1")
