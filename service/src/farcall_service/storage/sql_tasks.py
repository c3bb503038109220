"""The SQL store's :class:`~farcall_service.storage.interface.TaskStore`: the queue
from submission to recorded result.

The hot path (submit, claim, report) runs its statements through
:class:`~farcall_service.storage.prepared.Prepared`, on SQLite's own connection; the
statements are built once in :mod:`~farcall_service.storage.sql_queue`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from farcall_service.storage import schema as t
from farcall_service.storage import sql_queue as q
from farcall_service.storage.records import (
    ALREADY_FINISHED,
    CANCELLED,
    CANCELLED_NOW,
    NOT_FOUND,
    QUEUED,
    RUNNING,
    TERMINAL_STATES,
    CancelAnswer,
    Cancelled,
    ClaimedTask,
    EndpointGone,
    NewTask,
    Outcome,
    Quota,
    QuotaExceeded,
    RecordedOutcomes,
    Report,
    Submitted,
    Task,
    TaskOptions,
)
from farcall_service.storage.sql_catalogue import container_from_row
from farcall_service.storage.sql_engine import SqlConnections


def _check_quota(quota: Quota, totals: Any, adding: list[int]) -> None:
    """Raise :class:`QuotaExceeded` if the submitter's usage ``totals`` (tasks,
    characters) with ``adding`` is over ``quota``; it undoes the whole transaction."""
    now_tasks, now_chars = totals
    for which, limit, total, added in (
            ("unfinished_tasks", quota.unfinished_tasks, now_tasks, adding[0]),
            ("stored_bytes", quota.stored_bytes, now_chars, adding[1])):
        if limit and added and total > limit:
            raise QuotaExceeded(which, limit, total - added, added)


#: Endpoints whose last touch a store remembers at most.
SEEN_KEPT = 10_000


class TaskSql(SqlConnections):
    """Every task's state lives in one row; a claim or a result is one transaction."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        #: One outbox drain at a time on SQLite (``drain_outbox``).
        self._drain_lock = threading.Lock()
        #: Endpoint -> when a report here last brought its ``last_seen`` up to date.
        self._seen: dict[str, float] = {}

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
        opts = {
            "resource_specification": options.resource_specification,
            "result_serializers": options.result_serializers,
            "user_endpoint_config": options.user_endpoint_config,
        }
        stale: set[str] = set()
        adding = [len(tasks), sum(len(task.payload) for _eid, task in tasks)]
        with self._write() as conn, self._hot.pipelined(conn):
            self._make_group(conn, task_group_id, owner_id, now)
            # Tasks handed to a waiting claim are stored as claimed by its session, if
            # that session is still the endpoint's (a newer one would never ask for them).
            claimed = claimed or {}
            claimed_by: dict[str, str] = {}
            looks = {
                endpoint_id: self._hot.query(
                    conn, q.ENDPOINT_STATE_SHARED if claimed.get(endpoint_id, ("", []))[1]
                    else q.ENDPOINT_STATE, {"endpoint_id": endpoint_id})
                for endpoint_id in dict.fromkeys(eid for eid, _task in tasks)
            }
            # With no report to record (whose owners' rows come first, in order), the
            # submitter's usage is charged with the looks: one round trip for both.
            charged = None if reports else self._hot.query(
                conn, q.USAGE_ADD[self.engine.dialect.name],
                {"b_user": owner_id, "b_tasks": adding[0], "b_bytes": adding[1]})
            for endpoint_id, look in looks.items():
                session, task_ids = claimed.get(endpoint_id, ("", []))
                found = look()
                state = found[0] if found else None
                if state is None or state.deleted:
                    raise EndpointGone(endpoint_id)
                if state.session_id == session and session:
                    claimed_by.update(dict.fromkeys(task_ids, session))
                elif task_ids:
                    stale.add(endpoint_id)
            if tasks:
                self._hot.run(
                    conn,
                    q.NEW_TASK,
                    [
                        {
                            "id": task.id,
                            "owner_id": owner_id,
                            "function_id": task.function_id,
                            "endpoint_id": endpoint_id,
                            "task_group_id": task_group_id,
                            "payload": task.payload,
                            "options": opts,
                            "status": RUNNING if task.id in claimed_by else QUEUED,
                            "claim_session": claimed_by.get(task.id),
                            "claimed_at": now if task.id in claimed_by else None,
                            "created_at": now,
                        }
                        for endpoint_id, task in tasks
                    ],
                )
            usage: dict[str, list[int]] = {}
            recorded = [self._record(conn, report, usage) for report in reports]
            if charged is None:
                self._charge(conn, usage, owner_id, adding, quota or Quota())
            else:
                _check_quota(quota or Quota(), charged()[0], adding)
        return Submitted(stale, recorded)

    def _charge(self, conn: sa.Connection, usage: dict[str, list[int]], owner_id: str,
                adding: list[int], quota: Quota) -> None:
        """Apply the transaction's changes of usage, the submitter's with its quota
        check (raising :class:`QuotaExceeded` undoes the whole transaction).

        Last in the transaction and in the order of user ids, so two transactions
        that both change several users' rows (PostgreSQL locks them) cannot deadlock.
        """
        before = usage.pop(owner_id, [0, 0])
        tasks, chars = before[0] + adding[0], before[1] + adding[1]
        # The others' rows first, then the submitter's (its quota check): still in
        # user-id order against another transaction, which takes the same rows.
        q.change_usage(self._hot, conn, {u: c for u, c in usage.items() if u < owner_id})
        totals = self._hot.rows(
            conn, q.USAGE_ADD[self.engine.dialect.name],
            {"b_user": owner_id, "b_tasks": tasks, "b_bytes": chars})[0]
        q.change_usage(self._hot, conn, {u: c for u, c in usage.items() if u > owner_id})
        _check_quota(quota, totals, adding)

    def prune_finished(self, before: float, owner_id: str | None = None) -> int:
        c = t.tasks.c
        # An administrator's command, rare: it reads the ended tasks without an index.
        ended = [c.status.in_(TERMINAL_STATES), c.completion_t < before]
        if owner_id is not None:
            ended.append(c.owner_id == owner_id)
        size = (sa.func.length(c.payload) + sa.func.coalesce(sa.func.length(c.result), 0)
                + sa.func.coalesce(sa.func.length(c.exception), 0)
                + sa.func.coalesce(sa.func.length(c.exception_data), 0))
        with self._write() as conn:
            owners = conn.execute(
                sa.select(c.owner_id, sa.func.sum(size)).where(*ended).group_by(c.owner_id)
            ).all()
            deleted = conn.execute(sa.delete(t.tasks).where(*ended)).rowcount
            q.change_usage(self._hot, conn, {user: (0, -int(chars)) for user, chars in owners})
            if owner_id is None:  # notices no claim took (a deleted endpoint's) go too
                conn.execute(sa.delete(t.task_cancels).where(t.task_cancels.c.created_at < before))
        return int(deleted)

    def usage(self, owner_id: str) -> tuple[int, int]:
        with self._read() as conn:
            row = conn.execute(q.USAGE, {"user_id": owner_id}).first()
        return (int(row.unfinished_tasks), int(row.stored_bytes)) if row else (0, 0)

    def _make_group(self, conn: sa.Connection, group_id: str, owner_id: str,
                    now: float) -> None:
        """Make the task group, ``owner_id``'s, if it is new. Whoever made it, each
        user's tasks in a group are theirs alone (:meth:`task_group_tasks`)."""
        values = {"id": group_id, "owner_id": owner_id, "created_at": now}
        if not self._sqlite:
            # A concurrent submission may be making the same group: this insert waits
            # for it to commit, then leaves its row alone (as it leaves an old one).
            self._hot.run(conn, q.NEW_GROUP_UNLESS_MADE, values)
            return
        # The write lock keeps out whoever else could make it now.
        if self._hot.first(conn, q.GROUP_OWNER, {"group_id": group_id}) is None:
            self._hot.run(conn, q.NEW_GROUP, values)


    def get_task_group_owner(self, task_group_id: str) -> str | None:
        with self._read() as conn:
            row = conn.execute(q.GROUP_OWNER, {"group_id": task_group_id}).first()
        return row.owner_id if row else None

    def get_task(self, task_id: str) -> Task | None:
        found = self.get_tasks([task_id])
        return found[0] if found else None

    def get_tasks(self, task_ids: Iterable[str]) -> list[Task]:
        ids = list(dict.fromkeys(task_ids))
        found: list[Task] = []
        with self._read() as conn:
            for chunk in q.chunks(ids):
                found.extend(q.task_from_row(row) for row in conn.execute(q.TASKS, {"ids": chunk}))
        return found

    def finished_tasks(self, task_ids: Iterable[str], owner_id: str) -> list[Task]:
        found: list[Task] = []
        with self._read() as conn:
            for chunk in q.chunks(list(dict.fromkeys(task_ids))):
                rows = conn.execute(q.FINISHED_TASKS, {"ids": chunk})
                found.extend(q.task_from_row(row) for row in rows if row.owner_id == owner_id)
        return found

    def task_endpoints(self, task_ids: Iterable[str], owner_id: str) -> set[str]:
        found: set[str] = set()
        with self._read() as conn:
            for chunk in q.chunks(list(dict.fromkeys(task_ids))):
                found.update(row.endpoint_id for row in conn.execute(
                    q.TASK_ENDPOINTS, {"ids": chunk}) if row.owner_id == owner_id)
        return found

    def task_group_tasks(self, task_group_id: str, owner_id: str) -> list[Task]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(*q.TASK_COLUMNS)
                .where(t.tasks.c.task_group_id == task_group_id,
                       t.tasks.c.owner_id == owner_id)
                .order_by(t.tasks.c.seq)
            )
            return [q.task_from_row(row) for row in rows]

    # -- result streams ---------------------------------------------------------------

    def stream_group(self, task_group_id: str, owner_id: str, now: float) -> bool:
        g = t.task_groups.c
        with self._write() as conn:
            self._make_group(conn, task_group_id, owner_id, now)
            marked = conn.execute(sa.update(t.task_groups)
                                  .where(g.id == task_group_id, g.owner_id == owner_id)
                                  .values(streamed=True))
            return bool(marked.rowcount)

    def group_streamed(self, task_group_id: str, owner_id: str) -> bool:
        g = t.task_groups.c
        with self._read() as conn:
            found = conn.execute(sa.select(g.streamed).where(
                g.id == task_group_id, g.owner_id == owner_id)).scalar()
        return bool(found)

    def drain_outbox(self, limit: int, publish: Callable[[list[Task]], object]) -> int:
        with self._read() as conn:  # most sweeps find nothing: no write lock for that
            if conn.execute(sa.select(t.result_outbox.c.task_id).limit(1)).first() is None:
                return 0
        if self._sqlite:
            # SQLite's write lock stops every writer: it is not held across the
            # broker's round trip. One drain at a time here instead (at least once
            # holds either way; other processes on one SQLite file may repeat one).
            with self._drain_lock:
                with self._read() as conn:
                    ids, tasks = self._outbox_rows(conn, limit)
                if tasks:
                    publish(tasks)
                with self._write() as conn:
                    self._outbox_delete(conn, ids)
            return len(ids)
        with self._write() as conn:
            ids, tasks = self._outbox_rows(conn, limit)
            if tasks:
                publish(tasks)  # raising rolls back: the rows stay for the next try
            self._outbox_delete(conn, ids)
        return len(ids)

    def _outbox_rows(self, conn: sa.Connection, limit: int) -> tuple[list[str], list[Task]]:
        """The oldest ``limit`` outbox rows no other transaction holds (locked until
        the commit, where the database locks rows), and the tasks still stored of them:
        a task pruned since has nothing left to publish, its row just goes."""
        o = t.result_outbox.c
        ids = list(conn.execute(
            sa.select(o.task_id).order_by(o.created_at, o.task_id).limit(limit)
            .with_for_update(skip_locked=True)).scalars())
        found: dict[str, Task] = {}
        for chunk in q.chunks(ids):
            found.update((row.id, q.task_from_row(row))
                         for row in conn.execute(q.TASKS, {"ids": chunk}))
        return ids, [found[task_id] for task_id in ids if task_id in found]

    @staticmethod
    def _outbox_delete(conn: sa.Connection, ids: list[str]) -> None:
        for chunk in q.chunks(ids):
            conn.execute(sa.delete(t.result_outbox).where(t.result_outbox.c.task_id.in_(chunk)))

    # -- hand-off -------------------------------------------------------------------

    def claim(
        self, endpoint_id: str, session: str, max_tasks: int, now: float,
        forward: Callable[[list[ClaimedTask]], object] | None = None,
    ) -> list[ClaimedTask]:
        # Most claims find nothing (they then wait for a submission to hand them work):
        # on SQLite a read says so without taking the write lock from a results
        # report. PostgreSQL has no such lock, and there a claim that reads first
        # makes two more round trips when it does find work (as one woken by another
        # process does): it goes straight to the transaction.
        if self._sqlite:
            with self._read() as conn:
                current = self._hot.first(conn, q.ENDPOINT_SESSION, {"endpoint_id": endpoint_id})
                queued = self._hot.first(conn, q.FIRST_QUEUED, {"endpoint_id": endpoint_id})
            if current is not None and current.session_id == session and queued is None:
                return []
        with self._write(durable=False) as conn:
            # A forwarder is not the endpoint: it does not make it seen.
            q.enter_session(conn, endpoint_id, session, now, seen=forward is None)
            rows = self._hot.rows(
                conn, q.QUEUED_FOR_CLAIM, {"endpoint_id": endpoint_id, "max_tasks": max_tasks}
            )
            if not rows:
                return []
            self._hot.run(conn, q.MARK_CLAIMED, {"seqs": [row.seq for row in rows],
                                                 "b_session": session, "b_now": now})
            container_ids = {row.container_id for row in rows if row.container_id}
            found: Iterable[Any] = (
                conn.execute(sa.select(t.containers).where(t.containers.c.id.in_(container_ids)))
                if container_ids
                else ()
            )
            containers = {row.id: container_from_row(row) for row in found}
            claimed = [
                ClaimedTask(
                    id=row.id,
                    function_id=row.function_id,
                    payload=row.code + row.payload,
                    options=_task_options(row.options),
                    container=containers.get(row.container_id) if row.container_id else None,
                    owner_id=row.owner_id,
                )
                for row in rows
            ]
            if forward is not None:
                forward(claimed)  # raising rolls back: the tasks stay queued
        return claimed

    def endpoints_in_session(self, session: str) -> list[str]:
        e = t.endpoints.c
        with self._read() as conn:
            return list(conn.execute(sa.select(e.id).where(
                e.session_id == session, e.deleted.is_(False)).order_by(e.id)).scalars())

    def heartbeat(
        self, endpoint_id: str, session: str, details: dict[str, Any], now: float
    ) -> int:
        with self._write(durable=False) as conn:
            requeued = q.enter_session(conn, endpoint_id, session, now)
            conn.execute(
                sa.update(t.endpoints)
                .where(t.endpoints.c.id == endpoint_id)
                .values(heartbeat=details)
            )
        return requeued

    def record_reports(self, reports: Sequence[Report]) -> list[RecordedOutcomes]:
        with self._write() as conn, self._hot.pipelined(conn):
            usage: dict[str, list[int]] = {}
            recorded = [self._record(conn, report, usage) for report in reports]
            q.change_usage(self._hot, conn, usage)
            return recorded

    def _record(self, conn: sa.Connection, report: Report,
                usage: dict[str, list[int]]) -> RecordedOutcomes:
        """Record one report; adds the change of each owner's usage to ``usage``."""
        endpoint_id, outcomes, now = report.endpoint_id, report.outcomes, report.now
        recorded: list[str] = []
        duplicates: list[str] = []
        rejected: list[str] = []
        self._touch(conn, endpoint_id, now)
        # One look at every reported task, then one executemany: a batch of results
        # costs two statements, not one per task. The write lock (and FOR UPDATE
        # where the database has it) keeps the look valid until the commit.
        states: dict[str, str] = {}
        found: dict[str, Any] = {}
        for chunk in q.chunks([o.task_id for o in outcomes]):
            for row in self._hot.rows(conn, q.REPORTED_TASKS, {"ids": chunk}):
                if row.endpoint_id == endpoint_id:
                    states[row.id] = row.status
                    found[row.id] = row
        fresh: list[Outcome] = []
        for outcome in outcomes:
            status = states.get(outcome.task_id)
            if status is None:
                rejected.append(outcome.task_id)
            elif status in TERMINAL_STATES:
                duplicates.append(outcome.task_id)
            else:
                states[outcome.task_id] = outcome.status  # a repeat in this batch
                fresh.append(outcome)
                recorded.append(outcome.task_id)
        if fresh:
            self._hot.run(conn, q.RECORD_OUTCOME, [
                {"b_id": o.task_id, "b_status": o.status, "b_result": o.result,
                 "b_exception": o.exception, "b_exception_data": o.exception_data,
                 "b_details": o.details, "b_completion_t": now}
                for o in fresh
            ])
        for o in fresh:
            change = usage.setdefault(found[o.task_id].owner_id, [0, 0])
            change[0] -= 1
            change[1] += (len(o.result or "") + len(o.exception or "")
                          + len(o.exception_data or ""))
        streamed = [o.task_id for o in fresh if found[o.task_id].streamed]
        if streamed:
            self._hot.run(conn, q.OUTBOX_ADD,
                          [{"task_id": task_id, "created_at": now} for task_id in streamed])
        finished = [
            Task(o.task_id, found[o.task_id].owner_id, found[o.task_id].function_id,
                 endpoint_id, found[o.task_id].task_group_id, o.status,
                 found[o.task_id].created_at, o.result, o.exception, o.details, now,
                 o.exception_data)
            for o in fresh
        ]
        return RecordedOutcomes(recorded, duplicates, rejected, finished, bool(streamed))

    def _touch(self, conn: sa.Connection, endpoint_id: str, now: float) -> None:
        """Keep the endpoint's ``last_seen`` within ``SEEN_GRANULARITY`` of its latest
        report: rewritten when older than half of it, and not even looked at when
        this process did so less than half of it ago. The statement was one of a
        report's few, and the row would not have changed anyway."""
        half = q.SEEN_GRANULARITY / 2
        if now - self._seen.get(endpoint_id, -half) < half:
            return
        if len(self._seen) >= SEEN_KEPT:
            self._seen.clear()
        self._seen[endpoint_id] = now
        self._hot.run(conn, q.TOUCH_ENDPOINT, {"b_endpoint_id": endpoint_id, "b_now": now,
                                               "b_stale": now - half})

    # -- cancellation ---------------------------------------------------------------

    def cancel_tasks(self, owner_id: str, task_ids: Sequence[str], reason: str,
                     now: float) -> Cancelled:
        ids = list(dict.fromkeys(task_ids))
        with self._write() as conn:
            found: dict[str, Any] = {}
            for chunk in q.chunks(ids):
                for row in self._hot.rows(conn, q.CANCELLING, {"ids": chunk}):
                    if row.owner_id == owner_id:
                        found[row.id] = row
            answers: list[CancelAnswer] = []
            ending: list[Any] = []
            for task_id in ids:
                row = found.get(task_id)
                if row is None:
                    answers.append(CancelAnswer(task_id, NOT_FOUND))
                elif row.status in TERMINAL_STATES:
                    answers.append(CancelAnswer(task_id, ALREADY_FINISHED, row.status,
                                                row.endpoint_id))
                else:
                    held = row.claim_session if row.status == RUNNING else None
                    answers.append(CancelAnswer(task_id, CANCELLED_NOW, row.status,
                                                row.endpoint_id, held))
                    ending.append(row)
            if not ending:
                return Cancelled(answers)
            self._hot.run(conn, q.CANCEL_TASK, [
                {"b_id": row.id, "b_exception": reason, "b_now": now} for row in ending])
            held_rows = [row for row in ending if row.status == RUNNING]
            if held_rows:
                self._hot.run(conn, q.CANCEL_NOTICE, [
                    {"task_id": row.id, "endpoint_id": row.endpoint_id, "created_at": now}
                    for row in held_rows])
            streamed = [row.id for row in ending if row.streamed]
            if streamed:
                self._hot.run(conn, q.OUTBOX_ADD,
                              [{"task_id": task_id, "created_at": now} for task_id in streamed])
            q.change_usage(self._hot, conn, {owner_id: (-len(ending), len(ending) * len(reason))})
        ended = [Task(row.id, owner_id, row.function_id, row.endpoint_id, row.task_group_id,
                      CANCELLED, row.created_at, None, reason, None, now) for row in ending]
        return Cancelled(answers, ended, bool(streamed))

    def take_cancels(self, endpoint_id: str, limit: int = 1000) -> list[str]:
        params = {"endpoint_id": endpoint_id, "limit": limit}
        with self._read() as conn:  # nearly always none: no write lock for that
            if not self._hot.rows(conn, q.CANCEL_NOTICES, params):
                return []
        with self._write() as conn:
            taken = [row.task_id for row in self._hot.rows(conn, q.CANCEL_NOTICES, params)]
            for chunk in q.chunks(taken):
                conn.execute(sa.delete(t.task_cancels).where(t.task_cancels.c.task_id.in_(chunk)))
        return taken

    def requeue_stale(self, cutoff: float, alive: Collection[str] = ()) -> list[str]:
        e = t.endpoints.c
        with self._write() as conn:
            # From the endpoints: each one's running tasks are one index lookup, where
            # starting from the tasks would read every task ever run.
            holding = (
                sa.select(t.tasks.c.seq)
                .where(t.tasks.c.endpoint_id == e.id, t.tasks.c.status == RUNNING, t.UNFINISHED)
                .exists()
            )
            silent = sa.or_(e.last_seen.is_(None), e.last_seen < cutoff)
            stale = [
                endpoint_id
                for endpoint_id in conn.scalars(sa.select(e.id).where(silent, holding))
                if endpoint_id not in alive
            ]
            if stale:
                q.requeue(conn, t.tasks.c.endpoint_id.in_(stale))
        return stale

    def release(self, endpoint_id: str, session: str, task_ids: Sequence[str]) -> int:
        c = t.tasks.c
        released = 0
        with self._write(durable=False) as conn:
            for chunk in q.chunks(list(task_ids)):
                released += q.requeue(conn, c.id.in_(chunk), c.endpoint_id == endpoint_id,
                                      c.claim_session == session)
        return released

    def count_outstanding(self, endpoint_id: str) -> int:
        with self._read() as conn:
            result = conn.execute(
                sa.select(sa.func.count())
                .select_from(t.tasks)
                .where(t.tasks.c.endpoint_id == endpoint_id, t.UNFINISHED)
            )
            return int(result.scalar_one())


def _task_options(stored: dict[str, Any] | None) -> TaskOptions:
    """A task's options as stored; by name, so a note in place of a value that was
    too deep to read (``json_columns``) cannot fail the claim."""
    stored = stored or {}
    return TaskOptions(stored.get("resource_specification"), stored.get("result_serializers"),
                       stored.get("user_endpoint_config"))
