"""The access rules, in one place.

- Functions are private to their owner, unless shared with a group (its members may
  see and run them) or public (everyone may).
- Endpoints are private to their owner unless public; a public endpoint may be seen
  and used by everyone, but only its owner may change, delete, lock or serve it.
- Tasks and task groups are visible only to their submitter.

What a caller may not see is answered 404, exactly as if it did not exist; changing
or deleting something visible but not yours is 403.
"""

from __future__ import annotations

from farcall_service.auth import Identity
from farcall_service.errors import ApiError, forbidden, not_found
from farcall_service.storage.interface import Endpoint, Function, Task


def can_see_function(who: Identity, fn: Function) -> bool:
    return fn.owner_id == who.user_id or fn.public or (
        fn.group_id is not None and fn.group_id in who.groups
    )


def can_see_endpoint(who: Identity, ep: Endpoint) -> bool:
    return ep.owner_id == who.user_id or ep.public


def visible_function(who: Identity, fn: Function | None, function_id: str) -> Function:
    if fn is None or not can_see_function(who, fn):
        raise not_found("function", function_id)
    return fn


def owned_function(who: Identity, fn: Function | None, function_id: str) -> Function:
    fn = visible_function(who, fn, function_id)
    if fn.owner_id != who.user_id:
        raise forbidden(f"only the owner of function {function_id} may change or delete it")
    return fn


def visible_endpoint(who: Identity, ep: Endpoint | None, endpoint_id: str) -> Endpoint:
    if ep is None or not can_see_endpoint(who, ep):
        raise not_found("endpoint", endpoint_id)
    return ep


def owned_endpoint(who: Identity, ep: Endpoint | None, endpoint_id: str) -> Endpoint:
    ep = visible_endpoint(who, ep, endpoint_id)
    if ep.owner_id != who.user_id:
        raise forbidden(f"only the owner of endpoint {endpoint_id} may do this")
    return ep


def visible_task(who: Identity, task: Task | None, task_id: str) -> Task:
    if task is None or task.owner_id != who.user_id:
        raise not_found("task", task_id)
    return task


def check_runnable(fn: Function, ep: Endpoint) -> None:
    """May ``fn`` run on ``ep``? Both are already known to be visible to the caller."""
    if ep.allowed_functions is not None and fn.id not in ep.allowed_functions:
        raise ApiError(
            403,
            "FUNCTION_NOT_ALLOWED",
            f"endpoint {ep.id} does not allow function {fn.id}",
        )
    if fn.ha_endpoint_id is not None and fn.ha_endpoint_id != ep.id:
        raise ApiError(
            403,
            "FUNCTION_NOT_ALLOWED",
            f"function {fn.id} may only run on endpoint {fn.ha_endpoint_id}",
        )
