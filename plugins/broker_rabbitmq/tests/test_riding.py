"""Words held for a key's next message: taken by it, or sent alone when their delay
is over, and never by the timer of an earlier hold that a message took."""

from __future__ import annotations

from typing import Any

from farcall_broker_rabbitmq.riding import Riding


class Timers:
    """``later`` that keeps the callbacks, to fire them when the test says."""

    def __init__(self) -> None:
        self.pending: list[tuple[float, Any, tuple[Any, ...]]] = []

    def later(self, delay: float, callback: Any, *args: Any) -> None:
        self.pending.append((delay, callback, args))

    def fire_all(self) -> None:
        pending, self.pending = self.pending, []
        for _delay, callback, args in pending:
            callback(*args)


def test_items_ride_with_the_key_s_next_message_or_go_alone_when_their_delay_is_over() -> None:
    timers, alone = Timers(), []
    riding: Riding[str] = Riding(timers.later, lambda key, items: alone.append((key, items)))
    riding.hold("ep", ["a"], 0.05)
    riding.hold("ep", ["b", "b2"], 0.05)
    riding.hold("other", ["c"], 0.05)
    riding.hold("none", [], 0.05)  # nothing to carry: no timer
    assert [delay for delay, _cb, _args in timers.pending] == [0.05, 0.05]  # one per key
    assert riding.take("ep") == ["a", "b", "b2"]
    assert riding.take("ep") == []
    timers.fire_all()
    assert alone == [("other", ["c"])]


def test_the_timer_of_a_hold_taken_since_leaves_a_newer_hold_of_the_key_alone() -> None:
    timers, alone = Timers(), []
    riding: Riding[str] = Riding(timers.later, lambda key, items: alone.append((key, items)))
    riding.hold("ep", ["first"], 0.05)
    assert riding.take("ep") == ["first"]
    riding.hold("ep", ["second"], 0.05)
    first_timer, second_timer = timers.pending
    first_timer[1](*first_timer[2])
    assert alone == []  # the second hold keeps its own delay
    second_timer[1](*second_timer[2])
    assert alone == [("ep", ["second"])]


def test_a_stopping_process_takes_every_item_held() -> None:
    timers, alone = Timers(), []
    riding: Riding[int] = Riding(timers.later, lambda key, items: alone.append((key, items)))
    riding.hold("a", [1], 1.0)
    riding.hold("b", [2], 1.0)
    assert riding.take_all() == {"a": [1], "b": [2]}
    timers.fire_all()
    assert alone == []
