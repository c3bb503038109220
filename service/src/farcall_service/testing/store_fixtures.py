"""What every store contract suite stands on: the ``store`` fixture an implementation
overrides, and the records most tests need first."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pytest

from farcall_service.storage.interface import (
    Endpoint,
    Function,
    NewTask,
    Store,
    TaskOptions,
    User,
)


def new_id() -> str:
    return str(uuid.uuid4())


T = TypeVar("T")


def at_once(count: int, call: Callable[[], T]) -> list[T]:
    """``call`` from ``count`` threads started together; what each returned. The first
    exception a call raised is raised here, after every thread has ended."""
    results: list[T] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(count)

    def run() -> None:
        start.wait()
        try:
            result = call()
        except BaseException as exc:
            with lock:
                errors.append(exc)
            return
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


@dataclass(frozen=True)
class Seeded:
    """A user with a function and an endpoint of theirs, made through the store."""

    store: Store
    user: User
    function: Function
    endpoint: Endpoint
    now: float

    def submit(self, count: int, group: str | None = None, endpoint: str | None = None,
               at: float | None = None) -> list[str]:
        """Queue ``count`` tasks of the function on the endpoint; their ids, in order."""
        tasks = [
            (endpoint or self.endpoint.id, NewTask(new_id(), self.function.id, f"payload {i}"))
            for i in range(count)
        ]
        self.store.submit(self.user.id, group or new_id(), tasks, TaskOptions(),
                          self.now if at is None else at)
        return [task.id for _endpoint, task in tasks]


def seed(store: Store, name: str = "ada", now: float | None = None) -> Seeded:
    """A user called ``name``, with a function and an endpoint, made at ``now``."""
    at = time.time() if now is None else now
    user = store.create_user(name)
    function = Function(new_id(), user.id, f"{name}'s function", "code\n", created_at=at)
    store.create_function(function)
    endpoint = Endpoint(new_id(), user.id, f"{name}'s endpoint", created_at=at)
    store.save_endpoint(endpoint)
    return Seeded(store, user, function, endpoint, at)


class StoreFixtures:
    """The base of every suite. Override :meth:`store`."""

    @pytest.fixture
    def store(self) -> Store:
        """A new, empty store, closed after the test: override this fixture."""
        pytest.fail(
            f"{type(self).__name__} runs a store contract suite: override its `store` "
            "fixture with a new, empty store for each test"
        )

    @pytest.fixture
    def seeded(self, store: Store) -> Seeded:
        return seed(store)
