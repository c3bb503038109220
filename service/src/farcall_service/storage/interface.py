"""The storage contract: the records the service keeps and the operations it needs.

Routes and the hand-off logic talk only to :class:`Store`, so a later plugin can put the
same data somewhere else (another database, a message broker for the task queue)
without touching the HTTP layer. Every method is one transaction: when it returns, what
it wrote is durable.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

#: Task states after which nothing changes.
TERMINAL_STATES = frozenset({"success", "failed"})
QUEUED = "waiting-for-ep"
RUNNING = "running"


@dataclass(frozen=True)
class User:
    id: str
    name: str


@dataclass(frozen=True)
class Group:
    id: str
    name: str


@dataclass(frozen=True)
class Function:
    id: str
    owner_id: str
    name: str
    code: str
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    public: bool = False
    group_id: str | None = None
    container_id: str | None = None
    ha_endpoint_id: str | None = None
    created_at: float = 0.0


@dataclass(frozen=True)
class Container:
    id: str
    owner_id: str
    name: str
    type: str
    location: str
    description: str | None = None
    created_at: float = 0.0


@dataclass(frozen=True)
class Endpoint:
    id: str
    owner_id: str
    name: str
    display_name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    public: bool = False
    allowed_functions: tuple[str, ...] | None = None
    locked_until: float = 0.0
    session_id: str | None = None
    last_seen: float | None = None
    heartbeat: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0


@dataclass(frozen=True)
class NewTask:
    """A task to be queued: ``payload`` is the packed (args, kwargs) from the SDK."""

    id: str
    function_id: str
    payload: str


@dataclass(frozen=True)
class Task:
    id: str
    owner_id: str
    function_id: str
    endpoint_id: str
    task_group_id: str
    status: str
    created_at: float
    result: str | None = None
    exception: str | None = None
    details: dict[str, Any] | None = None
    completion_t: float | None = None
    exception_data: str | None = None


@dataclass(frozen=True)
class TaskOptions:
    """Per-submission settings handed to the endpoint with each task."""

    resource_specification: dict[str, Any] | None = None
    result_serializers: list[str] | None = None
    user_endpoint_config: dict[str, Any] | None = None


@dataclass(frozen=True)
class ClaimedTask:
    """A task as an endpoint receives it: the payload already starts with the function."""

    id: str
    function_id: str
    payload: str
    options: TaskOptions
    container: Container | None = None


@dataclass(frozen=True)
class Outcome:
    """A result an endpoint reports for one task."""

    task_id: str
    status: str
    result: str | None = None
    exception: str | None = None
    details: dict[str, Any] | None = None
    exception_data: str | None = None


class TaskGroupTaken(Exception):
    """A submission named a task group that belongs to another user."""


@dataclass(frozen=True)
class Report:
    """Results an endpoint's session reported, to record."""

    endpoint_id: str
    session: str
    outcomes: Sequence[Outcome]
    now: float


@dataclass(frozen=True)
class RecordedOutcomes:
    recorded: list[str]
    duplicates: list[str]
    rejected: list[str]
    #: The tasks recorded now, as stored: waiting SDKs are answered from these.
    finished: list[Task] = field(default_factory=list)


@dataclass(frozen=True)
class Submitted:
    #: Endpoints whose waiting claim's session was no longer theirs: the tasks
    #: handed to it were queued.
    stale: set[str]
    #: What became of each report recorded with the submission, in order.
    recorded: list[RecordedOutcomes]


@dataclass(frozen=True)
class OAuthClient:
    """A confidential client: its own principal (``principal_id``), owned by a user."""

    id: str
    owner_id: str
    principal_id: str
    name: str
    secret_hash: str
    created_at: float = 0.0


@dataclass(frozen=True)
class AuthCode:
    """An authorization code, stored by hash; ``used`` says it was redeemed before."""

    code_hash: str
    client_id: str
    user_id: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    offline: bool
    grant_id: str
    expires_at: float
    used: bool = False


@dataclass(frozen=True)
class IssuedToken:
    """An OAuth access or refresh token, stored by hash. Tokens of one login (one
    ``grant_id``) are revoked together when a code or refresh token is replayed."""

    token_hash: str
    kind: str  # "access" or "refresh"
    user_id: str
    client_id: str
    scope: str
    resource_server: str
    grant_id: str
    expires_at: float
    revoked: bool = False
    created_at: float = 0.0


@runtime_checkable
class Store(Protocol):
    """Everything the service persists."""

    def close(self) -> None: ...

    # identity
    def create_user(self, name: str) -> User: ...
    def get_user(self, name_or_id: str) -> User | None: ...
    def add_token(self, user_id: str, token_hash: str) -> None: ...
    def user_for_token(self, token_hash: str) -> User | None: ...
    def create_group(self, name: str) -> Group: ...
    def get_group(self, name_or_id: str) -> Group | None: ...
    def add_member(self, group_id: str, user_id: str) -> None: ...
    def groups_of(self, user_id: str) -> frozenset[str]: ...

    # OAuth2
    def set_password_hash(self, user_id: str, password_hash: str | None) -> None: ...
    def get_password_hash(self, user_id: str) -> str | None: ...
    def create_oauth_client(self, client: OAuthClient, principal_name: str) -> None:
        """Store the client and create its principal (a user row without a password)."""

    def get_oauth_client(self, client_id: str) -> OAuthClient | None: ...
    def list_oauth_clients(self, owner_id: str) -> list[OAuthClient]: ...
    def delete_oauth_client(self, client_id: str) -> None:
        """Forget the client and revoke every token issued to it."""

    def save_auth_code(self, code: AuthCode) -> None: ...
    def redeem_auth_code(self, code_hash: str) -> AuthCode | None:
        """Mark the code used and return it as it was before (``used`` tells a replay)."""

    def save_oauth_tokens(self, tokens: Sequence[IssuedToken]) -> None: ...
    def get_oauth_token(self, token_hash: str) -> IssuedToken | None: ...
    def user_for_oauth_token(self, token_hash: str) -> tuple[IssuedToken, User] | None: ...
    def spend_refresh_token(self, token_hash: str) -> IssuedToken | None:
        """Revoke a refresh token and return it as it was before (rotation)."""

    def revoke_oauth_token(self, token_hash: str) -> None: ...
    def revoke_grant(self, grant_id: str) -> list[str]:
        """Revoke every token of one login; return their hashes (to drop from caches)."""

    # functions and containers
    def create_function(self, function: Function) -> None: ...
    def get_function(self, function_id: str) -> Function | None: ...
    def delete_function(self, function_id: str) -> None: ...
    def set_function_container(self, function_id: str, container_id: str | None) -> None: ...
    def search_functions(
        self, query: str, user_id: str, group_ids: Iterable[str], offset: int, limit: int
    ) -> tuple[list[Function], int]: ...
    def create_container(self, container: Container) -> None: ...
    def get_container(self, container_id: str) -> Container | None: ...

    # endpoints
    def save_endpoint(self, endpoint: Endpoint) -> None: ...
    def get_endpoint(self, endpoint_id: str) -> Endpoint | None: ...
    def endpoint_id_taken(self, endpoint_id: str) -> bool: ...
    def list_endpoints(self, user_id: str, include_public: bool) -> list[Endpoint]: ...
    def delete_endpoint(self, endpoint_id: str, now: float, reason: str) -> None: ...
    def lock_endpoint(self, endpoint_id: str, until: float) -> None: ...
    def count_outstanding(self, endpoint_id: str) -> int: ...

    # tasks
    def submit(
        self,
        owner_id: str,
        task_group_id: str,
        tasks: Sequence[tuple[str, NewTask]],
        options: TaskOptions,
        now: float,
        claimed: Mapping[str, tuple[str, list[str]]] | None = None,
        reports: Sequence[Report] = (),
    ) -> Submitted:
        """Store ``(endpoint_id, task)`` pairs, queued, creating the task group if new.

        ``claimed`` maps endpoint ids to a waiting claim's session and the ids of the
        tasks already handed to it: those are stored as claimed by that session if it
        is still the endpoint's, else queued like the others. ``reports`` are
        recorded in the same transaction (as :meth:`record_reports`), which saves a
        commit. Raises :class:`TaskGroupTaken` (storing nothing) if the task group
        exists and belongs to someone else.
        """

    def get_task_group_owner(self, task_group_id: str) -> str | None: ...
    def get_task(self, task_id: str) -> Task | None: ...
    def get_tasks(self, task_ids: Iterable[str]) -> list[Task]: ...
    def finished_tasks(self, task_ids: Iterable[str], owner_id: str) -> list[Task]:
        """The owner's tasks among ``task_ids`` that have ended (for the wait long-poll)."""

    def task_endpoints(self, task_ids: Iterable[str], owner_id: str) -> set[str]:
        """The endpoints the owner's tasks among ``task_ids`` were submitted to."""
    def task_group_tasks(self, task_group_id: str) -> list[Task]: ...

    # hand-off
    def claim(
        self, endpoint_id: str, session: str, max_tasks: int, now: float
    ) -> list[ClaimedTask]:
        """Take up to ``max_tasks`` queued tasks for ``session``; a new session first
        requeues everything claimed under the endpoint's older sessions."""

    def heartbeat(
        self, endpoint_id: str, session: str, details: dict[str, Any], now: float
    ) -> int:
        """Record liveness and load; a new session requeues the older sessions' tasks.
        Returns how many went back to the queue."""

    def record_reports(self, reports: Sequence[Report]) -> list[RecordedOutcomes]:
        """Record each report's results, in one transaction. A result is recorded
        once: an outcome for a task that has ended is a duplicate."""

    def requeue_stale(self, cutoff: float, alive: Collection[str] = ()) -> list[str]:
        """Requeue tasks of endpoints silent since ``cutoff``, except those known to be
        ``alive`` (waiting in a claim right now); return the endpoints requeued."""
