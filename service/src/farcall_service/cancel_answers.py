"""What a cancel answers about each task, in words that say what will happen to it."""

from __future__ import annotations

from typing import Any

from farcall_service.core_endpoints import CORE_SESSION
from farcall_service.forwarding import AMQP_SESSION
from farcall_service.storage.interface import (
    ALREADY_FINISHED,
    CANCELLED,
    CANCELLED_NOW,
    CancelAnswer,
    Cancelled,
)


def cancel_answers(done: Cancelled) -> dict[str, dict[str, Any]]:
    """Task id -> ``outcome`` (``cancelled``, ``already finished``, ``not found``),
    ``status`` (the task's status now; None when not found) and ``message``."""
    return {a.task_id: {"outcome": a.outcome, "status": _status(a), "message": _message(a)}
            for a in done.answers}


def _status(answer: CancelAnswer) -> str | None:
    return CANCELLED if answer.outcome == CANCELLED_NOW else answer.status


def _message(answer: CancelAnswer) -> str:
    if answer.outcome == ALREADY_FINISHED:
        return f"the task had already finished ({answer.status}): nothing changed"
    if answer.outcome != CANCELLED_NOW:
        return "no task of yours has this id"
    if answer.held_by == CORE_SESSION:
        return (f"cancelled; the task had already been handed to a user endpoint of the "
                f"official endpoint {answer.endpoint_id}, which cannot be told to stop it: "
                "it may still run (its result is not kept)")
    if answer.held_by == AMQP_SESSION:
        return (f"cancelled; the task had already been delivered to endpoint "
                f"{answer.endpoint_id}'s AMQP queue: it was sent task_cancel, which the "
                "official 4.19 endpoint ignores, so it may still run (its result is not "
                "kept)")
    if answer.held_by:
        return f"cancelled; endpoint {answer.endpoint_id} is told to stop it"
    return "cancelled before it ran: it will never run"
