"""The Client's cancels: ``Client.cancel`` for one task or many.

A queued task never runs; a running one's endpoint is told to stop it; either ends
as ``cancelled`` and ``get_result`` raises :class:`~farcall.sdk.errors.TaskCancelled`.
A task that had ended is left as it was: the answer says so. Official 4.19
endpoints ignore cancels of tasks already delivered to them (the answer's
``message`` says so too).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from farcall.sdk.batch import canonical_id

if TYPE_CHECKING:
    from farcall.sdk.session import ChannelSession

#: Tasks named in one cancel request (the service takes as many as in a submission).
CANCEL_CHUNK = 1000
#: Seconds a cancel request may take.
CANCEL_TIMEOUT = 60.0


class CancelCalls:
    """Part of :class:`farcall.Client`: cancelling tasks."""

    session: ChannelSession

    def cancel(self, task_id_or_ids: Any) -> dict[str, Any]:
        """Cancel one task (its answer) or several (their answers, by id).

        An answer has ``outcome`` (``"cancelled"``, ``"already finished"`` or ``"not
        found"``: ids of other users' tasks read so too), ``status`` (the task's status
        now) and ``message``. Cancelling twice is harmless: the second time it is
        "already finished" (``cancelled``)."""
        if isinstance(task_id_or_ids, (str, bytes)) or not isinstance(task_id_or_ids, Iterable):
            tid = canonical_id(task_id_or_ids, "task_id")
            return self.cancel_tasks([tid])[tid]
        return self.cancel_tasks(canonical_id(t, "task_id") for t in task_id_or_ids)

    def cancel_tasks(self, task_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Cancel tasks by canonical id, in requests of :data:`CANCEL_CHUNK`; over this
        thread's channel when it has one open, else a plain request."""
        ids = list(dict.fromkeys(task_ids))
        answers: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), CANCEL_CHUNK):
            body = {"task_ids": ids[start:start + CANCEL_CHUNK]}
            if self.session.channel() is not None:
                answer = self.session.ask("cancel", body, CANCEL_TIMEOUT)
            else:
                answer = self.session.fallback.ask("cancel", body, CANCEL_TIMEOUT)
            answers.update(answer["results"])
        return answers
