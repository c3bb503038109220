"""``farcall.Executor``: the standard ``concurrent.futures`` interface over farcall.

``submit`` registers each function once; submissions made while a batch is being
sent travel together in the next one (so a lone submission leaves at once and a burst
leaves in a few large requests). One thread sends them and asks the service to
follow them: their results are pushed down that thread's channel, and the thread
reads them whenever it has nothing to send (a new submission wakes it). Tasks the
service does not follow (no channel, more than it follows at a time, a connection
that dropped) are awaited by a second thread with long-polls.

Options that travel with a submission (the endpoint, the task group, the
``resource_specification``, ``user_endpoint_config`` and ``result_serializers``) are
taken when ``submit`` is called, as the official Executor takes them; tasks that differ
in them are sent in separate requests. A task whose arguments cannot be serialized
fails on its own, with :class:`~farcall.errors.SerializationError`; the others are sent.

It needs nothing from the Client beyond its public API: ``create_batch``,
``batch_run``, ``wait_any``, ``result_entry``, ``get_task_group_tasks`` and the
channel session (``client.session``: ``on_results``, ``listen``, ``following``).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor as _BaseExecutor
from concurrent.futures import Future
from itertools import islice
from typing import Any, NamedTuple

from farcall.errors import FarcallError
from farcall.sdk.batch import canonical_id
from farcall.sdk.client import Client
from farcall.sdk.errors import ServiceUnreachable
from farcall.sdk.progress import Progress
from farcall.sdk.results import WAIT_WINDOW

log = logging.getLogger(__name__)

MAX_BATCH = 5_000
#: Seconds one read of pushes or one long-poll waits before looking again.
WAIT_S = 10.0
#: Seconds the service may stay unreachable before the futures it holds fail.
GIVE_UP_S = 120.0


class _Options(NamedTuple):
    """What a submission carries besides its tasks; tasks sent together share it.
    The dicts are kept as JSON text: hashable, and a snapshot of what was set."""

    endpoint_id: str
    task_group_id: str | None
    resource_specification: str | None
    user_endpoint_config: str | None
    result_serializers: tuple[str, ...] | None


def cancel_now(future: Future[Any]) -> bool:
    """Cancel ``future`` and notify ``concurrent.futures.wait`` and ``as_completed`` at
    once (a plain ``cancel`` leaves that to an executor's worker, which this Executor
    does not have for a task cancelled at the service). Whether it is cancelled."""
    with future._condition:  # reentrant: cancel takes it again
        cancelled = Future.cancel(future)
        if cancelled and future._state == "CANCELLED":
            future.set_running_or_notify_cancel()
    return cancelled


class TaskFuture(Future[Any]):
    """A submitted task's future: :meth:`cancel` reaches the service.

    Unlike ``concurrent.futures``, a task that runs may be cancelled too (its
    endpoint stops it): the service decides. ``cancel`` returns True when the future
    is cancelled (before it was sent, or by the service now) and False when the task
    had already ended: its result comes as usual."""

    #: Set once the service took the task (absent before, as on the official futures).
    task_id: str
    _client: Client

    def cancel(self) -> bool:
        if self.done():
            return self.cancelled()
        task_id = getattr(self, "task_id", None)
        client = getattr(self, "_client", None)
        if task_id is None or client is None:
            # Not sent yet: the sender skips it, or cancels it at the service if it
            # was on its way (``Executor._send_group``).
            return cancel_now(self)
        try:
            answer = client.cancel(task_id)
        except FarcallError as exc:  # a cancel that cannot be asked did not happen
            log.warning("could not cancel task %s at the service: %s", task_id, exc)
            return False
        if answer.get("outcome") != "cancelled":
            return False
        return cancel_now(self)


_Work = tuple[TaskFuture, str, tuple[Any, ...], dict[str, Any], _Options]


def _json_dict(value: Any, what: str) -> str | None:
    """``value`` (a JSON-serializable dict, or None) as JSON text; TypeError otherwise,
    as the official Executor raises."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"{what} must be a dict, not {type(value).__name__}")
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serializable: {exc}") from exc


def _import_path(strategy: Any) -> str:
    """A strategy class or instance as the import path the official endpoint takes
    (and farcall's endpoint reads by its last part, the strategy's name)."""
    cls = strategy if isinstance(strategy, type) else type(strategy)
    return f"{cls.__module__}.{cls.__qualname__}"


class Executor(_BaseExecutor):
    """Runs functions on one endpoint, returning ``concurrent.futures.Future`` objects.

    The official Executor's options, with its names and meaning:
    ``task_group_id`` (None: the service makes one, which this Executor and later ones
    adopt), ``resource_specification`` and ``user_endpoint_config`` (JSON-serializable
    dicts, sent with each submission), ``label``, ``batch_size``. ``amqp_port`` is
    accepted and unused: results come down the channel the tasks were submitted on.
    ``result_serializers``: the strategies the endpoint tries, in order, for each
    result (identifiers, names, import paths, or the official SDK's strategy classes
    and instances); None leaves the choice to the Client (:mod:`farcall.sdk.trust`).
    ``progress=True`` (farcall's) draws a progress line on standard error.
    """

    #: The last task group an Executor adopted, per service (base URL): new Executors
    #: join it unless given one, as the official Executor's do (``reload_tasks`` finds
    #: their tasks). Per service, because a group exists only on the service that made
    #: it, and a v3 submission naming a group the service does not know is refused.
    _default_task_group_ids: dict[str, str] = {}

    def __init__(
        self,
        endpoint_id: Any = None,
        client: Client | None = None,
        task_group_id: Any = None,
        resource_specification: dict[str, Any] | None = None,
        user_endpoint_config: dict[str, Any] | None = None,
        label: str = "",
        batch_size: int = MAX_BATCH,
        amqp_port: int | None = None,
        *,
        result_serializers: Iterable[Any] | None = None,
        progress: bool = False,
    ) -> None:
        if client is None:
            client = Client()
        self.client = client
        self.endpoint_id = endpoint_id
        self.task_group_id = (task_group_id
                              or Executor._default_task_group_ids.get(self._service()))
        self.resource_specification = resource_specification
        self.user_endpoint_config = user_endpoint_config
        self.result_serializers = result_serializers
        self.label = label
        self.batch_size = max(1, batch_size)
        self.amqp_port = amqp_port
        self._progress = Progress() if progress else None
        self._function_ids: dict[Callable[..., Any], str] = {}
        self._register_lock = threading.Lock()
        self._lock = threading.Condition()
        self._queued: list[_Work] = []
        self._followed: dict[str, TaskFuture] = {}  # results pushed to the sender's channel
        self._waited: dict[str, TaskFuture] = {}  # results the collector asks for
        self._early: dict[str, dict[str, Any]] = {}  # results in before their task's id
        self._shutdown = False
        #: ``shutdown(cancel_futures=True)`` was called: tasks still on their way when
        #: it was are cancelled at the service once their ids are known.
        self._cancelling = False
        # The sender waits for pushes on its channel's socket and this one: a byte
        # written here (under the lock, while it listens) ends the wait.
        self._wake_r, self._wake_w = socket.socketpair()
        self._listening = False
        self._sender = threading.Thread(target=self._send_loop, name="farcall-submit", daemon=True)
        self._collector = threading.Thread(target=self._collect_loop, name="farcall-collect",
                                           daemon=True)
        self._sender.start()
        self._collector.start()

    def __repr__(self) -> str:
        label = f"{self.label}; " if self.label else ""
        return (f"Executor<{label}ep_id:{self.endpoint_id}; tg_id:{self.task_group_id}; "
                f"bs:{self.batch_size}>")

    # -- options ------------------------------------------------------------------------

    @property
    def endpoint_id(self) -> str | None:
        """Where tasks run: a canonical UUID string, settable (ids in any form)."""
        return self._endpoint_id

    @endpoint_id.setter
    def endpoint_id(self, value: Any) -> None:
        self._endpoint_id = None if value is None else canonical_id(value, "endpoint_id")

    @property
    def task_group_id(self) -> str | None:
        """The task group new tasks join: set it to reattach to an earlier group (see
        :meth:`reload_tasks`); None lets the service make one, adopted from its answer."""
        return self._task_group_id

    @task_group_id.setter
    def task_group_id(self, value: Any) -> None:
        group = None if value is None else canonical_id(value, "task_group_id")
        self._task_group_id = group
        if group is not None:
            Executor._default_task_group_ids[self._service()] = group

    def _service(self) -> str:
        return str(getattr(self.client, "base_url", ""))

    @property
    def resource_specification(self) -> dict[str, Any] | None:
        """Resources each task asks the endpoint for (``num_nodes``, ...); a
        JSON-serializable dict or None."""
        return self._resource_specification

    @resource_specification.setter
    def resource_specification(self, value: dict[str, Any] | None) -> None:
        self._resource_json = _json_dict(value, "resource_specification")
        self._resource_specification = value

    @property
    def user_endpoint_config(self) -> dict[str, Any] | None:
        """Values for the endpoint's user configuration template, as its administrator
        allows; a JSON-serializable dict or None."""
        return self._user_endpoint_config

    @user_endpoint_config.setter
    def user_endpoint_config(self, value: dict[str, Any] | None) -> None:
        self._config_json = _json_dict(value, "user_endpoint_config")
        self._user_endpoint_config = value

    @property
    def result_serializers(self) -> list[str] | None:
        """What the endpoint is asked to serialize results with, first that works; as
        names (import paths for strategy classes and instances), or None."""
        return None if self._result_serializers is None else list(self._result_serializers)

    @result_serializers.setter
    def result_serializers(self, value: Iterable[Any] | None) -> None:
        self._result_serializers = None if value is None else tuple(
            v if isinstance(v, str) else _import_path(v) for v in value) or None

    @property
    def amqp_port(self) -> int | None:
        """Accepted for the official Executor's callers and unused: farcall pushes
        results down the channel tasks were submitted on, with no AMQP connection."""
        return self._amqp_port

    @amqp_port.setter
    def amqp_port(self, value: int | None) -> None:
        self._amqp_port = value

    # -- public API ---------------------------------------------------------------------

    def function_id(self, fn: Callable[..., Any]) -> str:
        """Register ``fn`` on first use and remember its id."""
        fid = self._function_ids.get(fn)
        if fid is not None:
            return fid
        with self._register_lock:
            fid = self._function_ids.get(fn)
            if fid is None:
                fid = self._function_ids[fn] = self.client.register_function(fn)
            return fid

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` on the endpoint; ``fn`` is registered once."""
        if self._shutdown:
            raise RuntimeError("cannot submit to an Executor after shutdown")
        return self._enqueue(self.function_id(fn), args, kwargs)

    def submit_to_registered_function(
        self, function_id: Any, args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> Future[Any]:
        """Run a function registered already (yours, your group's, or a public one)."""
        return self._enqueue(canonical_id(function_id, "function_id"), args or (), kwargs or {})

    def _enqueue(self, fid: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Future[Any]:
        if self._shutdown:
            raise RuntimeError("cannot submit to an Executor after shutdown")
        if self._endpoint_id is None:
            raise ValueError("No endpoint_id set: Executor(endpoint_id=...), or set "
                             "executor.endpoint_id before submitting")
        options = _Options(self._endpoint_id, self._task_group_id, self._resource_json,
                           self._config_json, self._result_serializers)
        future = TaskFuture()
        with self._lock:
            if self._shutdown:  # again: the sender may be gone, and nothing would send it
                raise RuntimeError("cannot submit to an Executor after shutdown")
            self._queued.append((future, fid, args, kwargs, options))
            if self._progress is not None:  # counted before the sender can end it
                self._progress.expect()
                future.add_done_callback(self._progress.future_done)
            self._wake()
        return future

    def reload_tasks(self, task_group_id: Any = None) -> list[TaskFuture]:
        """Futures for every task of the task group (``task_group_id``, which this
        Executor then adopts, or its own): to pick up the results of tasks submitted
        earlier, by another process or before a restart. Tasks still open in this
        Executor keep their futures; the others get new ones, completed as their
        results come."""
        if task_group_id is not None:
            self.task_group_id = task_group_id
        group = self.task_group_id
        if group is None:
            raise ValueError("must specify a task_group_id in order to reload tasks")
        task_ids = self.client.get_task_group_tasks(group)
        futures = []
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot reload tasks into an Executor after shutdown")
            for tid in task_ids:
                future = self._followed.get(tid) or self._waited.get(tid)
                if future is None:
                    future = self._waited[tid] = TaskFuture()
                    future.task_id, future._client = tid, self.client
                futures.append(future)
            self._lock.notify_all()
        return futures

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking tasks; with ``wait``, return once every future is done. With
        ``cancel_futures``, tasks not sent yet are dropped and every sent task not
        ended is cancelled at the service, in one request per 1,000: those the service
        cancelled have their futures cancelled, those that had ended get their results."""
        sent: dict[str, TaskFuture] = {}
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                self._cancelling = True
                for future, *_ in self._queued:
                    cancel_now(future)
                self._queued.clear()
                sent = {**self._followed, **self._waited}
            self._wake()
        if sent:
            self._cancel_at_service(sent)
        if wait:
            self._sender.join()
            self._collector.join()
            if self._progress is not None:
                self._progress.close()

    def _cancel_at_service(self, sent: dict[str, TaskFuture]) -> None:
        """Cancel ``sent`` tasks at the service in one batch; their futures follow the
        answers (one the service could not be asked about is cancelled here only)."""
        try:
            answers = self.client.cancel(list(sent))
        except Exception as exc:
            log.warning("cancelling %d task(s) at the service failed: %s", len(sent), exc)
            answers = {tid: {"outcome": "cancelled"} for tid in sent}
        with self._lock:
            for tid, future in sent.items():
                if answers.get(tid, {}).get("outcome") == "cancelled":
                    self._followed.pop(tid, None)
                    self._waited.pop(tid, None)
                    cancel_now(future)
            self._lock.notify_all()

    # -- background work ----------------------------------------------------------------

    def _wake(self) -> None:
        """Wake the background threads (called holding the lock)."""
        self._lock.notify_all()
        if self._listening:
            self._listening = False
            self._wake_w.send(b"\0")

    def _sender_done(self) -> bool:
        return self._shutdown and not self._queued and not self._followed

    def _send_loop(self) -> None:
        self.client.session.on_results(self._heard)
        try:
            while True:
                with self._lock:
                    while not self._queued and not self._followed and not self._shutdown:
                        self._lock.wait()
                    if self._sender_done():
                        self._lock.notify_all()  # the collector may be done too
                        return
                    work = self._queued[: self.batch_size]
                    del self._queued[: self.batch_size]
                    self._listening = not work
                if work:
                    self._send(work)
                else:
                    self._listen()
        except BaseException as exc:  # a bug: fail what would otherwise wait forever
            log.exception("the Executor's sending thread failed")
            with self._lock:
                self._shutdown = True
                futures = [item[0] for item in self._queued] + list(self._followed.values())
                self._queued.clear()
                self._followed.clear()
                self._lock.notify_all()
            for future in futures:
                if future.set_running_or_notify_cancel():
                    future.set_exception(exc)
        finally:
            self.client.session.on_results(None)
            with self._lock:
                self._listening = False
                self._wake_r.close()
                self._wake_w.close()

    def _send(self, work: list[_Work]) -> None:
        groups: dict[_Options, list[_Work]] = {}
        for item in work:
            if not item[0].cancelled():
                groups.setdefault(item[4], []).append(item)
        for options, items in groups.items():
            self._send_group(options, items)

    def _send_group(self, options: _Options, work: list[_Work]) -> None:
        """Send tasks that share their options in one batch."""
        endpoint_id, group, resource_json, config_json, serializers = options
        batch = self.client.create_batch(
            task_group_id=group or self._task_group_id,
            resource_specification=json.loads(resource_json) if resource_json else None,
            result_serializers=list(serializers) if serializers else None,
            user_endpoint_config=json.loads(config_json) if config_json else None,
        )
        sent = []
        for item in work:
            future, fid, args, kwargs, _options = item
            try:
                batch.add(*args, endpoint_id=endpoint_id, function_id=fid, **kwargs)
            except Exception as exc:  # SerializationError: this task alone fails
                if future.set_running_or_notify_cancel():
                    future.set_exception(exc)
                continue
            sent.append(item)
        if not sent:
            return
        try:
            task_ids = self.client.batch_run(batch)
        except BaseException as exc:  # the service refused: fail these futures
            for future, *_ in sent:
                if future.set_running_or_notify_cancel():
                    future.set_exception(exc)
            return
        if batch.task_group_id and batch.task_group_id != self._task_group_id:
            self.task_group_id = batch.task_group_id  # the one the service made
        following = self._following()
        early, self._early = self._early, {}
        ended = []
        late: list[str] = []  # cancelled while on their way: cancelled at the service
        with self._lock:
            for (future, *_), tid in zip(sent, task_ids, strict=True):
                future.task_id, future._client = tid, self.client
                if future.cancelled() or self._cancelling:
                    cancel_now(future)
                    late.append(tid)
                elif tid in following:
                    self._followed[tid] = future
                elif tid in early:  # in the answer, or pushed while a later part was sent
                    ended.append((future, early[tid]))
                else:
                    self._waited[tid] = future
            self._lock.notify_all()
        for future, document in ended:
            self._settle(future, self._entry(document))
        if late:
            self.client.cancel(late)
        self._hand_over_unfollowed(following)

    def _listen(self) -> None:
        """Read pushed results until one comes, a submission wakes us, or WAIT_S."""
        self.client.session.listen(None, WAIT_S, self._wake_r)
        with self._lock:
            woken, self._listening = not self._listening, False
        if woken:
            self._wake_r.recv(64)
        self._hand_over_unfollowed(self._following())

    def _following(self) -> set[str]:
        return self.client.session.following()

    def _hand_over_unfollowed(self, following: set[str]) -> None:
        """Tasks the channel stopped following before their results came (its
        connection dropped): the collector asks for them."""
        with self._lock:
            if len(self._followed) > len(following):  # the channel follows only ours
                for tid in [tid for tid in self._followed if tid not in following]:
                    self._waited[tid] = self._followed.pop(tid)
                self._lock.notify_all()

    def _heard(self, documents: dict[str, dict[str, Any]]) -> None:
        """Results pushed to the sender's channel, or brought by a submission's answer."""
        ended = []
        with self._lock:
            for tid, document in documents.items():
                future = self._followed.pop(tid, None)
                if future is None:
                    self._early[tid] = document
                else:
                    ended.append((future, document))
            if not self._followed:
                self._lock.notify_all()
        for future, document in ended:
            self._settle(future, self._entry(document))

    def _entry(self, document: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.client.result_entry(document)
        except Exception as exc:  # a result this interpreter cannot rebuild
            return {"status": "failed", "exception": exc}

    @staticmethod
    def _settle(future: Future[Any] | None, entry: dict[str, Any]) -> None:
        """Complete ``future`` with a ``get_batch_result`` entry (unless cancelled); a
        task cancelled at the service (by whoever) cancels its future."""
        if future is not None and entry["status"] == "cancelled":
            cancel_now(future)
            return
        if future is not None and future.set_running_or_notify_cancel():
            if entry["status"] == "success":
                future.set_result(entry["result"])
            else:
                future.set_exception(entry["exception"])

    def _collect_loop(self) -> None:
        unreachable_since: float | None = None
        while True:
            with self._lock:
                while not self._waited and not self._sender_done():
                    self._lock.wait()
                if not self._waited and self._sender_done():
                    return
                waiting = list(islice(self._waited, WAIT_WINDOW))  # the oldest: see WAIT_WINDOW
            try:
                finished = self.client.wait_any(waiting, timeout=WAIT_S)
                unreachable_since = None
            except ServiceUnreachable as exc:
                # The tasks are the service's to keep: ride out a restart before giving up.
                now = time.monotonic()
                unreachable_since = unreachable_since or now
                if now - unreachable_since < GIVE_UP_S:
                    log.warning("%s; asking again", exc)
                    with self._lock:
                        self._lock.wait(min(5.0, 0.2 + (now - unreachable_since) / 4))
                    continue
                self._fail(waiting, exc)
                continue
            except BaseException as exc:
                self._fail(waiting, exc)
                continue
            with self._lock:
                ended = [(self._waited.pop(tid, None), entry) for tid, entry in finished.items()]
            for future, entry in ended:
                self._settle(future, entry)

    def _fail(self, task_ids: list[str], exc: BaseException) -> None:
        with self._lock:
            futures = [self._waited.pop(t) for t in task_ids if t in self._waited]
        for future in futures:
            if future.set_running_or_notify_cancel():
                future.set_exception(exc)
