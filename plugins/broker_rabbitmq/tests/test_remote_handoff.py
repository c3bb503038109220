"""A claim waiting in one service process is handed its tasks by a submission in
another (two brokers on one vhost, each with its own connection): the offer travels
to the processes that submit to its endpoint, the tasks to the claim's process alone,
then the word that the submission committed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from farcall_broker_rabbitmq import wakeups
from farcall_broker_rabbitmq.broker import RabbitMQBroker
from farcall_broker_rabbitmq.offers import MAX_HANDED_CHARS
from farcall_service.brokers.interface import ClaimOffer, Handed, Taken
from farcall_service.settings import Settings
from farcall_service.storage.interface import ClaimedTask, TaskOptions

PATIENCE = 10.0


@pytest.fixture
def pair(broker_url: str, tmp_path: Path) -> Iterator[tuple[RabbitMQBroker, RabbitMQBroker]]:
    here, there = (RabbitMQBroker(Settings(home=tmp_path, broker=broker_url))
                   for _ in range(2))
    try:
        here.start()
        there.start()
        deadline = time.monotonic() + PATIENCE
        while not (here.peers.any() and there.peers.any()):
            assert time.monotonic() < deadline, "the brokers never met"
            time.sleep(0.01)
        yield here, there
    finally:
        here.stop()
        there.stop()


def _handed(*ids: str, payload: str = "payload") -> Handed:
    options = TaskOptions(result_serializers=["json"], resource_specification={"cores": 2})
    return Handed([ClaimedTask(task_id, "function", payload, options, owner_id="alice")
                   for task_id in ids], "alice", "group", 1234.5)


async def _offers_heard(here: RabbitMQBroker, *endpoints: str) -> None:
    """``here`` hears the claims' offers of ``endpoints`` from now on, as a process
    that submitted to them (its first look for one found none)."""
    for endpoint in endpoints:
        assert here.tasks.take(endpoint, remote=True) is None
    await _until(lambda: all(here.interests.is_bound(f"offer.{e}") for e in endpoints))


async def _offer_taken(here: RabbitMQBroker, there: RabbitMQBroker,
                       ) -> tuple[asyncio.Future[Any], Taken]:
    """A claim of session s1 waiting in ``there``, its offer taken by ``here``."""
    await _offers_heard(here, "ep")
    woken = there.tasks.waiter("ep")
    there.tasks.offer(woken, ClaimOffer("s1", 5, 30.0))
    return woken, await _until(lambda: here.tasks.take("ep", remote=True))


async def _given_to_claim(here: RabbitMQBroker, there: RabbitMQBroker,
                          ) -> tuple[Handed, Taken]:
    """A task handed by ``here`` to a claim waiting in ``there``, and given to it."""
    woken, taken = await _offer_taken(here, there)
    delivered = here.tasks.hand(taken, _handed("t1"))
    assert delivered is not None and await asyncio.wait_for(delivered, PATIENCE)
    return await asyncio.wait_for(woken, PATIENCE), taken


async def _outcome(future: concurrent.futures.Future[Any] | None) -> Any:
    assert future is not None
    return await asyncio.wait_for(asyncio.wrap_future(future), PATIENCE)


async def _until(condition: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + PATIENCE
    while not (found := condition()):
        assert time.monotonic() < deadline, "not within PATIENCE"
        await asyncio.sleep(0.005)
    return found


def test_a_submission_hands_tasks_to_a_claim_waiting_in_the_other_process(
    pair: tuple[RabbitMQBroker, RabbitMQBroker],
) -> None:
    here, there = pair

    async def scenario() -> None:
        assert here.tasks.take("ep", remote=True) is None  # no offer anywhere yet
        woken, taken = await _offer_taken(here, there)
        assert taken.remote and taken.offer == ClaimOffer("s1", 5, 30.0)
        assert here.tasks.take("ep", remote=True) is None  # taken once
        handed = _handed("t1", "t2")
        delivered = here.tasks.hand(taken, handed)
        assert delivered is not None and await asyncio.wait_for(delivered, PATIENCE)
        # RabbitMQ has the hand; once the claim's process has read it, the offer is
        # taken there, and the claim's withdrawal finds its tasks on their way.
        await _until(lambda: not there.tasks.offering("ep"))
        assert there.tasks.withdraw(woken)
        arrived: Handed = await asyncio.wait_for(woken, PATIENCE)
        assert (arrived.tasks, arrived.owner_id, arrived.task_group_id, arrived.created_at) == (
            handed.tasks, "alice", "group", 1234.5)
        assert arrived.committed is not None and not arrived.committed.done()
        reply = here.tasks.committed(taken, True)
        assert await _outcome(arrived.committed) is True
        assert await _outcome(reply) is True  # the claim's process gave them to the claim
        there.tasks.discard("ep", woken)

    asyncio.run(scenario())


def test_the_word_that_a_hand_reached_its_claim_rides_with_the_claim_s_next_offer(
    pair: tuple[RabbitMQBroker, RabbitMQBroker], monkeypatch: pytest.MonkeyPatch,
) -> None:
    here, there = pair
    monkeypatch.setattr(wakeups, "TAKEN_RIDES", 60.0)  # alone, it would come too late

    async def scenario() -> None:
        arrived, taken = await _given_to_claim(here, there)
        reply = here.tasks.committed(taken, True)
        assert await _outcome(arrived.committed) is True
        await asyncio.sleep(0.2)
        assert reply is not None and not reply.done()  # the word waits for an offer
        # The endpoint claims again: its offer carries the word.
        again = there.tasks.waiter("ep")
        there.tasks.offer(again, ClaimOffer("s1", 4, 30.0))
        assert await _outcome(reply) is True
        assert here.offers.offered("ep")
        there.tasks.discard("ep", again)

    asyncio.run(scenario())


def test_a_process_that_stops_sends_the_words_still_waiting_for_an_offer(
    pair: tuple[RabbitMQBroker, RabbitMQBroker], monkeypatch: pytest.MonkeyPatch,
) -> None:
    here, there = pair
    monkeypatch.setattr(wakeups, "TAKEN_RIDES", 60.0)

    async def scenario() -> None:
        _arrived, taken = await _given_to_claim(here, there)
        await asyncio.get_running_loop().run_in_executor(None, there.stop)
        # Given to the claim: not "not delivered", which would release the tasks.
        assert await _outcome(here.tasks.committed(taken, True)) is True

    asyncio.run(scenario())


def test_tasks_handed_to_a_claim_that_stopped_waiting_are_released_on_both_sides(
    pair: tuple[RabbitMQBroker, RabbitMQBroker],
) -> None:
    here, there = pair

    async def scenario() -> None:
        unclaimed: asyncio.Queue[tuple[str, str, Handed]] = asyncio.Queue()
        there.tasks.on_unclaimed(lambda *args: unclaimed.put_nowait(args))
        woken, taken = await _offer_taken(here, there)
        assert not there.tasks.withdraw(woken)  # answered otherwise meanwhile
        there.tasks.discard("ep", woken)
        delivered = here.tasks.hand(taken, _handed("t1"))
        assert delivered is not None and await asyncio.wait_for(delivered, PATIENCE)
        endpoint_id, session, handed = await asyncio.wait_for(unclaimed.get(), PATIENCE)
        assert (endpoint_id, session, [t.id for t in handed.tasks]) == ("ep", "s1", ["t1"])
        # Not given to the claim: the submission releases them, and so does the
        # claim's process once it hears of the commit.
        assert await _outcome(here.tasks.committed(taken, True)) is False
        assert await _outcome(handed.committed) is True

    asyncio.run(scenario())


def test_a_hand_that_cannot_reach_its_process_is_refused(
    pair: tuple[RabbitMQBroker, RabbitMQBroker],
) -> None:
    here, there = pair

    async def scenario() -> None:
        woken, taken = await _offer_taken(here, there)
        # Too big for one message: queued instead, never sent.
        big = here.tasks.hand(taken, _handed("t1", payload="x" * (MAX_HANDED_CHARS + 1)))
        assert big is not None and await big is False
        there.tasks.discard("ep", woken)
        _woken, taken = await _offer_taken(here, there)
        await asyncio.get_running_loop().run_in_executor(None, there.stop)  # gone
        gone = here.tasks.hand(taken, _handed("t2"))
        assert gone is not None and await asyncio.wait_for(gone, PATIENCE) is False
        assert here.tasks.committed(taken, False) is None  # nothing stored: no question

    asyncio.run(scenario())


def test_an_offer_expires_and_a_process_that_says_bye_takes_its_offers_along(
    pair: tuple[RabbitMQBroker, RabbitMQBroker],
) -> None:
    here, there = pair

    async def scenario() -> None:
        await _offers_heard(here, "short", "long")
        there.tasks.offer(there.tasks.waiter("short"), ClaimOffer("s1", 1, 0.0))
        there.tasks.offer(there.tasks.waiter("long"), ClaimOffer("s1", 1, 30.0))
        await _until(lambda: here.offers.offered("long"))
        await asyncio.sleep(0.6)  # the short one's wait and grace are over
        assert here.tasks.take("short", remote=True) is None
        await asyncio.get_running_loop().run_in_executor(None, there.stop)
        await _until(lambda: not here.offers.offered("long"))

    asyncio.run(scenario())

