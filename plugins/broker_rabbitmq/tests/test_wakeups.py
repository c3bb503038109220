"""Two service processes on one vhost (two brokers, each with its own connection and
origin): what one notifies wakes the other, and keeps doing so after RabbitMQ drops
every connection; a process alone publishes no wake-ups."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from farcall_broker_rabbitmq.broker import RabbitMQBroker
from farcall_service.brokers.interface import BrokerError
from farcall_service.settings import Settings
from farcall_service.storage.interface import Task

PATIENCE = 10.0


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[Callable[[str], RabbitMQBroker]]:
    built: list[RabbitMQBroker] = []

    def make(url: str) -> RabbitMQBroker:
        broker = RabbitMQBroker(Settings(home=tmp_path, broker=url))
        built.append(broker)
        return broker

    yield make
    for broker in built:
        broker.stop()


@pytest.fixture
def pair(broker_url: str,
         make_broker: Callable[[str], RabbitMQBroker]) -> tuple[RabbitMQBroker, RabbitMQBroker]:
    first, second = make_broker(broker_url), make_broker(broker_url)
    first.start()
    second.start()
    _until(lambda: first.peers.any() and second.peers.any(), "the brokers never met")
    return first, second


def _until(condition: Callable[[], bool], failure: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, failure
        time.sleep(0.01)


def test_a_process_alone_publishes_no_wake_ups_and_one_that_says_bye_is_forgotten(
    broker_url: str, make_broker: Callable[[str], RabbitMQBroker],
) -> None:
    """What goes over ``farcall.wakeups``, seen by a queue bound to it as another
    process's would be, but which says no ``hello``."""
    import aio_pika
    from farcall_broker_rabbitmq.wakeups import EXCHANGE

    async def scenario() -> list[str]:
        seen: list[str] = []
        connection = await aio_pika.connect(broker_url)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(
                EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(exchange)

            async def heard(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                seen.append(json.loads(message.body)["channel"])

            await queue.consume(heard, no_ack=True)
            alone = make_broker(broker_url)
            alone.start()
            await _wait_for(lambda: "hello" in seen)
            _from_thread(lambda: alone.results.notify("alice", [_task("t1")]))
            _from_thread(lambda: alone.tasks.notify("ep"))
            await asyncio.sleep(0.3)
            assert seen == ["hello"], "a process alone published wake-ups"
            other = make_broker(broker_url)
            other.start()
            await _wait_for(lambda: alone.peers.any() and other.peers.any())
            _from_thread(lambda: alone.tasks.notify("ep"))
            await _wait_for(lambda: "tasks" in seen)
            _from_thread(other.stop)
            await _wait_for(lambda: "bye" in seen)
            await _wait_for(lambda: not alone.peers.any())  # at once, not in 15 s
            seen.clear()
            _from_thread(lambda: alone.tasks.notify("ep"))
            await asyncio.sleep(0.3)
            return seen

    assert asyncio.run(scenario()) == []


async def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, "not within PATIENCE"
        await asyncio.sleep(0.01)


async def _waited_on(broker: RabbitMQBroker, owner: str) -> None:
    """What a first wait for ``owner``'s results in ``broker`` sees: its queue is
    bound to the others' results of ``owner``, then the wait is told "look again"."""
    first = broker.results.waiter(owner)
    await _wait_for(lambda: broker.interests.is_bound(f"results.{owner}"))
    assert await asyncio.wait_for(first, PATIENCE) is None
    broker.results.discard(owner, first)


async def _listening(broker: RabbitMQBroker, owner: str) -> asyncio.Queue[list[Task] | None]:
    """What ``broker``'s listener of ``owner``'s results hears from now on, once the
    others' results of ``owner`` come there (and the "look again" that says so)."""
    heard: asyncio.Queue[list[Task] | None] = asyncio.Queue()
    broker.results.listen(owner, heard.put_nowait)
    await _wait_for(lambda: broker.interests.is_bound(f"results.{owner}"))
    await asyncio.sleep(0.05)
    while not heard.empty():
        assert heard.get_nowait() is None
    return heard


def _task(task_id: str, result: str = "42") -> Task:
    return Task(task_id, "alice", "function", "endpoint", "group", "success", 1.5, result,
                details={"os": "linux"}, completion_t=2.25)


def _from_thread(fn: Callable[[], Any]) -> None:
    thread = threading.Thread(target=fn)
    thread.start()
    thread.join(PATIENCE)


def test_a_tasks_notification_in_one_process_wakes_a_claim_in_the_other(
    pair: tuple[RabbitMQBroker, RabbitMQBroker],
) -> None:
    here, there = pair

    async def scenario() -> None:
        before = there.tasks.notifications("ep")
        woken, mine = there.tasks.waiter("ep"), here.tasks.waiter("ep")
        other = there.tasks.waiter("other-ep")
        _from_thread(lambda: here.tasks.notify("ep"))
        assert mine.done() or await asyncio.wait_for(mine, PATIENCE) is None  # at once
        await asyncio.wait_for(woken, PATIENCE)
        assert there.tasks.notifications("ep") == before + 1  # counted where it arrived
        await asyncio.sleep(0.2)
        assert here.tasks.notifications("ep") == 1  # its own is not applied twice
        assert not other.done()
        for broker, key, future in ((there, "ep", woken), (here, "ep", mine),
                                    (there, "other-ep", other)):
            broker.tasks.discard(key, future)

    asyncio.run(scenario())


def test_a_results_notification_reaches_the_other_processs_listener_with_equal_tasks(
    pair: tuple[RabbitMQBroker, RabbitMQBroker],
) -> None:
    here, there = pair
    done = [_task("t1"), _task("t2", result="x" * 100)]

    async def scenario() -> None:
        heard = await _listening(there, "alice")
        wait = there.results.waiter("alice")
        _from_thread(lambda: here.results.notify("alice", done))
        assert await asyncio.wait_for(wait, PATIENCE) == done
        assert await asyncio.wait_for(heard.get(), PATIENCE) == done
        _from_thread(lambda: here.results.notify("alice"))
        assert await asyncio.wait_for(heard.get(), PATIENCE) is None
        there.results.discard("alice", wait)
        there.results.unlisten("alice", heard.put_nowait)

    asyncio.run(scenario())


def test_results_settled_after_they_were_told_ride_with_the_owner_s_next_notification(
    pair: tuple[RabbitMQBroker, RabbitMQBroker], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Told before their commit, then settled: the waits here hear them again at once
    (a wait that began in between), the other processes with the next notification."""
    from farcall_broker_rabbitmq import wakeups

    monkeypatch.setattr(wakeups, "SETTLED_RIDES", 60.0)  # alone, they would come too late
    here, there = pair
    told, settled, later = _task("t1"), _task("t1", result="43"), _task("t2")

    async def scenario() -> None:
        heard = await _listening(there, "alice")
        await _waited_on(here, "alice")
        _from_thread(lambda: here.results.notify("alice", [told]))
        assert await asyncio.wait_for(heard.get(), PATIENCE) == [told]
        mine = here.results.waiter("alice")
        _from_thread(lambda: here.results.notify_settled("alice", [settled]))
        assert await asyncio.wait_for(mine, PATIENCE) == [settled]
        here.results.discard("alice", mine)
        await asyncio.sleep(0.2)
        assert heard.empty()
        _from_thread(lambda: here.results.notify("alice", [later]))
        assert await asyncio.wait_for(heard.get(), PATIENCE) == [later, settled]
        there.results.unlisten("alice", heard.put_nowait)

    asyncio.run(scenario())


def test_results_settled_with_no_notification_after_them_reach_the_others_alone(
    pair: tuple[RabbitMQBroker, RabbitMQBroker],
) -> None:
    here, there = pair
    settled = _task("t1")

    async def scenario() -> None:
        heard = await _listening(there, "alice")
        _from_thread(lambda: here.results.notify_settled("alice", [settled]))
        assert await asyncio.wait_for(heard.get(), PATIENCE) == [settled]
        there.results.unlisten("alice", heard.put_nowait)

    asyncio.run(scenario())


def test_a_batch_of_results_reaches_the_other_process_carried_in_several_messages(
    pair: tuple[RabbitMQBroker, RabbitMQBroker],
) -> None:
    """Over ``MAX_CARRIED`` together, small results still ride along, split: a
    listener elsewhere gets every task and never a "look again" (which made every
    channel following a batch read back every task it follows)."""
    from farcall_broker_rabbitmq.wakeups import MAX_CARRIED, OVERHEAD

    here, there = pair
    done = [_task(f"t{n}", result="r" * 100) for n in range(3 * MAX_CARRIED // OVERHEAD)]

    async def scenario() -> None:
        heard = await _listening(there, "alice")
        _from_thread(lambda: here.results.notify("alice", done))
        got: list[Task] = []
        messages = 0
        while len(got) < len(done):
            tasks = await asyncio.wait_for(heard.get(), PATIENCE)
            assert tasks is not None, "a batch of small results came as 'look again'"
            got.extend(tasks)
            messages += 1
        assert got == done and messages > 1
        there.results.unlisten("alice", heard.put_nowait)

    asyncio.run(scenario())


def test_results_too_big_to_carry_arrive_as_look_again(
    pair: tuple[RabbitMQBroker, RabbitMQBroker],
) -> None:
    here, there = pair
    big = [_task("t1", result="x" * (70 * 1024))]

    async def scenario() -> None:
        for broker in (here, there):
            await _waited_on(broker, "alice")
        mine, theirs = here.results.waiter("alice"), there.results.waiter("alice")
        _from_thread(lambda: here.results.notify("alice", big))
        assert await asyncio.wait_for(mine, PATIENCE) == big  # in its own process: as is
        assert await asyncio.wait_for(theirs, PATIENCE) is None  # elsewhere: look again
        here.results.discard("alice", mine)
        there.results.discard("alice", theirs)

    asyncio.run(scenario())


def test_wake_ups_flow_again_after_rabbitmq_closes_every_connection(
    pair: tuple[RabbitMQBroker, RabbitMQBroker], broker_url: str,
) -> None:
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        pytest.skip("rabbitmqctl is not installed here: cannot make RabbitMQ drop connections")
    here, there = pair
    vhost = unquote(urlsplit(broker_url).path.lstrip("/"))
    closed = subprocess.run(
        [rabbitmqctl, "close_all_connections", "-p", vhost, "farcall reconnection test"],
        capture_output=True, text=True, timeout=60)
    if closed.returncode != 0:
        pytest.skip(f"rabbitmqctl could not close connections: {closed.stderr.strip()}")

    async def scenario() -> float:
        started = time.monotonic()
        # Both have noticed and connected again (else a wake-up could slip through on
        # a connection about to close, and prove nothing).
        while not (here.reconnections and there.reconnections):
            assert time.monotonic() - started < 30, "no reconnection within 30 s"
            await asyncio.sleep(0.05)
        while time.monotonic() - started < 30:
            woken = there.tasks.waiter("ep")
            try:
                here.tasks.notify("ep")
                await asyncio.wait_for(woken, 0.5)
                return time.monotonic() - started
            except asyncio.TimeoutError:
                continue
            finally:
                there.tasks.discard("ep", woken)
        pytest.fail("no wake-up got through 30 s after the connections were closed")

    took = asyncio.run(scenario())
    assert took < 15, f"wake-ups came back after {took:.1f} s"


def test_start_says_where_rabbitmq_is_unreachable(
    make_broker: Callable[[str], RabbitMQBroker],
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    broker = make_broker(f"amqp://guest:s3cret-pw@127.0.0.1:{port}/")
    with pytest.raises(BrokerError, match=rf"RabbitMQ at 127\.0\.0\.1:{port} unreachable: .*"
                                          r"start it or fix --broker") as raised:
        broker.start()
    assert "s3cret-pw" not in str(raised.value)


def test_start_says_rabbitmq_refused_bad_credentials_without_showing_them(
    broker_url: str, make_broker: Callable[[str], RabbitMQBroker],
) -> None:
    where = urlsplit(broker_url)
    wrong = where._replace(netloc=f"guest:wrong-s3cret@{where.hostname}:{where.port}")
    broker = make_broker(wrong.geturl())
    refused = r"RabbitMQ at 127\.0\.0\.1:\d+ refused: .*start it or fix --broker"
    with pytest.raises(BrokerError, match=refused) as raised:
        broker.start()
    assert "wrong-s3cret" not in str(raised.value)


def test_results_are_published_again_after_rabbitmq_closes_every_connection(
    pair: tuple[RabbitMQBroker, RabbitMQBroker], broker_url: str,
) -> None:
    from farcall_service.testing.stream_contract import consume, ended, unpack_result

    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        pytest.skip("rabbitmqctl is not installed here: cannot make RabbitMQ drop connections")
    broker = pair[0]
    owner, group = "0b8f1a52-51f5-4b8e-9f3a-5d8c3f1f7a10", "5f0e7b2c-1d3a-4e59-8c47-2b6a9d0e4c31"
    first, second = ended(owner, group), ended(owner, group, failed=True)

    async def before() -> None:
        await broker.streams.open(owner, group)
        await broker.streams.publish([first])

    asyncio.run(before())
    vhost = unquote(urlsplit(broker_url).path.lstrip("/"))
    closed = subprocess.run(
        [rabbitmqctl, "close_all_connections", "-p", vhost, "farcall reconnection test"],
        capture_output=True, text=True, timeout=60)
    if closed.returncode != 0:
        pytest.skip(f"rabbitmqctl could not close connections: {closed.stderr.strip()}")

    async def after() -> None:
        deadline = time.monotonic() + 30
        while not broker.reconnections:
            assert time.monotonic() < deadline, "no reconnection within 30 s"
            await asyncio.sleep(0.05)
        await asyncio.wait_for(broker.streams.publish([second]), PATIENCE)
        access = await broker.streams.access(owner)
        received = await asyncio.wait_for(
            consume(access.connection_url, access.queue_prefix + group, 2), PATIENCE)
        assert [unpack_result(m.body)["task_id"] for m in received] == [first.id, second.id]

    asyncio.run(after())


def test_start_says_when_the_vhost_does_not_exist(
    broker_url: str, make_broker: Callable[[str], RabbitMQBroker],
) -> None:
    where = urlsplit(broker_url)
    broker = make_broker(where._replace(path="/farcall-no-such-vhost").geturl())
    with pytest.raises(BrokerError, match=r"refused: vhost 'farcall-no-such-vhost' does not "
                                          r"exist or user 'guest' may not use it"):
        broker.start()


def test_a_stopped_broker_starts_again(
    pair: tuple[RabbitMQBroker, RabbitMQBroker],
) -> None:
    here, there = pair
    here.stop()
    here.start()

    async def scenario() -> None:
        woken = there.tasks.waiter("ep")
        here.tasks.notify("ep")
        await asyncio.wait_for(woken, PATIENCE)
        there.tasks.discard("ep", woken)

    asyncio.run(scenario())


def test_a_broker_started_on_the_service_s_loop_lives_there_and_stops_from_a_thread(
    broker_url: str, make_broker: Callable[[str], RabbitMQBroker],
) -> None:
    """``start(loop)``: the connection lives on the service's event loop, which keeps
    running when the broker stops (from another thread, as the service stops it); no
    thread of the broker's own. Started again without a loop, it makes its own."""
    loop = asyncio.new_event_loop()
    serving = threading.Thread(target=loop.run_forever, name="service-loop", daemon=True)
    serving.start()
    try:
        here, there = make_broker(broker_url), make_broker(broker_url)
        before = set(threading.enumerate())
        here.start(loop)
        assert set(threading.enumerate()) == before, "the broker started a thread"
        there.start()
        _until(lambda: here.peers.any() and there.peers.any(), "the brokers never met")

        async def woken() -> Any:
            await _waited_on(here, "alice")
            waiter = here.results.waiter("alice")
            there.results.notify("alice", [_task("t1", "7")])
            return await asyncio.wait_for(waiter, PATIENCE)

        [task] = asyncio.run_coroutine_threadsafe(woken(), loop).result(PATIENCE)
        assert task.id == "t1" and task.result == "7"
        here.stop()
        assert loop.is_running()
        mine = asyncio.run_coroutine_threadsafe(_other_tasks(), loop).result(PATIENCE)
        assert mine == [], f"the broker left work on the service's loop: {mine}"
        here.start()  # no loop now: a thread of its own
        assert set(threading.enumerate()) - before, "no I/O thread without a loop"
        _until(lambda: here.peers.any(), "the broker did not meet the other again")
    finally:
        loop.call_soon_threadsafe(loop.stop)
        serving.join(PATIENCE)
        loop.close()


async def _other_tasks() -> list[str]:
    """The tasks on the running loop besides the caller."""
    return [repr(task) for task in asyncio.all_tasks() if task is not asyncio.current_task()]


def test_a_process_hears_only_the_results_someone_there_waits_for(
    pair: tuple[RabbitMQBroker, RabbitMQBroker],
) -> None:
    """Results wake-ups are routed by owner to the processes with a wait or listener
    of that owner, until ``linger`` seconds after the last one went."""
    here, there = pair
    applied: list[str] = []
    notify = there.results.notifier.notify

    def recording(key: str, value: Any = None) -> None:
        applied.append(key)
        notify(key, value)

    there.results.notifier.notify = recording  # type: ignore[method-assign]

    async def scenario() -> None:
        _from_thread(lambda: here.results.notify("bob", [_task("t1")]))
        await asyncio.sleep(0.3)
        assert applied == [], "a results wake-up nobody waits for came"
        await _waited_on(there, "alice")
        applied.clear()
        _from_thread(lambda: here.results.notify("alice", [_task("t2")]))
        _from_thread(lambda: here.results.notify("bob", [_task("t3")]))
        await _wait_for(lambda: "alice" in applied)
        await asyncio.sleep(0.2)
        assert applied == ["alice"]
        there.interests.linger = 0.0  # nobody waits now: unbound at the next sweep
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: there._connection.io.call(there.interests.sweep(), PATIENCE))
        assert not there.interests.is_bound("results.alice")
        applied.clear()
        _from_thread(lambda: here.results.notify("alice", [_task("t4")]))
        await asyncio.sleep(0.3)
        assert applied == []

    asyncio.run(scenario())
