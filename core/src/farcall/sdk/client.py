"""The Client of the User Guide, speaking the Globus Compute REST API."""

from __future__ import annotations

import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from farcall.plugins import get_plugin_manager
from farcall.plugins.manager import FarcallPluginManager
from farcall.sdk.batch import Batch, canonical_id
from farcall.sdk.channel import Channel
from farcall.sdk.errors import FarcallAPIError, ServiceUnreachable, TaskExecutionFailed, TaskPending
from farcall.sdk.login import authorizer_of, choose_login_manager
from farcall.sdk.profile import load_profile
from farcall.serialize import Serializer

COMPUTE_SCOPE = "https://auth.globus.org/scopes/facd7ccc-c5f4-42aa-916b-a0e270e2c2a9/all"
TERMINAL = ("success", "failed")
#: Payload bytes per submit request, below the service's default 10 MB body limit.
SUBMIT_CHUNK_CHARS = 4_000_000
STATUS_CHUNK = 2_000
#: Seconds to wait for a submission's answer.
SUBMIT_TIMEOUT = 60.0


#: Tasks named in one results long-poll. Results arrive roughly in submission order,
#: so waiting on the oldest unfinished tasks keeps every request small however many
#: tasks are outstanding (10,000 ids would be 380 kB per request).
WAIT_WINDOW = 1000

class Client:
    """Register functions, run them on endpoints, and collect their results.

    With no arguments the Client finds its service and credentials itself (see
    :mod:`farcall.sdk.profile`). ``login_manager`` replaces the credential chain;
    ``force_login=True`` logs out first and drops every cached lookup. ``transport``
    and ``result_cache`` name plugins (defaults: ``FARCALL_TRANSPORT`` or ``http``,
    ``FARCALL_RESULT_CACHE`` or ``memory``).
    """

    FUNCX_SCOPE = COMPUTE_SCOPE

    def __init__(
        self,
        base_url: str | None = None,
        *,
        login_manager: Any = None,
        force_login: bool = False,
        transport: str | None = None,
        result_cache: str | None = None,
        serializer: Serializer | None = None,
        plugin_manager: FarcallPluginManager | None = None,
        **settings: Any,
    ) -> None:
        self.plugin_manager = plugin_manager or get_plugin_manager()
        profile = load_profile(base_url)
        self.base_url = profile.base_url
        self.profile = profile
        self.settings: dict[str, Any] = {"token": profile.token, "base_url": self.base_url, **settings}
        self.login_manager = login_manager or choose_login_manager(self.plugin_manager, self.settings)
        if force_login:
            self.login_manager.logout()
        self.login_manager.ensure_logged_in()
        authorizer = authorizer_of(self.login_manager, self.base_url)
        transport = transport or os.environ.get("FARCALL_TRANSPORT") or "http"
        result_cache = result_cache or os.environ.get("FARCALL_RESULT_CACHE") or "memory"
        self.transport = self.plugin_manager.get_transport(transport).factory(
            self.base_url, authorizer, self.settings
        )
        # Submissions and result waits go over a channel (one per thread) when the
        # transport is the default one; another transport plugin sees every request.
        self._authorizer = authorizer
        self._channels = threading.local() if transport == "http" else None
        self._over_http = _OverHttp(self)
        self.result_cache = self.plugin_manager.get_result_cache(result_cache).factory(self.settings)
        self.serializer = serializer or Serializer()
        self._lookups: dict[tuple[str, str], Any] = {}
        self._long_poll = True

    # -- plumbing -----------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.transport.request(method, path, **kwargs)

    def _ask(self, operation: str, body: dict[str, Any], timeout: float) -> Any:
        """A submission or a result wait: over this thread's channel when there is
        one, else (and to retry what the channel could not deliver) over HTTP."""
        channel = self._channel()
        if channel is not None:
            try:
                return channel.ask(operation, body, timeout)
            except ServiceUnreachable:
                pass  # the HTTP transport retries, with backoff
            except FarcallAPIError as exc:
                if exc.http_status != 429 and exc.http_status < 500:
                    raise
        return self._over_http.ask(operation, body, timeout)

    def _channel(self, open_one: bool = True) -> Channel | None:
        """This thread's channel (opened on first use), if the transport has them."""
        if self._channels is None:
            return None
        pid, channel = getattr(self._channels, "channel", (None, None))
        if pid != os.getpid():  # new thread, or a forked child: the parent's is not ours
            if not open_one:
                return None
            channel = Channel(self.base_url, "/farcall/v1/channel", self._authorizer,
                              self._over_http, on_push=self._keep_pushed)
            self._channels.channel = (os.getpid(), channel)
        return channel

    def _keep_pushed(self, documents: dict[str, Any]) -> None:
        """Results the service pushed (see ``Channel``): kept as a wait keeps them,
        and handed to this thread's ``_hear_results`` handler."""
        ended = {tid: document for tid, document in documents.items()
                 if isinstance(document, dict) and document.get("status") in TERMINAL}
        for tid, document in ended.items():
            self.result_cache.put(tid, document)
        handler = getattr(self._channels, "on_results", None)
        if handler is not None and ended:
            handler(ended)

    def _hear_results(self, handler: Callable[[dict[str, Any]], None] | None) -> None:
        """Hand ``handler`` the results of the tasks this thread's channel follows
        as they come, and those a submission's answer brings (the Executor resolves
        its futures so)."""
        if self._channels is not None:
            self._channels.on_results = handler

    def _cached_lookup(self, kind: str, key: str, fetch: Callable[[], Any]) -> Any:
        """Lookups are cached for this client's credentials, as the guide describes."""
        try:
            return self._lookups[(kind, key)]
        except KeyError:
            value = self._lookups[(kind, key)] = fetch()
            return value

    def version(self) -> dict[str, Any]:
        return self._call("GET", "/v2/version", params={"service": "all"})

    # -- functions ----------------------------------------------------------------------

    def register_function(
        self,
        function: Callable[..., Any],
        function_name: str | None = None,
        *,
        description: str | None = None,
        group: Any = None,
        public: bool = False,
        container_uuid: Any = None,
    ) -> str:
        """Register ``function`` and return its id; imports belong inside its body."""
        body: dict[str, Any] = {
            "function_name": function_name or function.__name__,
            "function_code": self.serializer.pack_buffers([self.serializer.serialize(function)]),
            "serialized": True,
            "meta": self._meta(),
            "description": description,
            "public": bool(public),
        }
        if group is not None:
            body["group"] = canonical_id(group, "group")
        if container_uuid is not None:
            body["container_uuid"] = canonical_id(container_uuid, "container_uuid")
        return self._call("POST", "/v3/functions", json=body)["function_uuid"]

    def register_source_code(
        self,
        source: str,
        function_name: str,
        *,
        description: str | None = None,
        group: Any = None,
        public: bool = False,
    ) -> str:
        """Register a function given as source text; it is rebuilt with ``exec``."""
        body: dict[str, Any] = {
            "function_name": function_name,
            "function_code": source,
            "serialized": False,
            "meta": self._meta(),
            "description": description,
            "public": bool(public),
        }
        if group is not None:
            body["group"] = canonical_id(group, "group")
        return self._call("POST", "/v3/functions", json=body)["function_uuid"]

    def _meta(self) -> dict[str, Any]:
        from farcall import __version__

        return {
            "python_version": platform.python_version(),
            "sdk_version": f"farcall-{__version__}",
            "serde_identifier": self.serializer.code_strategy,
        }

    def get_function(self, function_id: Any) -> dict[str, Any]:
        fid = canonical_id(function_id, "function_id")
        return self._cached_lookup("function", fid, lambda: self._call("GET", f"/v2/functions/{fid}"))

    def delete_function(self, function_id: Any) -> Any:
        fid = canonical_id(function_id, "function_id")
        self._lookups.pop(("function", fid), None)
        return self._call("DELETE", f"/v2/functions/{fid}")

    def search_function(self, q: str, offset: int = 0, limit: int = 10) -> dict[str, Any]:
        """Functions you may see (your own, your groups', public) matching ``q``.

        Returns ``{"total", "offset", "limit", "results": [...]}``; each result has
        ``function_uuid``, ``function_name``, ``description``, ``owner``, ``public``
        and ``group``.
        """
        params = {"q": q, "offset": offset, "limit": limit}
        return self._call("GET", "/farcall/v1/functions/search", params=params)

    # -- execution environments ---------------------------------------------------------

    def register_container(
        self,
        location: str,
        container_type: str,
        name: str | None = None,
        description: str | None = None,
    ) -> str:
        """Register an execution environment and return its id, for ``container_uuid``.

        ``container_type`` is ``venv`` (``location`` is a Python interpreter),
        ``apptainer``, ``docker`` or ``podman`` (``location`` is an image).
        """
        body = {
            "name": name or location.rstrip("/").rsplit("/", 1)[-1] or container_type,
            "type": container_type,
            "location": location,
            "description": description,
        }
        return self._call("POST", "/farcall/v1/containers", json=body)["container_id"]

    def get_container(self, container_id: Any) -> dict[str, Any]:
        cid = canonical_id(container_id, "container_id")
        return self._call("GET", f"/farcall/v1/containers/{cid}")

    def attach_container(self, function_id: Any, container_id: Any) -> dict[str, Any]:
        """Run a function you own in an execution environment (None detaches it)."""
        fid = canonical_id(function_id, "function_id")
        cid = None if container_id is None else canonical_id(container_id, "container_id")
        self._lookups.pop(("function", fid), None)
        return self._call("PUT", f"/farcall/v1/functions/{fid}/container", json={"container_id": cid})

    # -- endpoints ----------------------------------------------------------------------

    def get_endpoints(self, role: str | None = None) -> list[dict[str, Any]]:
        return self._call("GET", "/v2/endpoints", params={"role": role} if role else None)

    def get_endpoint_status(self, endpoint_id: Any) -> dict[str, Any]:
        eid = canonical_id(endpoint_id, "endpoint_id")
        return self._call("GET", f"/v2/endpoints/{eid}/status")

    def get_endpoint_metadata(self, endpoint_id: Any) -> dict[str, Any]:
        eid = canonical_id(endpoint_id, "endpoint_id")
        return self._cached_lookup("endpoint", eid, lambda: self._call("GET", f"/v2/endpoints/{eid}"))

    # -- running ------------------------------------------------------------------------

    def create_batch(
        self,
        task_group_id: Any = None,
        resource_specification: dict[str, Any] | None = None,
        result_serializers: list[str] | None = None,
    ) -> Batch:
        return Batch(
            self.serializer,
            task_group_id=None if task_group_id is None else canonical_id(task_group_id, "task_group_id"),
            resource_specification=resource_specification,
            result_serializers=result_serializers,
        )

    def run(self, *args: Any, endpoint_id: Any, function_id: Any, **kwargs: Any) -> str:
        """Start ``function_id(*args, **kwargs)`` on ``endpoint_id``; return the task id."""
        batch = self.create_batch()
        batch.add(*args, endpoint_id=endpoint_id, function_id=function_id, **kwargs)
        return self.batch_run(batch)[0]

    def batch_run(self, batch: Batch) -> list[str]:
        """Submit a batch; the task ids come back in the order tasks were added.

        Tasks are grouped into one request per endpoint (split only when a request
        would exceed the service's body limit). The service pushes their results to
        this thread's channel as they come in, so a wait or a result read here later
        usually has them without asking.
        """
        return self._batch_run(batch, follow=True)

    def _batch_run(self, batch: Batch, follow: bool) -> list[str]:
        task_ids: list[str | None] = [None] * len(batch.tasks)
        by_endpoint: dict[str, list[int]] = {}
        for index, (endpoint_id, _fn, _payload) in enumerate(batch.tasks):
            by_endpoint.setdefault(endpoint_id, []).append(index)
        for endpoint_id, indices in by_endpoint.items():
            for chunk in _chunks_by_size(indices, batch.tasks):
                self._submit(endpoint_id, chunk, batch, task_ids, follow)
        return [tid for tid in task_ids if tid is not None]

    def _submit(self, endpoint_id: str, indices: list[int], batch: Batch, out: list[str | None],
                follow: bool) -> None:
        tasks: dict[str, list[str]] = {}
        slots: list[tuple[str, int]] = []
        for index in indices:
            _ep, function_id, payload = batch.tasks[index]
            payloads = tasks.setdefault(function_id, [])
            slots.append((function_id, len(payloads)))
            payloads.append(payload)
        body: dict[str, Any] = {"create_queue": False, "tasks": tasks}
        if batch.task_group_id:
            body["task_group_id"] = batch.task_group_id
        if batch.resource_specification:
            body["resource_specification"] = batch.resource_specification
        if batch.result_serializers:
            body["result_serializers"] = batch.result_serializers
        if follow:
            body["follow"] = True
        answer = self._ask("submit", {"endpoint_id": endpoint_id, **body}, SUBMIT_TIMEOUT)
        for index, (function_id, position) in zip(indices, slots):
            out[index] = answer["tasks"][function_id][position]
        if answer.get("following"):  # only a channel's answer says so
            done = answer.get("results") or {}
            self._keep_pushed(done)
            channel = self._channel(open_one=False)
            if channel is not None:
                channel.follow([out[i] for i in indices if out[i] not in done])

    # -- results ------------------------------------------------------------------------

    def _documents(self, task_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Task documents, terminal ones from the result cache, the rest from the service."""
        channel = self._channel(open_one=False)
        if channel is not None:
            channel.collect()  # results pushed meanwhile
        documents: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for tid in task_ids:
            cached = self.result_cache.get(tid)
            if cached is not None:
                documents[tid] = cached
            else:
                missing.append(tid)
        for start in range(0, len(missing), STATUS_CHUNK):
            chunk = missing[start : start + STATUS_CHUNK]
            if len(chunk) == 1:
                answer = {chunk[0]: self._call("GET", f"/v2/tasks/{chunk[0]}")}
            else:
                answer = self._call("POST", "/v2/batch_status", json={"task_ids": chunk})["results"]
            for tid in chunk:
                document = answer.get(tid) or {"task_id": tid, "status": "unknown"}
                if document.get("status") in TERMINAL:
                    self.result_cache.put(tid, document)
                documents[tid] = document
        return documents

    def _entry(self, document: dict[str, Any]) -> dict[str, Any]:
        """The guide's per-task dict: pending, status, and result or exception."""
        status = str(document.get("status", "unknown")).lower()
        if status not in TERMINAL:
            return {"pending": True, "status": status}
        entry: dict[str, Any] = {
            "pending": False,
            "status": status,
            "completion_t": document.get("completion_t"),
        }
        if status == "success":
            entry["result"] = self.serializer.deserialize(document["result"])
        else:
            entry["exception"] = self._exception(document)
        return entry

    def _exception(self, document: dict[str, Any]) -> BaseException:
        """The remote exception itself when it can be rebuilt, else TaskExecutionFailed."""
        text = str(document.get("exception") or document.get("reason") or "unknown failure")
        data = document.get("exception_data")
        if data:
            try:
                exc = self.serializer.deserialize(data)
            except Exception:
                exc = None
            if isinstance(exc, BaseException):
                exc.remote_traceback = text  # type: ignore[attr-defined]
                if hasattr(exc, "add_note"):
                    exc.add_note(f"Remote traceback:\n{text}")
                return exc
        return TaskExecutionFailed(text, document.get("completion_t"))

    def get_task(self, task_id: Any) -> dict[str, Any]:
        """The status of one task, with its result or exception once it has ended."""
        tid = canonical_id(task_id, "task_id")
        document = self._documents([tid])[tid]
        return {"task_id": tid, **self._entry(document), "details": document.get("details")}

    def get_result(self, task_id: Any) -> Any:
        """The task's result; raises TaskPending while it runs, or the remote exception."""
        tid = canonical_id(task_id, "task_id")
        entry = self._entry(self._documents([tid])[tid])
        if entry["pending"]:
            raise TaskPending(entry["status"])
        if entry["status"] == "failed":
            raise entry["exception"]
        return entry["result"]

    def get_batch_result(self, task_id_list: Iterable[Any]) -> dict[str, dict[str, Any]]:
        """Every requested task, keyed by id; failed tasks carry their ``exception``."""
        ids = [canonical_id(t, "task_id") for t in task_id_list]
        documents = self._documents(ids)
        return {tid: self._entry(documents[tid]) for tid in ids}

    def wait_any(self, task_ids: Iterable[Any], timeout: float = 10.0) -> dict[str, dict[str, Any]]:
        """Entries of the given tasks that have ended, waiting up to ``timeout`` for one.

        The service answers the moment any of them ends (a long-poll), so callers do not
        sleep between checks; results it pushes to this thread's channel (tasks
        submitted here) are read as they come, without a request. Against a service
        without that route, polls with backoff.
        """
        ids = [canonical_id(t, "task_id") for t in task_ids]
        done = {tid: doc for tid in ids if (doc := self.result_cache.get(tid)) is not None}
        remaining = [tid for tid in ids if tid not in done]
        if remaining and not done:
            deadline = time.monotonic() + timeout
            channel = self._channel(open_one=False)
            if channel is not None and channel.following.issuperset(remaining):
                if channel.listen(remaining, timeout):  # their results are pushed here
                    done = {tid: doc for tid in remaining
                            if (doc := self.result_cache.get(tid)) is not None}
                timeout = max(0.0, deadline - time.monotonic())
        if remaining and not done:
            if self._long_poll:
                try:
                    answer = self._ask("wait", {"task_ids": remaining, "timeout": timeout},
                                       timeout + 30)
                except FarcallAPIError as exc:
                    if exc.http_status not in (404, 405):
                        raise
                    self._long_poll = False
                else:
                    for tid, document in answer["results"].items():
                        self.result_cache.put(tid, document)
                        done[tid] = document
            if not self._long_poll:
                done = self._poll_until_any(remaining, timeout)
        return {tid: self._entry(document) for tid, document in done.items()}

    def _poll_until_any(self, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        deadline, delay = time.monotonic() + timeout, 0.005
        while True:
            documents = self._documents(ids)
            done = {t: d for t, d in documents.items() if d.get("status") in TERMINAL}
            if done or time.monotonic() >= deadline:
                return done
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    def wait(
        self, task_ids: Iterable[Any], timeout: float | None = None, progress: bool = True
    ) -> dict[str, dict[str, Any]]:
        """Wait until every task has ended and return their ``get_batch_result`` entries.

        Shows a progress bar on a terminal (nothing otherwise); raises TimeoutError
        after ``timeout`` seconds.
        """
        ids = [canonical_id(t, "task_id") for t in task_ids]
        deadline = None if timeout is None else time.monotonic() + timeout
        show = progress and sys.stderr.isatty()
        results: dict[str, dict[str, Any]] = {}
        while True:
            remaining = [tid for tid in ids if tid not in results]
            if show:
                _progress(len(ids) - len(remaining), len(ids))
            if not remaining:
                if show:
                    sys.stderr.write("\n")
                return {tid: results[tid] for tid in ids}
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"{len(remaining)} of {len(ids)} tasks still pending")
            window = remaining[:WAIT_WINDOW]
            results.update(self.wait_any(window, timeout=min(left or 10.0, 10.0)))


def _chunks_by_size(indices: list[int], tasks: list[tuple[str, str, str]]) -> Iterable[list[int]]:
    chunk: list[int] = []
    size = 0
    for index in indices:
        length = len(tasks[index][2]) + 64
        if chunk and size + length > SUBMIT_CHUNK_CHARS:
            yield chunk
            chunk, size = [], 0
        chunk.append(index)
        size += length
    if chunk:
        yield chunk


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // total if total else width
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} tasks done")
    sys.stderr.flush()


class _OverHttp:
    """The channel's operations as the HTTP API's requests."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def ask(self, operation: str, body: dict[str, Any], timeout: float) -> Any:
        if operation == "submit":
            fields = dict(body)
            endpoint_id = fields.pop("endpoint_id")
            return self.client._call("POST", f"/v3/endpoints/{endpoint_id}/submit", json=fields)
        return self.client._call("POST", "/farcall/v1/tasks/wait", json=body, timeout=timeout)

    def close(self) -> None:
        """Nothing to close: the client's transport is the client's."""
