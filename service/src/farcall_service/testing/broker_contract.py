"""The contract every broker plugin must meet (``farcall_service.brokers.interface``).

Use it from a plugin's tests by subclassing and naming the broker::

    from farcall_service.testing.broker_contract import BrokerContract

    class TestMyBroker(BrokerContract):
        name = "my-broker"

        @pytest.fixture
        def settings(self, tmp_path):  # when the broker needs more than SQLite
            return Settings(home=tmp_path, db_url=..., broker=self.name)

The broker is built through the installed plugins, exactly as a service builds it
(``farcall_service.app.select_broker``), so the suite also proves that the plugin's
entry point is declared and loads. Waits run on an event loop of their own; every
notification comes from another thread, as commits do.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest
from farcall.plugins import FarcallPluginManager, get_plugin_manager

from farcall_service.app import select_broker
from farcall_service.brokers.interface import Broker, BrokerError, ClaimOffer, Handed
from farcall_service.settings import Settings
from farcall_service.storage import open_store
from farcall_service.storage.interface import ClaimedTask, Store, Task, TaskOptions

#: Seconds a wake-up may take before the suite calls it lost.
PATIENCE = 10.0


def _task(task_id: str, owner_id: str = "owner") -> Task:
    return Task(task_id, owner_id, "function", "endpoint", "group", "success", 0.0, "42")


def _in_thread(fn: Callable[[], Any]) -> None:
    """``fn()`` in another thread, as a commit notifies; returns once it has run."""
    thread = threading.Thread(target=fn)
    thread.start()
    thread.join(PATIENCE)


class BrokerFixtures:
    """What every broker suite builds on: the plugins, the settings (override for the
    database or URL the broker needs), a store, and brokers made through the
    installed plugins as a service makes them."""

    name: ClassVar[str]

    @pytest.fixture
    def plugin_manager(self) -> FarcallPluginManager:
        return get_plugin_manager()

    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        return Settings(home=tmp_path, broker=self.name)

    @pytest.fixture
    def store(self, settings: Settings) -> Iterator[Store]:
        store = open_store(settings.database_url)
        yield store
        store.close()

    @pytest.fixture
    def make_broker(self, plugin_manager: FarcallPluginManager, settings: Settings,
                    store: Store) -> Iterator[Callable[..., Broker]]:
        """Builds brokers for one more service process on the same database (not
        started; ``settings`` changed by keywords); stops them all at the end."""
        built: list[Broker] = []

        def make(**changes: Any) -> Broker:
            broker = select_broker(plugin_manager, replace(settings, **changes), store)
            built.append(broker)
            return broker

        yield make
        for broker in built:
            broker.stop()


class BrokerContract(BrokerFixtures):
    """Subclass, set ``name``; override ``settings`` for the database the broker needs."""

    #: Rounds of the race between a notification and a registration.
    race_rounds: ClassVar[int] = 2000

    @pytest.fixture
    def broker(self, make_broker: Callable[[], Broker]) -> Broker:
        broker = make_broker()
        broker.start()
        return broker

    # -- tasks to endpoints ----------------------------------------------------------

    def test_a_claim_is_woken_when_tasks_are_queued(self, broker: Broker) -> None:
        async def scenario() -> None:
            claims = broker.tasks
            before = claims.notifications("ep")
            woken = claims.waiter("ep")
            other = claims.waiter("other-ep")
            assert claims.has_waiters("ep") and "ep" in claims.waiting_keys()
            _in_thread(lambda: claims.notify("ep"))
            await asyncio.wait_for(woken, PATIENCE)
            assert claims.notifications("ep") > before
            assert not other.done()  # only the endpoint notified
            claims.discard("ep", woken)
            claims.discard("other-ep", other)
            assert not claims.has_waiters("ep") and "ep" not in claims.waiting_keys()

        asyncio.run(scenario())

    def test_an_offered_claim_is_taken_once_and_handed_its_tasks(self, broker: Broker) -> None:
        async def scenario() -> None:
            claims = broker.tasks
            woken = claims.waiter("ep")
            assert claims.take("ep") is None  # waiting, not offered
            claims.offer(woken, ClaimOffer("s1", 5))
            assert claims.offering("ep")
            assert claims.take("ep", session="s2") is None  # another session's offer
            taken = claims.take("ep", session="s1")
            assert taken is not None and taken.offer == ClaimOffer("s1", 5)
            assert not taken.remote and taken.endpoint_id == "ep"
            assert claims.take("ep") is None and not claims.offering("ep")
            handed = Handed([ClaimedTask("t1", "f1", "payload", TaskOptions())],
                            "alice", "group", 1.0)
            returned: list[Any] = []
            _in_thread(lambda: returned.append(claims.hand(taken, handed)))
            assert returned == [None]  # a claim here: nothing to wait for
            assert claims.withdraw(woken)  # taken first: its tasks are on their way
            assert await asyncio.wait_for(woken, PATIENCE) == handed
            claims.discard("ep", woken)

        asyncio.run(scenario())

    def test_a_withdrawn_offer_cannot_be_taken(self, broker: Broker) -> None:
        async def scenario() -> None:
            claims = broker.tasks
            woken = claims.waiter("ep")
            claims.offer(woken, ClaimOffer("s1", 5))
            assert not claims.withdraw(woken)
            assert claims.take("ep") is None
            _in_thread(lambda: claims.notify("ep"))  # a plain wake-up still reaches it
            await asyncio.wait_for(woken, PATIENCE)
            claims.discard("ep", woken)

        asyncio.run(scenario())

    # -- results to whoever waits ----------------------------------------------------

    def test_results_reach_a_waiter_and_a_listener_registered_before(
        self, broker: Broker
    ) -> None:
        async def scenario() -> None:
            results = broker.results
            heard: list[Any] = []
            heard_twice = asyncio.Event()

            def listener(tasks: list[Task] | None) -> None:
                heard.append(tasks)
                if len(heard) == 2:
                    heard_twice.set()

            results.listen("alice", listener)
            assert results.listening("alice") == 1
            woken = results.waiter("alice")
            bobs = results.waiter("bob")
            done = [_task("t1", "alice")]
            _in_thread(lambda: results.notify("alice", done))
            assert [t.id for t in await asyncio.wait_for(woken, PATIENCE)] == ["t1"]
            _in_thread(lambda: results.notify("alice"))  # look again, in the database
            await asyncio.wait_for(heard_twice.wait(), PATIENCE)
            assert [t.id for t in heard[0]] == ["t1"] and heard[1] is None
            assert not bobs.done()
            results.discard("alice", woken)
            results.discard("bob", bobs)
            results.unlisten("alice", listener)
            assert results.listening("alice") == 0
            _in_thread(lambda: results.notify("alice", done))
            await asyncio.sleep(0.1)
            assert len(heard) == 2  # not called once it stopped listening

        asyncio.run(scenario())

    def test_no_wake_up_is_lost_when_a_notification_races_the_registration(
        self, broker: Broker
    ) -> None:
        """Register, then look: whatever was published after the look is notified
        after the registration, and must wake the waiter."""
        rounds = self.race_rounds

        async def scenario(channel: Any, value: Any) -> None:
            published = [-1]
            go = threading.Event()

            def publish() -> None:
                go.wait(PATIENCE)
                for i in range(rounds):
                    published[0] = i
                    channel.notify("key", *value)

            publisher = threading.Thread(target=publish)
            publisher.start()
            go.set()
            try:
                while True:
                    woken = channel.waiter("key")
                    try:
                        seen = published[0]
                        if seen == rounds - 1:
                            return
                        await asyncio.wait_for(woken, PATIENCE)  # more is on its way
                    finally:
                        channel.discard("key", woken)
            finally:
                publisher.join(PATIENCE)

        asyncio.run(scenario(broker.tasks, ()))
        asyncio.run(scenario(broker.results, ([_task("t")],)))

    # -- the broker's own life -------------------------------------------------------

    def test_start_is_idempotent(self, broker: Broker) -> None:
        broker.start()  # started by the fixture already: a second start changes nothing

        async def scenario() -> None:
            heard: list[Any] = []
            called = asyncio.Event()

            def listener(tasks: list[Task] | None) -> None:
                heard.append(tasks)
                called.set()

            broker.results.listen("alice", listener)
            woken = broker.tasks.waiter("ep")
            _in_thread(lambda: broker.tasks.notify("ep"))
            await asyncio.wait_for(woken, PATIENCE)
            broker.tasks.discard("ep", woken)
            _in_thread(lambda: broker.results.notify("alice"))
            await asyncio.wait_for(called.wait(), PATIENCE)
            await asyncio.sleep(0.1)
            assert heard == [None]  # heard once, not once per start
            broker.results.unlisten("alice", listener)

        asyncio.run(scenario())

    def test_stop_releases_everything(self, make_broker: Callable[[], Broker]) -> None:
        broker = make_broker()
        broker.start()
        heard: list[Any] = []

        async def scenario() -> None:
            claim = broker.tasks.waiter("ep")
            broker.tasks.offer(claim, ClaimOffer("s1", 1))
            wait = broker.results.waiter("alice")
            broker.results.listen("alice", heard.append)
            _in_thread(broker.stop)
            assert await asyncio.wait_for(claim, PATIENCE) is None
            assert await asyncio.wait_for(wait, PATIENCE) is None
            assert broker.results.listening("alice") == 0
            assert broker.tasks.take("ep") is None
            broker.tasks.discard("ep", claim)
            broker.results.discard("alice", wait)

        asyncio.run(scenario())
        after = make_broker()  # whatever the first held is free again
        after.start()
        after.stop()

    def test_one_process_holds_the_database_when_the_broker_says_so(
        self, broker: Broker, make_broker: Callable[[], Broker]
    ) -> None:
        if not broker.single_process:
            pytest.skip(f"the {self.name!r} broker serves several processes per database")
        second = make_broker()
        with pytest.raises(BrokerError, match="another farcall service holds the database"):
            second.start()
        broker.stop()
        second.start()
