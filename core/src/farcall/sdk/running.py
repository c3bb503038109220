"""The Client's submissions: batches of tasks, one request per endpoint.

A submission asks the service to follow its tasks: their results are pushed to the
submitting thread's channel as they come (see :mod:`farcall.sdk.session`), so a wait
or a result read later usually has them without asking.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from farcall.blob_refs import MIN_THRESHOLD
from farcall.sdk.batch import Batch, canonical_id
from farcall.sdk.blobs import service_limits, upload_payload
from farcall.sdk.errors import FarcallAPIError

if TYPE_CHECKING:
    from farcall.plugins.types import Transport
    from farcall.sdk.session import ChannelSession
    from farcall.sdk.trust import EndpointTrust
    from farcall.serialize import Serializer

#: Payload characters per submit request, below the service's default 10 MB body limit.
SUBMIT_CHUNK_CHARS = 4_000_000
#: Tasks per submit request: the service's default ``max_tasks_per_submission``. A
#: service with a lower cap answers 413 ``TOO_MANY_TASKS`` (storing nothing), and the
#: part is split in two and sent again.
SUBMIT_CHUNK_TASKS = 2_000
#: Seconds to wait for a submission's answer.
SUBMIT_TIMEOUT = 60.0


class RunCalls:
    """Part of :class:`farcall.Client`: running functions on endpoints."""

    serializer: Serializer
    session: ChannelSession
    trust: EndpointTrust
    transport: Transport
    #: Payloads longer than this are uploaded to the blob store first; None: the
    #: service's threshold, asked once (only when a payload could be over it).
    blob_threshold: int | None = None

    def create_batch(
        self,
        task_group_id: Any = None,
        resource_specification: dict[str, Any] | None = None,
        result_serializers: list[str] | None = None,
        user_endpoint_config: dict[str, Any] | None = None,
    ) -> Batch:
        """A batch to fill with ``add`` and submit with :meth:`batch_run`. Its options
        travel with each of its tasks, as the official SDK sends them:
        ``resource_specification`` (what each task asks the endpoint for) and
        ``user_endpoint_config`` (values for the endpoint's user configuration)."""
        group = None if task_group_id is None else canonical_id(task_group_id, "task_group_id")
        return Batch(
            self.serializer,
            task_group_id=group,
            resource_specification=resource_specification,
            result_serializers=result_serializers,
            user_endpoint_config=user_endpoint_config,
        )

    def run(self, *args: Any, endpoint_id: Any, function_id: Any, **kwargs: Any) -> str:
        """Start ``function_id(*args, **kwargs)`` on ``endpoint_id``; return the task id."""
        batch = self.create_batch()
        batch.add(*args, endpoint_id=endpoint_id, function_id=function_id, **kwargs)
        return self.batch_run(batch)[0]

    def get_task_group_tasks(self, task_group_id: Any) -> list[str]:
        """The ids of your tasks in a task group (farcall's; the official SDK reads
        them only inside ``Executor.reload_tasks``)."""
        gid = canonical_id(task_group_id, "task_group_id")
        answer = self.transport.request("GET", f"/v2/taskgroup/{gid}")
        return [str(task["id"]) for task in answer.get("tasks", [])]

    def batch_run(self, batch: Batch) -> list[str]:
        """Submit a batch; the task ids come back in the order tasks were added.

        Tasks are grouped into one request per endpoint (split only when a request
        would exceed the service's body limit or its cap of tasks per submission).
        Each request is stored whole or not at all, so a part that failed may be sent
        again without duplicating tasks. Unless the batch names its
        ``result_serializers``, tasks on an endpoint the Client does not trust ask for
        results in strategies that run no code (:mod:`farcall.sdk.trust`). The service
        pushes their results to this thread's channel as they come in:
        ``session.on_results`` hears them.
        """
        if any(len(payload) > MIN_THRESHOLD for _ep, _fn, payload in batch.tasks):
            if self.blob_threshold is None:
                self.blob_threshold = service_limits(self.transport)["blob_threshold"]
            for index, (endpoint_id, function_id, payload) in enumerate(batch.tasks):
                if len(payload) > self.blob_threshold:  # sent ahead, submitted by reference
                    batch.tasks[index] = (endpoint_id, function_id,
                                          upload_payload(self.transport, payload))
        task_ids: list[str | None] = [None] * len(batch.tasks)
        by_endpoint: dict[str, list[int]] = {}
        for index, (endpoint_id, _fn, _payload) in enumerate(batch.tasks):
            by_endpoint.setdefault(endpoint_id, []).append(index)
        for endpoint_id, indices in by_endpoint.items():
            for chunk in _chunks_by_size(indices, batch.tasks):
                self._submit_within_cap(endpoint_id, chunk, batch, task_ids)
        return [tid for tid in task_ids if tid is not None]

    def _submit_within_cap(self, endpoint_id: str, indices: list[int], batch: Batch,
                           out: list[str | None]) -> None:
        """Submit ``indices``, halving a part the service refuses as too many tasks."""
        try:
            self._submit(endpoint_id, indices, batch, out)
        except FarcallAPIError as exc:
            if exc.code != "TOO_MANY_TASKS" or len(indices) < 2:
                raise
            half = len(indices) // 2
            self._submit_within_cap(endpoint_id, indices[:half], batch, out)
            self._submit_within_cap(endpoint_id, indices[half:], batch, out)

    def _submit(self, endpoint_id: str, indices: list[int], batch: Batch,
                out: list[str | None]) -> None:
        tasks: dict[str, list[str]] = {}
        slots: list[tuple[str, int]] = []
        for index in indices:
            _ep, function_id, payload = batch.tasks[index]
            payloads = tasks.setdefault(function_id, [])
            slots.append((function_id, len(payloads)))
            payloads.append(payload)
        body: dict[str, Any] = {"endpoint_id": endpoint_id, "create_queue": False,
                                "tasks": tasks, "follow": True}
        if batch.task_group_id:
            body["task_group_id"] = batch.task_group_id
        if batch.resource_specification:
            body["resource_specification"] = batch.resource_specification
        if batch.user_endpoint_config:
            body["user_endpoint_config"] = batch.user_endpoint_config
        # To an endpoint the caller does not trust, ask for results that run no code.
        serializers = batch.result_serializers or self.trust.result_serializers(endpoint_id)
        if serializers:
            body["result_serializers"] = serializers
        answer = self.session.ask("submit", body, SUBMIT_TIMEOUT)
        if not batch.task_group_id and answer.get("task_group_id"):
            batch.task_group_id = str(answer["task_group_id"])  # the batch's other parts join it
        submitted = []
        for index, (function_id, position) in zip(indices, slots, strict=True):
            tid = out[index] = answer["tasks"][function_id][position]
            submitted.append(tid)
        self.session.follow(answer, submitted)


def _chunks_by_size(indices: list[int], tasks: list[tuple[str, str, str]]) -> Iterator[list[int]]:
    chunk: list[int] = []
    size = 0
    for index in indices:
        length = len(tasks[index][2]) + 64
        if chunk and (size + length > SUBMIT_CHUNK_CHARS or len(chunk) >= SUBMIT_CHUNK_TASKS):
            yield chunk
            chunk, size = [], 0
        chunk.append(index)
        size += length
    if chunk:
        yield chunk
