"""The contract of a broker's result streams (``Broker.streams``,
``farcall_service.brokers.interface.ResultStreams``), as the official Executor uses
them: it asks the service for ``access`` (``GET /v2/get_amqp_result_connection_url``),
connects to the AMQP URL it is given and consumes ``{queue_prefix}{task_group_id}``,
reading messagepack ``result`` messages.

Use it from a broker plugin's tests by subclassing and giving the settings::

    from farcall_service.testing.stream_contract import StreamContract

    class TestMyStreams(StreamContract):
        name = "my-broker"

        @pytest.fixture
        def settings(self, tmp_path):
            return Settings(home=tmp_path, broker="amqp://...")

A broker whose ``streams`` is None skips the suite, saying so. The consumer side is
aio-pika (the suite skips without it): a client of its own, not the broker's.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import pytest
from farcall.plugins import FarcallPluginManager, get_plugin_manager

from farcall_service.app import select_broker
from farcall_service.brokers.interface import Broker, ResultStreams
from farcall_service.settings import Settings
from farcall_service.storage import open_store
from farcall_service.storage.interface import Store, Task

#: Seconds a message, a refusal or an expiry may take.
PATIENCE = 10.0
TRACEBACK = 'Traceback (most recent call last):\n  File "<x>", line 1\nValueError: no'


def unpack_result(body: bytes) -> dict[str, Any]:
    """A messagepack (protocol v1) ``result`` message's data, checked as
    ``globus_compute_common.messagepack`` loads it: one version byte, one line of JSON
    with exactly ``message_type`` and ``data``, the fields ``Result`` declares."""
    assert body[:1] == b"\x01", f"not messagepack protocol 1: {body[:20]!r}"
    text = body[1:].decode()
    assert "\n" not in text, "a message is one line"
    envelope = json.loads(text)
    assert set(envelope) == {"message_type", "data"} and envelope["message_type"] == "result"
    data = envelope["data"]
    assert isinstance(data, dict)
    uuid.UUID(data["task_id"])
    assert isinstance(data["data"], str)
    assert data.get("details") is None or isinstance(data["details"], dict)
    error = data.get("error_details")
    if error is not None:
        assert isinstance(error["code"], str) and isinstance(error["user_message"], str)
    assert data.get("task_statuses") is None or isinstance(data["task_statuses"], list)
    return data


def ended(owner_id: str, group_id: str, *, failed: bool = False) -> Task:
    """A task that has ended (a success with result ``"42"``, or a failure)."""
    if failed:
        return Task(str(uuid.uuid4()), owner_id, "function", "endpoint", group_id, "failed",
                    time.time(), exception=TRACEBACK, completion_t=time.time())
    return Task(str(uuid.uuid4()), owner_id, "function", "endpoint", group_id, "success",
                time.time(), result="42", details={"os": "linux"}, completion_t=time.time())


async def consume(url: str, queue: str, count: int) -> list[Any]:
    """The next ``count`` messages of ``queue``, consumed and acknowledged with the
    credentials of ``url`` as the official Executor does (no declaration)."""
    import aio_pika

    connection = await aio_pika.connect(url, timeout=PATIENCE)
    async with connection:
        channel = await connection.channel()
        source = await channel.get_queue(queue, ensure=False)
        received: list[Any] = []
        async with source.iterator() as messages:
            async for message in messages:
                async with message.process():
                    received.append(message)
                if len(received) == count:
                    break
        return received


class StreamContract:
    """Subclass, set ``name``; override ``settings`` for the broker's URL."""

    name: ClassVar[str]
    #: Queue expiry (seconds) of the expiry test; the broker may round it up.
    short_expiry: ClassVar[float] = 1.0

    @pytest.fixture(autouse=True)
    def _client(self) -> None:
        pytest.importorskip("aio_pika", reason="the stream contract consumes with aio-pika")

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
    def make_streams(self, plugin_manager: FarcallPluginManager, settings: Settings,
                     store: Store) -> Iterator[Callable[..., ResultStreams]]:
        """Starts a broker (``settings`` changed by keywords) and gives its streams;
        stops them all at the end."""
        built: list[Broker] = []

        def make(**changes: Any) -> ResultStreams:
            broker = select_broker(plugin_manager, replace(settings, **changes), store)
            built.append(broker)
            if broker.streams is None:
                pytest.skip(f"the {self.name!r} broker has no result streams")
            broker.start()
            return broker.streams

        yield make
        for broker in built:
            broker.stop()

    @pytest.fixture
    def streams(self, make_streams: Callable[..., ResultStreams]) -> ResultStreams:
        return make_streams()

    # -- queues and results ----------------------------------------------------------

    def test_a_published_result_reaches_the_owners_consumer_as_the_executor_reads_it(
        self, streams: ResultStreams
    ) -> None:
        owner, group = str(uuid.uuid4()), str(uuid.uuid4())

        async def scenario() -> None:
            await streams.open(owner, group)
            await streams.open(owner, group)  # idempotent: a reload opens it again
            access = await streams.access(owner)
            assert access.queue_prefix == f"farcall.results.{owner}."
            success, failure = ended(owner, group), ended(owner, group, failed=True)
            await streams.publish([success, failure])
            received = await asyncio.wait_for(
                consume(access.connection_url, access.queue_prefix + group, 2), PATIENCE)
            by_id = {unpack_result(m.body)["task_id"]: m for m in received}
            assert set(by_id) == {success.id, failure.id}

            ok = unpack_result(by_id[success.id].body)
            assert ok["data"] == "42" and ok["error_details"] is None
            assert ok["details"] == {"os": "linux"}
            bad = unpack_result(by_id[failure.id].body)
            assert bad["data"] == TRACEBACK
            assert bad["error_details"]["code"] == "RemoteExecutionError"
            assert "ValueError: no" in bad["error_details"]["user_message"]
            for message in received:
                assert message.delivery_mode == 2  # persistent
                assert message.timestamp is not None  # the Executor reports it on failure

        asyncio.run(scenario())

    def test_results_published_before_the_consumer_connects_wait_in_the_queue(
        self, streams: ResultStreams
    ) -> None:
        owner, group = str(uuid.uuid4()), str(uuid.uuid4())

        async def scenario() -> None:
            await streams.open(owner, group)
            tasks = [ended(owner, group) for _ in range(20)]
            await streams.publish(tasks)
            access = await streams.access(owner)
            received = await asyncio.wait_for(
                consume(access.connection_url, access.queue_prefix + group, 20), PATIENCE)
            assert {unpack_result(m.body)["task_id"] for m in received} == {t.id for t in tasks}

        asyncio.run(scenario())

    # -- credentials -----------------------------------------------------------------

    def test_access_gives_the_same_url_every_time_and_one_per_user(
        self, streams: ResultStreams
    ) -> None:
        alice, bob = str(uuid.uuid4()), str(uuid.uuid4())

        async def scenario() -> None:
            first, again = await streams.access(alice), await streams.access(alice)
            assert first == again
            other = await streams.access(bob)
            assert other.connection_url != first.connection_url
            assert other.queue_prefix == f"farcall.results.{bob}."

        asyncio.run(scenario())

    def test_one_users_credentials_cannot_read_or_touch_another_users_queues(
        self, streams: ResultStreams
    ) -> None:
        import aio_pika

        alice, bob, group = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())

        async def refused(url: str, act: Callable[[Any], Any]) -> None:
            connection = await aio_pika.connect(url, timeout=PATIENCE)
            async with connection:
                channel = await connection.channel()
                with pytest.raises(Exception, match="ACCESS_REFUSED"):
                    await asyncio.wait_for(act(channel), PATIENCE)

        async def scenario() -> None:
            await streams.open(bob, group)
            bobs_queue = f"farcall.results.{bob}.{group}"
            alices = (await streams.access(alice)).connection_url
            bobs = await streams.access(bob)

            async def ignore(message: Any) -> None:
                pass

            async def read(channel: Any) -> None:
                queue = await channel.get_queue(bobs_queue, ensure=False)
                await queue.consume(ignore)

            async def declare_own(channel: Any) -> None:
                await channel.declare_queue(f"farcall.results.{alice}.mine")

            async def write(channel: Any) -> None:
                await channel.default_exchange.publish(
                    aio_pika.Message(b"forged"), routing_key=bobs_queue)

            await refused(alices, read)
            await refused(alices, declare_own)
            await refused(alices, write)
            await refused(bobs.connection_url, write)  # nobody writes but the service
            # Bob's queue holds nothing forged: the next message is the service's.
            task = ended(bob, group)
            await streams.publish([task])
            received = await asyncio.wait_for(
                consume(bobs.connection_url, bobs_queue, 1), PATIENCE)
            assert unpack_result(received[0].body)["task_id"] == task.id

        asyncio.run(scenario())

    def test_a_forgotten_user_cannot_connect_and_their_queues_are_gone(
        self, streams: ResultStreams
    ) -> None:
        import aio_pika

        owner, group = str(uuid.uuid4()), str(uuid.uuid4())

        async def scenario() -> None:
            await streams.open(owner, group)
            access = await streams.access(owner)
            connection = await aio_pika.connect(access.connection_url, timeout=PATIENCE)
            await connection.close()
            await streams.forget(owner)
            with pytest.raises(Exception, match="(?i)ACCESS_REFUSED|authentication|refused"):
                await aio_pika.connect(access.connection_url, timeout=PATIENCE)
            # Their queues went too: credentials made again find none.
            again = await streams.access(owner)
            connection = await aio_pika.connect(again.connection_url, timeout=PATIENCE)
            async with connection:
                channel = await connection.channel()
                with pytest.raises(Exception, match="NOT_FOUND"):
                    await channel.get_queue(again.queue_prefix + group, ensure=True)

        asyncio.run(scenario())

    # -- expiry ----------------------------------------------------------------------

    def test_a_queue_unused_past_its_expiry_is_gone(
        self, make_streams: Callable[..., ResultStreams]
    ) -> None:
        import aio_pika

        streams = make_streams(stream_queue_expiry=self.short_expiry)
        owner, group = str(uuid.uuid4()), str(uuid.uuid4())

        async def exists(url: str, queue: str) -> bool:
            connection = await aio_pika.connect(url, timeout=PATIENCE)
            async with connection:
                channel = await connection.channel()
                try:
                    await channel.get_queue(queue, ensure=True)  # passive declare
                except Exception as exc:
                    assert "NOT_FOUND" in str(exc), exc
                    return False
                return True

        async def scenario() -> None:
            await streams.open(owner, group)
            access = await streams.access(owner)
            assert await exists(access.connection_url, access.queue_prefix + group)
            deadline = time.monotonic() + self.short_expiry + PATIENCE
            while time.monotonic() < deadline:
                await asyncio.sleep(self.short_expiry)
                if not await exists(access.connection_url, access.queue_prefix + group):
                    return
            pytest.fail(f"the queue outlived its expiry of {self.short_expiry} s")

        asyncio.run(scenario())
