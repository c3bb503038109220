"""The storage contract: small protocols by job, and :class:`Store` that combines them.

Routes and the task lifecycle talk only to these protocols, so a store plugin can
keep the same records somewhere else (another database, a broker for the queue)
without touching the HTTP layer. The contract every method shares:

- it is one transaction: when it returns, what it wrote is durable and visible to
  every other call, from this process or another one on the same database;
- a method that finds nothing returns ``None`` or an empty collection, it does not
  raise; only the errors named in its docstring are part of the contract;
- ids are made by the caller (except users' and groups'), so a store never has to
  hand one back.

``farcall_service.testing.store_contract`` checks all of it against a store.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from farcall_service.storage.records import (
    ALREADY_FINISHED,
    CANCELLED,
    CANCELLED_NOW,
    NOT_FOUND,
    QUEUED,
    RUNNING,
    TERMINAL_STATES,
    AuthCode,
    BlobRecord,
    CancelAnswer,
    Cancelled,
    ClaimedTask,
    Container,
    DeviceGrant,
    Endpoint,
    EndpointGone,
    Function,
    Group,
    Holdings,
    IssuedToken,
    NewTask,
    OAuthClient,
    Outcome,
    PurgeBatch,
    Quota,
    QuotaExceeded,
    RecordedOutcomes,
    Report,
    StaticToken,
    Submitted,
    Task,
    TaskFilter,
    TaskOptions,
    TaskPage,
    User,
    UserSummary,
)

__all__ = [
    "ALREADY_FINISHED",
    "CANCELLED",
    "CANCELLED_NOW",
    "NOT_FOUND",
    "CancelAnswer",
    "Cancelled",
    "QUEUED",
    "RUNNING",
    "TERMINAL_STATES",
    "AuthCode",
    "CatalogueStore",
    "ClaimedTask",
    "Container",
    "DeviceGrant",
    "Endpoint",
    "Function",
    "Group",
    "BlobRecord",
    "Holdings",
    "IdentityStore",
    "IssuedToken",
    "NewTask",
    "OAuthClient",
    "OAuthStore",
    "Outcome",
    "PurgeBatch",
    "RecordedOutcomes",
    "RetentionStore",
    "Report",
    "StaticToken",
    "UserSummary",
    "Store",
    "Submitted",
    "Task",
    "Quota",
    "EndpointGone",
    "QuotaExceeded",
    "TaskFilter",
    "TaskOptions",
    "TaskPage",
    "TaskStore",
    "BrowseStore",
    "User",
]


@runtime_checkable
class IdentityStore(Protocol):
    """Users, groups and their memberships, static tokens and passwords.

    A removed user (:meth:`remove_user`) is found by nothing: not by name or id, not
    by a token; their name stays taken.
    """

    def create_user(self, name: str) -> User:
        """A new user with a fresh id. Names are unique, removed users' included: a
        name already taken raises (the store's own error), so callers check with
        :meth:`get_user` first."""

    def get_user(self, name_or_id: str) -> User | None:
        """The user with this id or this name, unless removed."""

    def list_users(self) -> list[UserSummary]:
        """Every user not removed, oldest first."""

    def set_admin(self, user_id: str, admin: bool) -> None:
        """Grant or take away the admin role (the dashboard's admin pages)."""

    def add_token(self, user_id: str, token_hash: str) -> None:
        """Keep a static token (by hash) that authenticates as the user."""

    def user_for_token(self, token_hash: str) -> User | None:
        """The user a static token's hash belongs to."""

    def list_tokens(self, user_id: str | None = None) -> list[StaticToken]:
        """The static tokens of one user (of every user with ``None``), oldest first."""

    def delete_token(self, token_hash: str) -> bool:
        """Forget a static token, so it authenticates no more; False if unknown."""

    def set_password_hash(self, user_id: str, password_hash: str | None) -> None:
        """Set (or with ``None`` clear) the user's password hash."""

    def get_password_hash(self, user_id: str) -> str | None:
        """The user's password hash; ``None`` if unset or no such user."""

    def create_group(self, name: str) -> Group:
        """A new group with a fresh id; names are unique, as for users."""

    def get_group(self, name_or_id: str) -> Group | None:
        """The group with this id or this name."""

    def add_member(self, group_id: str, user_id: str) -> None:
        """Put the user in the group; adding a member twice changes nothing."""

    def remove_member(self, group_id: str, user_id: str) -> bool:
        """Take the user out of the group; False if they were not in it."""

    def groups_of(self, user_id: str) -> frozenset[str]:
        """The ids of the groups the user is a member of."""

    def holdings(self, user_id: str) -> Holdings:
        """What the user and the identities of their OAuth clients have in use."""

    def remove_user(self, user_id: str, now: float, reason: str) -> None:
        """Remove the user and the identities of their OAuth clients, in one
        transaction: their static tokens are deleted, OAuth tokens revoked, codes
        forgotten, passwords and memberships dropped, clients deleted; their functions
        and endpoints are deleted, and every unfinished task of theirs, or on one of
        their endpoints, fails with ``reason`` as its exception (those of streamed
        groups go to the outbox, as in :meth:`TaskStore.record_reports`)."""


@runtime_checkable
class OAuthStore(Protocol):
    """The OAuth2 provider's clients, authorization codes and issued tokens.

    Redeeming a code and spending a refresh token are each one transaction, so two
    concurrent replays cannot both get the unused record back.
    """

    def create_oauth_client(self, client: OAuthClient, principal_name: str) -> None:
        """Store the client and create its principal: a user with id
        ``client.principal_id`` and name ``principal_name``, without a password."""

    def get_oauth_client(self, client_id: str) -> OAuthClient | None:
        """The client, unless unknown or deleted."""

    def list_oauth_clients(self, owner_id: str) -> list[OAuthClient]:
        """The user's clients that are not deleted, oldest first."""

    def delete_oauth_client(self, client_id: str) -> None:
        """Forget the client and revoke every token issued to it."""

    def save_auth_code(self, code: AuthCode) -> None:
        """Keep a new authorization code, unused."""

    def redeem_auth_code(self, code_hash: str) -> AuthCode | None:
        """Mark the code used and return it as it was before (``used`` tells a replay);
        ``None`` for an unknown code."""

    def save_oauth_tokens(self, tokens: Sequence[IssuedToken]) -> None:
        """Keep issued tokens, not revoked, all or none."""

    def get_oauth_token(self, token_hash: str) -> IssuedToken | None:
        """The token with this hash, revoked or not."""

    def user_for_oauth_token(self, token_hash: str) -> tuple[IssuedToken, User] | None:
        """The token with this hash and the user it was issued to."""

    def spend_refresh_token(self, token_hash: str) -> IssuedToken | None:
        """Revoke a refresh token and return it as it was before (rotation: ``revoked``
        tells a replay); ``None`` if there is no refresh token with this hash."""

    def revoke_oauth_token(self, token_hash: str) -> None:
        """Revoke one token; an unknown hash changes nothing."""

    def revoke_grant(self, grant_id: str) -> list[str]:
        """Revoke every token of one login; return their hashes (to drop from caches)."""

    def reset_password(self, user_id: str, password_hash: str | None) -> list[str]:
        """Set the user's password hash and end every OAuth login of theirs, in one
        transaction: every token issued to them, by any client, is revoked and every
        code of theirs forgotten (an unredeemed one is then unknown), as is every
        device grant they decided. Returns the hashes of the tokens that were live."""

    def save_device_grant(self, grant: DeviceGrant) -> bool:
        """Keep a new device grant as given; False (and nothing kept) when a grant with
        the same user code hash is already kept, so the caller makes another code."""

    def find_device_grant(self, user_code_hash: str) -> DeviceGrant | None:
        """The device grant with this user code hash, whatever its state."""

    def decide_device_grant(self, user_code_hash: str, user_id: str | None, approve: bool,
                            now: float) -> DeviceGrant | None:
        """Approve (or deny) a pending grant that has not expired at ``now``, by
        ``user_id`` (a denial may come from no one signed in), and return it as it is
        now; ``None`` when there is no such grant (unknown, expired, or decided
        already: a grant is decided once)."""

    def poll_device_grant(self, device_code_hash: str, client_id: str,
                          now: float) -> DeviceGrant | None:
        """Record a poll by ``client_id`` and return the grant as it was before it, in
        one transaction. A pending grant polled less than ``interval`` after its last
        poll has its interval raised by ``SLOW_DOWN_STEP``; an approved one becomes
        used (so two concurrent polls cannot both find it unused). A poll by another
        client changes nothing. ``None`` for an unknown device code."""

    def delete_device_grants(self, expired_before: float) -> int:
        """Forget grants that expired before ``expired_before``; return how many."""


@runtime_checkable
class CatalogueStore(Protocol):
    """What tasks run: functions, their containers, and the endpoints they run on."""

    def create_function(self, function: Function) -> None:
        """Keep a new function."""

    def get_function(self, function_id: str) -> Function | None:
        """The function, unless unknown or deleted."""

    def delete_function(self, function_id: str) -> None:
        """Soft delete: the function is no longer found, but tasks already queued for
        it still run."""

    def set_function_container(self, function_id: str, container_id: str | None) -> None:
        """Run the function in this container (``None``: in none)."""

    def search_functions(
        self, query: str, user_id: str, group_ids: Iterable[str], offset: int, limit: int
    ) -> tuple[list[Function], int]:
        """Functions the user may see (their own, public ones, those shared with one of
        ``group_ids``) whose name or description contains every word of ``query``,
        case-insensitively and literally (``%`` and ``_`` are not wildcards); a page
        of them, oldest first, and how many match in all."""

    def create_container(self, container: Container) -> None:
        """Keep a new container."""

    def get_container(self, container_id: str) -> Container | None:
        """The container, if known."""

    def save_endpoint(self, endpoint: Endpoint) -> None:
        """Create the endpoint, or update an existing one's owner, names, metadata,
        ``public`` and ``allowed_functions`` (its session, liveness, lock and
        ``created_at`` are kept)."""

    def get_endpoint(self, endpoint_id: str) -> Endpoint | None:
        """The endpoint, unless unknown or deleted."""

    def endpoint_id_taken(self, endpoint_id: str) -> bool:
        """True for every endpoint ever saved, deleted ones included: ids are not reused."""

    def list_endpoints(self, user_id: str, include_public: bool) -> list[Endpoint]:
        """The user's endpoints that are not deleted (and with ``include_public``, every
        public one), oldest first."""

    def delete_endpoint(self, endpoint_id: str, now: float, reason: str) -> None:
        """Soft delete; its tasks that have not ended fail now with ``reason`` as
        their exception (those of streamed groups go to the outbox)."""

    def lock_endpoint(self, endpoint_id: str, until: float) -> None:
        """Stop the endpoint until ``until``: drop its session and put the tasks it
        claimed back in the queue."""


@runtime_checkable
class TaskStore(Protocol):
    """The task queue: submission, reads, claims by endpoint sessions, results.

    A task is queued (:data:`QUEUED`), claimed by one session of its endpoint
    (:data:`RUNNING`), and ends once (:data:`TERMINAL_STATES`); a claimed task goes
    back to the queue when its endpoint starts a new session, is locked, or falls
    silent. An endpoint's queue is handed out in submission order.
    """

    def submit(
        self,
        owner_id: str,
        task_group_id: str,
        tasks: Sequence[tuple[str, NewTask]],
        options: TaskOptions,
        now: float,
        claimed: Mapping[str, tuple[str, list[str]]] | None = None,
        reports: Sequence[Report] = (),
        quota: Quota | None = None,
    ) -> Submitted:
        """Store ``(endpoint_id, task)`` pairs, queued, creating the task group if new.

        ``claimed`` maps endpoint ids to a waiting claim's session and the ids of the
        tasks already handed to it: those are stored as claimed by that session if it
        is still the endpoint's, else queued like the others (and the endpoint is in
        :attr:`Submitted.stale`). ``reports`` are recorded in the same transaction
        (as :meth:`record_reports`), which saves a commit. A task group named by
        another user before is no obstacle: each user's tasks in a group are theirs
        alone, so a group id tells nothing of anyone else. Raises
        :class:`QuotaExceeded`, storing nothing, if the owner's unfinished tasks or
        stored characters would pass ``quota``, and :class:`EndpointGone` if an
        endpoint is deleted, checked in the transaction so that a deletion committed
        by another process meanwhile cannot leave tasks queued on an endpoint that
        will never run them. The store keeps each owner's usage
        (:meth:`usage`) in the transactions that change it, so the check reads no task.
        """

    def get_task_group_owner(self, task_group_id: str) -> str | None:
        """The id of the user who made the task group, if it exists (who made it
        gives no access: see :meth:`task_group_tasks`)."""

    def get_task(self, task_id: str) -> Task | None:
        """The task, whoever owns it."""

    def get_tasks(self, task_ids: Iterable[str]) -> list[Task]:
        """The known tasks among ``task_ids``, each once, in no particular order."""

    def finished_tasks(self, task_ids: Iterable[str], owner_id: str) -> list[Task]:
        """The owner's tasks among ``task_ids`` that have ended (for the wait long-poll)."""

    def task_endpoints(self, task_ids: Iterable[str], owner_id: str) -> set[str]:
        """The endpoints the owner's tasks among ``task_ids`` were submitted to."""

    def task_group_tasks(self, task_group_id: str, owner_id: str) -> list[Task]:
        """The owner's tasks in the task group, in submission order."""

    def count_outstanding(self, endpoint_id: str) -> int:
        """How many of the endpoint's tasks have not ended (queued or claimed)."""

    def prune_finished(self, before: float, owner_id: str | None = None) -> int:
        """Delete the tasks that ended before ``before`` (of ``owner_id`` only, if
        given), with their payloads and results, and take them off their owners'
        usage; how many went. Unfinished tasks are never deleted."""

    def usage(self, owner_id: str) -> tuple[int, int]:
        """The owner's unfinished tasks and stored characters (payloads, results and
        exceptions), as the quotas count them."""

    def claim(
        self, endpoint_id: str, session: str, max_tasks: int, now: float,
        forward: Callable[[list[ClaimedTask]], object] | None = None,
    ) -> list[ClaimedTask]:
        """Take up to ``max_tasks`` queued tasks for ``session``, oldest first, each
        with its payload after its function's code. A new session first requeues
        everything claimed under the endpoint's older sessions, and becomes the
        endpoint's. Concurrent claims never get the same task.

        ``forward``, if given, is called with the tasks taken *before* the claim
        commits (holding their rows where the database locks rows): if it raises,
        nothing is claimed and the error propagates. The service forwards tasks to
        an AMQP queue so: a crash before the commit leaves them queued, to be
        forwarded again (at least once). Such a claim does not mark the endpoint
        seen: the forwarder is not the endpoint."""

    def endpoints_in_session(self, session: str) -> list[str]:
        """The ids of the endpoints (not deleted) whose current session is ``session``."""

    def heartbeat(
        self, endpoint_id: str, session: str, details: dict[str, Any], now: float
    ) -> int:
        """Record liveness (seen at ``now``, with ``session``) and load (``details``,
        kept as the endpoint's ``heartbeat``); a new session requeues the older
        sessions' tasks. Returns how many went back to the queue."""

    def record_reports(self, reports: Sequence[Report]) -> list[RecordedOutcomes]:
        """Record each report's results, all in one transaction, and mark each
        reporting endpoint seen (``last_seen`` may lag ``now`` by up to a second).

        A result is recorded once: an outcome for a task that has ended (or ended
        earlier in the same report) is a duplicate; one for a task that is unknown
        or not its endpoint's is rejected. Returns one :class:`RecordedOutcomes` per
        report, in order, with the tasks recorded as they are now stored. The ended
        tasks of streamed groups (:meth:`stream_group`) get outbox rows in the same
        transaction (:attr:`RecordedOutcomes.streamed` says so).
        """

    def stream_group(self, task_group_id: str, owner_id: str, now: float) -> bool:
        """Mark the task group *streamed* (making it, ``owner_id``'s, if new): from now
        on each of the owner's tasks in it that ends (reported, or failed by the
        service) gets a row in the result outbox, in the transaction that ends it.
        False, marking nothing, when the group is another user's."""

    def group_streamed(self, task_group_id: str, owner_id: str) -> bool:
        """Whether the task group is ``owner_id``'s and streamed."""

    def drain_outbox(self, limit: int, publish: Callable[[list[Task]], object]) -> int:
        """Take up to ``limit`` outbox rows, oldest first, that no concurrent drain
        holds; call ``publish`` with their ended tasks (those still stored) and delete
        the rows only once ``publish`` has returned (where the database locks rows, in
        the transaction that took them): if it raises, the rows stay and the error
        propagates. How many rows went."""

    def cancel_tasks(self, owner_id: str, task_ids: Sequence[str], reason: str,
                     now: float) -> Cancelled:
        """End the owner's unfinished tasks among ``task_ids`` as :data:`CANCELLED`, in
        one transaction: ``reason`` is their exception, ``now`` their completion time;
        they leave the owner's unfinished usage (``reason`` counts as stored
        characters, as a failure's exception does) and those of streamed groups go to
        the outbox. A queued task leaves the queue for good: a concurrent claim either
        took it first (it is then cancelled while claimed) or never gets it. A task
        cancelled while claimed gets a notice for its endpoint (:meth:`take_cancels`).

        One :class:`CancelAnswer` per distinct id, in order: a task that had ended is
        left as it was (:data:`ALREADY_FINISHED`), and an unknown id or another
        user's task is :data:`NOT_FOUND`. A result reported later for a cancelled task
        is a duplicate (:meth:`record_reports`): it changes nothing."""

    def take_cancels(self, endpoint_id: str, limit: int = 1000) -> list[str]:
        """The ids of up to ``limit`` tasks cancelled while the endpoint held them,
        oldest first, not taken before: each is taken once (the endpoint stops them)."""

    def requeue_stale(self, cutoff: float, alive: Collection[str] = ()) -> list[str]:
        """Requeue the claimed tasks of endpoints not seen since ``cutoff``, except
        those known to be ``alive`` (waiting in a claim right now); return the
        endpoints requeued."""

    def release(self, endpoint_id: str, session: str, task_ids: Sequence[str]) -> int:
        """Put back in the queue those of ``task_ids`` that ``session`` still holds
        unfinished (handed to a claim that never answered with them); how many."""


@runtime_checkable
class BrowseStore(Protocol):
    """What the dashboard shows people: reads only, paged, none on the hot path."""

    def list_tasks(self, owner_id: str, where: TaskFilter, limit: int,
                   before: int | None = None) -> TaskPage:
        """Up to ``limit`` of the owner's tasks that match ``where``, newest first,
        older than the cursor ``before`` (from a previous page's ``next_before``)."""

    def count_tasks(self, owner_id: str, where: TaskFilter) -> dict[str, int]:
        """How many of the owner's newest 1,000 tasks that match ``where`` are in each
        status (only statuses that occur)."""

    def ended_since(self, owner_id: str, since: float) -> list[tuple[str, float]]:
        """``(endpoint id, completion time)`` of the owner's newest 1,000 tasks that
        ended at or after ``since``."""

    def endpoint_load(self, endpoint_id: str, owner_id: str | None) -> dict[str, int]:
        """The endpoint's unfinished tasks by status (of ``owner_id`` only, if given)."""

    def claimed_at(self, task_id: str) -> float | None:
        """When the task was last handed to an endpoint, if ever."""

    def list_memberships(self) -> list[tuple[str, str, str]]:
        """``(group name, member name, group id)`` for every membership, by group and
        member; a group without members appears once with an empty member name."""


class BlobIndexStore(Protocol):
    """The service's record of the blobs in its blob store (``farcall_service.blobs``):
    whose each is and which task it belongs to."""

    def add_blob(self, blob: BlobRecord) -> None:
        """Record a blob just stored."""

    def get_blob(self, key: str) -> BlobRecord | None:
        """The record of a blob, or None."""

    def attach_blobs(self, owner_id: str, pairs: Sequence[tuple[str, str]]) -> int:
        """Give each ``(key, task_id)`` blob its task, where the blob is ``owner_id``'s
        and has none yet; return how many were attached."""

    def unreferenced_blobs(self, unattached_before: float, limit: int) -> list[str]:
        """Up to ``limit`` keys of blobs to delete: those whose task no longer exists,
        and those given no task that were made before ``unattached_before``."""

    def forget_blobs(self, keys: Iterable[str]) -> None:
        """Remove these records (their blobs have been deleted)."""


@runtime_checkable
class RetentionStore(Protocol):
    """Ended tasks are deleted once kept long enough (``farcall_service.purging``).

    The purge goes in small batches, each its own short transaction, so it never
    holds a write lock long; several service processes may purge one database at
    once without getting in each other's way.
    """

    def purge_ended(self, before: float, limit: int, after: int = 0) -> PurgeBatch:
        """Look at up to ``limit`` tasks in submission order past the cursor ``after``
        (0: from the oldest) and delete those that ended (in any terminal state)
        before ``before``, with their payloads and results, taking them off their
        owners' usage in the same transaction. Unfinished tasks are never deleted;
        tasks a concurrent purge holds are left to it. Call again with
        :attr:`PurgeBatch.after` until :attr:`PurgeBatch.done`."""


@runtime_checkable
class Store(IdentityStore, OAuthStore, CatalogueStore, TaskStore, BrowseStore, RetentionStore,
            BlobIndexStore, Protocol):
    """Everything the service persists."""

    @property
    def one_writer(self) -> bool:
        """Whether the database takes one writing transaction at a time (SQLite): a
        report then waits briefly to share a submission's commit (``recording``)."""

    def close(self) -> None:
        """Release connections and files; the store is not used afterwards."""
