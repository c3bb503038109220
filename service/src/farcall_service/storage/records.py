"""The records the service keeps, as plain frozen dataclasses.

They are what every :class:`~farcall_service.storage.interface.Store` takes and
returns, whatever keeps them: a store converts its rows to these and back, and
nothing outside the storage package sees a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

QUEUED = "waiting-for-ep"
RUNNING = "running"
#: Ended by its owner's cancel (``TaskStore.cancel_tasks``), never by a result.
CANCELLED = "cancelled"
#: Task states after which nothing changes.
TERMINAL_STATES = frozenset({"success", "failed", CANCELLED})


@dataclass(frozen=True)
class User:
    id: str
    name: str
    #: May open the dashboard's admin pages; read fresh by :meth:`IdentityStore.get_user`.
    admin: bool = False


@dataclass(frozen=True)
class StaticToken:
    """A static API token as an admin sees it: its hash (never the token) and owner."""

    token_hash: str
    user_id: str
    user_name: str
    created_at: float


@dataclass(frozen=True)
class UserSummary:
    """A user as ``farcall server user list`` shows them; never a secret."""

    id: str
    name: str
    created_at: float
    has_password: bool
    #: May open the dashboard's admin pages.
    admin: bool = False


@dataclass(frozen=True)
class Holdings:
    """What a user (with the identities of their OAuth clients) still has in use:
    live functions and endpoints, unfinished tasks, clients."""

    functions: int = 0
    endpoints: int = 0
    unfinished_tasks: int = 0
    clients: int = 0

    def __bool__(self) -> bool:
        return any((self.functions, self.endpoints, self.unfinished_tasks, self.clients))


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
class TaskFilter:
    """Which of an owner's tasks a page shows; ``None`` leaves a field open."""

    status: str | None = None
    endpoint_id: str | None = None
    function_id: str | None = None
    #: Submitted at or after this time.
    since: float | None = None


@dataclass(frozen=True)
class TaskPage:
    tasks: list[Task]
    #: Pass as ``before`` for the next (older) page; None on the last one.
    next_before: int | None


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
    #: Whose task it is: a core endpoint's tasks go to a user endpoint per owner.
    owner_id: str = ""


@dataclass(frozen=True)
class Outcome:
    """A result an endpoint reports for one task."""

    task_id: str
    status: str
    result: str | None = None
    exception: str | None = None
    details: dict[str, Any] | None = None
    exception_data: str | None = None


@dataclass(frozen=True)
class Quota:
    """Per-user limits a submission must stay within; 0 is no limit."""

    #: Unfinished (queued or running) tasks.
    unfinished_tasks: int = 0
    #: Characters of payloads, results and exceptions stored.
    stored_bytes: int = 0


class EndpointGone(Exception):
    """A submission names an endpoint deleted meanwhile (by this or another service
    process); nothing was stored."""

    def __init__(self, endpoint_id: str) -> None:
        super().__init__(f"endpoint {endpoint_id} was deleted")
        self.endpoint_id = endpoint_id


class QuotaExceeded(Exception):
    """A submission would take its owner past a :class:`Quota`; nothing was stored.

    ``which`` is ``"unfinished_tasks"`` or ``"stored_bytes"``; ``used`` is the owner's
    usage before this submission, ``adding`` what it would add."""

    def __init__(self, which: str, limit: int, used: int, adding: int) -> None:
        super().__init__(f"{which}: {used} + {adding} > {limit}")
        self.which = which
        self.limit = limit
        self.used = used
        self.adding = adding


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
    #: Whether some of them went to the result outbox (their groups are streamed).
    streamed: bool = False


#: :attr:`CancelAnswer.outcome` of a task that ends now, by this cancel.
CANCELLED_NOW = "cancelled"
#: ... of a task that had ended before (its :attr:`CancelAnswer.status` says how).
ALREADY_FINISHED = "already finished"
#: ... of an id that names no task of the caller's.
NOT_FOUND = "not found"


@dataclass(frozen=True)
class CancelAnswer:
    """What a cancel did to one task."""

    task_id: str
    #: :data:`CANCELLED_NOW`, :data:`ALREADY_FINISHED` or :data:`NOT_FOUND`.
    outcome: str
    #: The task's status before the cancel (None when not found).
    status: str | None = None
    #: Its endpoint (None when not found).
    endpoint_id: str | None = None
    #: For a task cancelled while claimed: the session that held it, whose endpoint
    #: is told (``TaskStore.take_cancels``); None otherwise.
    held_by: str | None = None


@dataclass(frozen=True)
class Cancelled:
    """A cancel's answers, one per id asked (in order, each id once), and the tasks it
    ended, as stored."""

    answers: list[CancelAnswer]
    ended: list[Task] = field(default_factory=list)
    #: Whether some of them went to the result outbox (their groups are streamed).
    streamed: bool = False


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


#: A device grant waits for its user (RFC 8628), then is approved or denied once.
DEVICE_PENDING, DEVICE_APPROVED, DEVICE_DENIED = "pending", "approved", "denied"
#: Seconds a device grant's polling interval grows by when its client polls too soon.
SLOW_DOWN_STEP = 5.0


@dataclass(frozen=True)
class DeviceGrant:
    """A device authorization grant (RFC 8628): the device code and the user code are
    stored only as hashes. ``user_id`` is whoever approved or denied it; ``used`` says
    its tokens were issued; ``last_polled_at`` paces the client's polling."""

    device_code_hash: str
    user_code_hash: str
    client_id: str
    scope: str
    grant_id: str
    expires_at: float
    interval: float
    status: str = DEVICE_PENDING
    user_id: str | None = None
    last_polled_at: float | None = None
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


@dataclass(frozen=True)
class PurgeBatch:
    """What one :meth:`~farcall_service.storage.interface.RetentionStore.purge_ended`
    call did, and where the next one goes on."""

    #: Tasks deleted (with their payloads and results).
    deleted: int
    #: The cursor to pass to the next call.
    after: int
    #: Nothing that ended before the cut-off is left past the cursor.
    done: bool


@dataclass(frozen=True)
class BlobRecord:
    """Whose a stored blob is and which task it belongs to: the service's record of a
    blob (the bytes are the blob store's). ``task_id`` is None for a payload uploaded
    but not yet submitted."""

    key: str
    owner_id: str
    task_id: str | None
    size: int
    created_at: float
