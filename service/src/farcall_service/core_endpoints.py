"""Core endpoints: the official ``globus-compute-endpoint`` 4.x, which runs no task
itself but starts a *user endpoint* per user (and per configuration) when the service
tells it to, on its command queue (``cmd_start_endpoint``).

- Registration: a body whose metadata carries ``user_config_template`` (what every
  4.x endpoint sends, and farcall's own endpoint does not) is a core endpoint's. The
  answer carries its ``command_queue_info`` and ``heartbeat_queue_info``
  (``EndpointQueues.open_core``); its session becomes :data:`CORE_SESSION`, and
  whatever its previous run held goes back to the queue (:func:`open_core`): its user
  endpoints died with it, and a task one of them took and never finished is sent
  again (at least once; the store records a result once).
- Tasks stay the core endpoint's (status, listing, deletion are the endpoint's the
  user submitted to). The forwarder claims them under :data:`CORE_SESSION` and hands
  each owner's tasks of one ``user_endpoint_config`` to that user endpoint's queue,
  then publishes a start command carrying its credentials (:class:`CoreRouter`); a
  start for a user endpoint that runs only refreshes its credentials.
- A user endpoint's id is :func:`user_endpoint_id`: the same owner and configuration
  on the same core endpoint always get the same one (its queue, its directory
  ``uep.{core}.{id}`` under the local user's ``~/.globus_compute``).
- Results and heartbeats come from ``UserEndpoint.sender``: results are recorded as the
  core endpoint's, only for tasks of the owner that user endpoint was started for;
  heartbeats are the core endpoint's status (``get_endpoint_status``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from farcall_service.brokers.interface import BrokerError, EndpointQueues, UserEndpoint
from farcall_service.storage.interface import ClaimedTask

if TYPE_CHECKING:
    from farcall_service.lifecycle import TaskLifecycle

#: The session of every core endpoint.
CORE_SESSION = "amqp-core"
#: A session a core endpoint passes through when it registers: entering it puts
#: back in the queue every task its previous run held.
RESTARTING = "amqp-core-restarting"
#: The registration metadata that only a core endpoint sends.
CORE_METADATA = "user_config_template"


def is_core(metadata: dict[str, Any] | None) -> bool:
    """Whether a registration with this metadata is a core endpoint's."""
    return bool(metadata) and CORE_METADATA in (metadata or {})


def user_endpoint_id(core_id: str, owner_id: str, config: dict[str, Any] | None) -> str:
    """The id of the user endpoint that runs ``owner_id``'s tasks submitted to
    ``core_id`` with ``config`` (their ``user_endpoint_config``): a name-based UUID,
    so every service process derives the same one and nothing is stored."""
    canonical = json.dumps(config or {}, sort_keys=True, separators=(",", ":"))
    return str(uuid.uuid5(uuid.UUID(core_id), f"{owner_id}\n{canonical}"))


def user_endpoint_name(endpoint: UserEndpoint) -> str:
    """The name the core endpoint gives its directory and process."""
    return f"uep.{endpoint.core_id}.{endpoint.endpoint_id}"


async def open_core(lc: TaskLifecycle, endpoint_id: str, queues: EndpointQueues) -> dict[str, Any]:
    """Make ``endpoint_id`` a core endpoint: its command queue and credentials, and
    its session, which puts back in the queue what its previous run held."""
    answer = await queues.open_core(endpoint_id)
    store, now = lc.ctx.store, time.time()
    for session in (RESTARTING, CORE_SESSION):
        await lc.ctx.in_thread(store.claim, endpoint_id, session, 0, now, _nothing)
    lc.broker.tasks.notify(endpoint_id)  # the forwarders look at its queue
    return answer


def _nothing(tasks: list[ClaimedTask]) -> None:
    """A claim's forward callback: makes it the forwarder's (the endpoint is not seen)."""


def start_command(endpoint: UserEndpoint, creds: dict[str, Any], username: str,
                  config: dict[str, Any] | None) -> dict[str, Any]:
    """``cmd_start_endpoint`` as the core endpoint reads it. The identity is the
    owner's farcall user: ``sub`` is the user id, as in ``/v2/oauth2/userinfo``."""
    identity = {"sub": endpoint.owner_id, "username": username, "name": username,
                "identity_provider": "farcall"}
    return {
        "command": "cmd_start_endpoint",
        "args": [],
        "kwargs": {
            "name": user_endpoint_name(endpoint),
            "amqp_creds": creds,
            "user_opts": config or {},
            "user_runtime": {},
        },
        "globus_effective_identity": endpoint.owner_id,
        "globus_identity_set": [identity],
        "globus_username": username,
    }


#: Seconds between repeated start commands while a core endpoint has unfinished tasks.
START_AGAIN = 30.0
#: Seconds a user endpoint's start is repeated after its last task went to it.
REMEMBER = 3600.0


class CoreRouter:
    """Hands a core endpoint's claimed tasks to its user endpoints (on the event loop).

    It repeats the start commands it sent (:meth:`start_again`) while their core
    endpoint has unfinished tasks: a user endpoint may not be running when its tasks
    wait in its queue (it refused to start beside the PID file of one that was killed,
    or stopped when idle), and 4.19 starts one only on a command."""

    def __init__(self, lc: TaskLifecycle, queues: EndpointQueues) -> None:
        self._lc = lc
        self._queues = queues
        self._names: dict[str, str] = {}
        self._creds: dict[str, dict[str, Any]] = {}
        #: core id -> user endpoint id -> (its start command, when tasks last went).
        self._started: dict[str, dict[str, tuple[dict[str, Any], float]]] = {}

    async def start_again(self, core_id: str) -> None:
        """Publish again the start commands of ``core_id``'s user endpoints that had
        tasks within :data:`REMEMBER` seconds."""
        started = self._started.get(core_id, {})
        now = time.monotonic()
        for uep_id, (command, last) in list(started.items()):
            if now - last > REMEMBER:
                del started[uep_id]
            else:
                await self._queues.command(core_id, command)

    async def route(self, core_id: str, tasks: Sequence[ClaimedTask]) -> None:
        """Publish each group of tasks to its user endpoint's queue, then start it;
        raises (rolling the claim back) when the broker did not confirm."""
        groups: dict[str, tuple[UserEndpoint, dict[str, Any] | None, list[ClaimedTask]]] = {}
        for task in tasks:
            config = task.options.user_endpoint_config
            uep_id = user_endpoint_id(core_id, task.owner_id, config)
            groups.setdefault(uep_id, (UserEndpoint(core_id, task.owner_id, uep_id),
                                       config, []))[2].append(task)
        for endpoint, config, mine in groups.values():
            creds = self._creds.get(endpoint.endpoint_id)
            if creds is None:  # the same every time: the broker is asked once
                creds = self._creds[endpoint.endpoint_id] = await self._queues.open_user(
                    endpoint)
            try:
                await self._queues.forward(endpoint.endpoint_id, mine)
            except BrokerError:  # its queue or user may be gone: made again next time
                self._creds.pop(endpoint.endpoint_id, None)
                raise
            username = await self._username(endpoint.owner_id)
            command = start_command(endpoint, creds, username, config)
            await self._queues.command(core_id, command)
            self._started.setdefault(core_id, {})[endpoint.endpoint_id] = (
                command, time.monotonic())

    async def _username(self, owner_id: str) -> str:
        if owner_id not in self._names:
            user = await self._lc.ctx.in_thread(self._lc.ctx.store.get_user, owner_id)
            self._names[owner_id] = user.name if user is not None else owner_id
        return self._names[owner_id]
