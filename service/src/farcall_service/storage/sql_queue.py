"""The task queue's statements, built once, and the requeue that claims, heartbeats
and endpoint locks share.

Building a statement costs more than running it on SQLite, so the hot path's are
module constants, run through :class:`~farcall_service.storage.prepared.Prepared`.
Bind parameter names differ from the columns they set, as SQLAlchemy reserves those
names for its own parameters. Queries use only portable constructs; ``FOR UPDATE
SKIP LOCKED`` applies on databases that have it and compiles away on SQLite. Every
statement on the tasks table finds its rows through an index
(``test_no_task_statement_reads_every_task``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from farcall_service.storage import schema as t
from farcall_service.storage.records import CANCELLED, QUEUED, RUNNING, TERMINAL_STATES, Task

if TYPE_CHECKING:
    from farcall_service.storage.prepared import Prepared

#: Seconds ``last_seen`` may lag a report: an endpoint that reports all the time
#: then has its row rewritten twice a second, not in every transaction of results
#: (``TaskSql._touch``).
SEEN_GRANULARITY = 1.0

_b = sa.bindparam
_task_c, _fn_c, _ep_c = t.tasks.c, t.functions.c, t.endpoints.c

TASK_COLUMNS = (
    _task_c.id,
    _task_c.owner_id,
    _task_c.function_id,
    _task_c.endpoint_id,
    _task_c.task_group_id,
    _task_c.status,
    _task_c.created_at,
    _task_c.result,
    _task_c.exception,
    _task_c.exception_data,
    _task_c.details,
    _task_c.completion_t,
)

GROUP_OWNER = sa.select(t.task_groups.c.owner_id).where(t.task_groups.c.id == _b("group_id"))
NEW_GROUP = sa.insert(t.task_groups)
#: PostgreSQL's, for submissions that may make one group at the same time.
NEW_GROUP_UNLESS_MADE = postgresql.insert(t.task_groups).on_conflict_do_nothing(
    index_elements=[t.task_groups.c.id])
NEW_TASK = sa.insert(t.tasks)
ENDPOINT_SESSION = sa.select(_ep_c.session_id).where(_ep_c.id == _b("endpoint_id"))
#: A submission's look at each of its endpoints. On PostgreSQL its key-share lock
#: lets claims, heartbeats and reports write the row meanwhile, but not a deletion,
#: which locks the row ``FOR UPDATE`` first (``LOCK_ENDPOINT_ROW``): the deletion waits
#: for the submission's commit (and then fails its tasks), or the submission waits
#: for the deletion's and sees it.
ENDPOINT_STATE = (sa.select(_ep_c.session_id, _ep_c.deleted).where(_ep_c.id == _b("endpoint_id"))
                  .with_for_update(read=True, key_share=True))
#: The same look for an endpoint whose tasks the submission stores as claimed by a
#: session: a share lock, so a new session cannot take over (and requeue what the
#: old one holds) until this commit is visible, which would leave these tasks to a
#: session nobody claims with any more.
ENDPOINT_STATE_SHARED = (sa.select(_ep_c.session_id, _ep_c.deleted)
                         .where(_ep_c.id == _b("endpoint_id")).with_for_update(read=True))
LOCK_ENDPOINT_ROW = sa.select(_ep_c.id).where(_ep_c.id == _b("endpoint_id")).with_for_update()
ENTER_SESSION = (
    sa.update(t.endpoints).where(_ep_c.id == _b("b_endpoint_id"))
    .values(session_id=_b("b_session"), last_seen=_b("b_now"))
)
ENTER_SESSION_UNSEEN = (
    sa.update(t.endpoints).where(_ep_c.id == _b("b_endpoint_id"))
    .values(session_id=_b("b_session"))
)
TOUCH_ENDPOINT = (
    sa.update(t.endpoints)
    .where(_ep_c.id == _b("b_endpoint_id"),
           sa.or_(_ep_c.last_seen.is_(None), _ep_c.last_seen < _b("b_stale")))
    .values(last_seen=_b("b_now"))
)
FIRST_QUEUED = sa.select(_task_c.seq).where(
    _task_c.endpoint_id == _b("endpoint_id"), _task_c.status == QUEUED, t.UNFINISHED).limit(1)
QUEUED_FOR_CLAIM = (
    sa.select(_task_c.seq, _task_c.id, _task_c.function_id, _task_c.payload, _task_c.options,
              _task_c.owner_id, _fn_c.code, _fn_c.container_id)
    .join(t.functions, _fn_c.id == _task_c.function_id)
    .where(_task_c.endpoint_id == _b("endpoint_id"), _task_c.status == QUEUED, t.UNFINISHED)
    .order_by(_task_c.seq)
    .limit(_b("max_tasks"))
    .with_for_update(skip_locked=True, of=t.tasks)
)
MARK_CLAIMED = (
    sa.update(t.tasks).where(_task_c.seq.in_(_b("seqs", expanding=True)))
    .values(status=RUNNING, claim_session=_b("b_session"), claimed_at=_b("b_now"))
)
# The endpoint is compared in Python: given ``endpoint_id = ?`` as well, SQLite's
# planner walks the endpoint's whole queue index instead of looking up the ids, and
# recording results slowed down with every task the endpoint had ever run.
_group_c = t.task_groups.c
#: Whether a task's result goes to the outbox: its group is streamed, and the group's
#: owner is the task's (another user's tasks in that group id are no part of it).
STREAMED = sa.and_(_group_c.streamed, _group_c.owner_id == _task_c.owner_id)
REPORTED_TASKS = (
    sa.select(_task_c.id, _task_c.endpoint_id, _task_c.status, _task_c.owner_id,
              _task_c.function_id, _task_c.task_group_id, _task_c.created_at,
              STREAMED.label("streamed"))
    .join(t.task_groups, _group_c.id == _task_c.task_group_id)
    .where(_task_c.id.in_(_b("ids", expanding=True)))
    .with_for_update(of=t.tasks)
)
OUTBOX_ADD = sa.insert(t.result_outbox)
#: The tasks a cancel names, locked until it commits (a claim holding one makes it
#: wait, then it reads the task claimed).
CANCELLING = (
    sa.select(_task_c.id, _task_c.endpoint_id, _task_c.status, _task_c.owner_id,
              _task_c.function_id, _task_c.task_group_id, _task_c.created_at,
              _task_c.claim_session, STREAMED.label("streamed"))
    .join(t.task_groups, _group_c.id == _task_c.task_group_id)
    .where(_task_c.id.in_(_b("ids", expanding=True)))
    .with_for_update(of=t.tasks)
)
CANCEL_TASK = (
    sa.update(t.tasks)
    .where(_task_c.id == _b("b_id"), t.UNFINISHED)
    .values(status=CANCELLED, exception=_b("b_exception"), completion_t=_b("b_now"))
)
CANCEL_NOTICE = sa.insert(t.task_cancels)
_cancel_c = t.task_cancels.c
CANCEL_NOTICES = (sa.select(_cancel_c.task_id).where(_cancel_c.endpoint_id == _b("endpoint_id"))
                  .order_by(_cancel_c.created_at, _cancel_c.task_id).limit(_b("limit")))
TASKS = sa.select(*TASK_COLUMNS).where(_task_c.id.in_(_b("ids", expanding=True)))
# By id alone, the owner checked on the rows: with ``owner_id = :owner`` in the query,
# PostgreSQL may walk ``ix_tasks_owner`` (every task of the owner) instead of the
# primary key for a few ids, and a wait then costs more with every task stored.
FINISHED_TASKS = sa.select(*TASK_COLUMNS).where(
    _task_c.id.in_(_b("ids", expanding=True)),
    _task_c.status.in_(TERMINAL_STATES),
)
TASK_ENDPOINTS = sa.select(_task_c.endpoint_id, _task_c.owner_id).where(
    _task_c.id.in_(_b("ids", expanding=True)))
RECORD_OUTCOME = (
    sa.update(t.tasks)
    .where(_task_c.id == _b("b_id"))
    .values(
        status=_b("b_status"),
        result=_b("b_result"),
        exception=_b("b_exception"),
        exception_data=_b("b_exception_data"),
        details=_b("b_details", type_=sa.JSON),
        completion_t=_b("b_completion_t"),
    )
)

_u = t.usage.c


def _usage_add(insert: Any) -> Any:
    """Take ``b_tasks`` more unfinished tasks and ``b_bytes`` more characters into a
    user's usage, making its row if new; returns the new figures."""
    ins = insert(t.usage).values(user_id=_b("b_user"), unfinished_tasks=_b("b_tasks"),
                                 stored_bytes=_b("b_bytes"))
    return ins.on_conflict_do_update(
        index_elements=[_u.user_id],
        set_={"unfinished_tasks": _u.unfinished_tasks + ins.excluded.unfinished_tasks,
              "stored_bytes": _u.stored_bytes + ins.excluded.stored_bytes},
    ).returning(_u.unfinished_tasks, _u.stored_bytes)


#: :func:`_usage_add` for each database that has ``ON CONFLICT``.
USAGE_ADD = {"sqlite": _usage_add(sqlite.insert), "postgresql": _usage_add(postgresql.insert)}
#: The same for users who have a row (every owner of a task has one).
USAGE_CHANGE = (
    sa.update(t.usage).where(_u.user_id == _b("b_user"))
    .values(unfinished_tasks=_u.unfinished_tasks + _b("b_tasks"),
            stored_bytes=_u.stored_bytes + _b("b_bytes"))
)
USAGE = sa.select(_u.unfinished_tasks, _u.stored_bytes).where(_u.user_id == _b("user_id"))


def change_usage(hot: Prepared, conn: sa.Connection,
                 changes: Mapping[str, tuple[int, int] | list[int]]) -> None:
    """Add ``(tasks, characters)`` to each user's usage row, in the order of user ids:
    PostgreSQL locks the rows, so transactions that change several never deadlock."""
    for user_id in sorted(changes):
        tasks, chars = changes[user_id]
        hot.run(conn, USAGE_CHANGE, {"b_user": user_id, "b_tasks": tasks, "b_bytes": chars})


def fail_unfinished(hot: Prepared, conn: sa.Connection, reason: str, now: float,
                    *where: Any) -> None:
    """Fail the unfinished tasks matching ``where`` with ``reason``, and take them off
    their owners' unfinished usage (their ``reason`` is stored in its place); those of
    streamed groups go to the outbox."""
    ending = (*where, t.UNFINISHED)
    # Their results go out on their groups' streams, as reported ones do.
    conn.execute(t.result_outbox.insert().from_select(
        ["task_id", "created_at"],
        sa.select(_task_c.id, sa.literal(now, sa.Float))
        .join(t.task_groups, _group_c.id == _task_c.task_group_id)
        .where(*ending, STREAMED)))
    owners = conn.execute(sa.select(_task_c.owner_id, sa.func.count())
                          .where(*ending).group_by(_task_c.owner_id)).all()
    conn.execute(sa.update(t.tasks).where(*ending)
                 .values(status="failed", exception=reason, completion_t=now))
    change_usage(hot, conn, {owner: (-count, count * len(reason)) for owner, count in owners})


def requeue(conn: sa.Connection, *where: Any) -> int:
    """Put the claimed tasks matching ``where`` back in the queue; how many went."""
    result = conn.execute(
        sa.update(t.tasks)
        .where(_task_c.status == RUNNING, t.UNFINISHED, *where)
        .values(status=QUEUED, claim_session=None, claimed_at=None)
    )
    return int(result.rowcount)


def enter_session(conn: sa.Connection, endpoint_id: str, session: str, now: float,
                  seen: bool = True) -> int:
    """Mark the endpoint alive (unless not ``seen``); a new session takes over and
    frees the old one's tasks. Returns how many tasks went back to the queue.

    The endpoint's row is written before its tasks, as in recording results and
    locking an endpoint: on PostgreSQL, where these take row locks, one order
    everywhere means two of them cannot deadlock.
    """
    row = conn.execute(ENDPOINT_SESSION, {"endpoint_id": endpoint_id}).first()
    if seen:
        conn.execute(ENTER_SESSION, {"b_endpoint_id": endpoint_id, "b_session": session,
                                     "b_now": now})
    elif row is None or row.session_id != session:
        conn.execute(ENTER_SESSION_UNSEEN, {"b_endpoint_id": endpoint_id, "b_session": session})
    if row is None or row.session_id == session:
        return 0
    return requeue(
        conn,
        _task_c.endpoint_id == endpoint_id,
        sa.or_(_task_c.claim_session.is_(None), _task_c.claim_session != session),
    )


def chunks(items: list[str], size: int = 500) -> Iterator[list[str]]:
    """Slices small enough for an ``IN (...)`` on every database."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def task_from_row(row: Any) -> Task:
    return Task(
        id=row.id,
        owner_id=row.owner_id,
        function_id=row.function_id,
        endpoint_id=row.endpoint_id,
        task_group_id=row.task_group_id,
        status=row.status,
        created_at=row.created_at,
        result=row.result,
        exception=row.exception,
        exception_data=row.exception_data,
        details=row.details,
        completion_t=row.completion_t,
    )
