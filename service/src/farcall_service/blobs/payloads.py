"""Payloads submitted by reference: checked before the submission, given their task
after it (so the sweep deletes them with the task, not after ``blob_grace``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from farcall.blob_refs import HEADER, payload_reference_of

from farcall_service.errors import ApiError

if TYPE_CHECKING:
    from farcall_service.auth import Identity
    from farcall_service.context import ServiceContext

#: How a payload reference starts, after its length: ordinary payloads are told
#: apart by looking at their first few characters only.
_MARK = f"\n{HEADER}blob "


def referenced(payloads: Sequence[str]) -> list[tuple[int, str]]:
    """``(index, key)`` of each payload that is a reference to a blob."""
    found = []
    for index, payload in enumerate(payloads):
        if _MARK in payload[:16]:
            ref = payload_reference_of(payload)
            if ref is not None:
                found.append((index, ref.key))
    return found


async def check(ctx: ServiceContext, who: Identity, found: list[tuple[int, str]]) -> None:
    """Every referenced blob must be the caller's, and not another task's already."""
    for _index, key in found:
        record = await ctx.in_thread(ctx.store.get_blob, key)
        if record is None or record.owner_id != who.user_id:
            raise ApiError(404, "BLOB_NOT_FOUND", f"payload blob {key} not found; upload it "
                           "with POST /farcall/v1/blobs first")
        if record.task_id is not None:
            raise ApiError(409, "BLOB_TAKEN", f"payload blob {key} belongs to task "
                           f"{record.task_id} already; upload it again for another task")


async def attach(ctx: ServiceContext, who: Identity, found: list[tuple[int, str]],
                 task_ids: Sequence[str]) -> None:
    await ctx.in_thread(ctx.store.attach_blobs, who.user_id,
                        [(key, task_ids[index]) for index, key in found])
