"""Administration on the database itself: users, tokens, groups, memberships.

These run without the service (or beside it: SQLite in WAL mode takes concurrent
writers). A running service sees the change within its cache lifetime.
"""

from __future__ import annotations

from farcall.errors import FarcallError

from farcall_service.storage.interface import Group, Store, User
from farcall_service.tokens import hash_token, new_token


class AdminError(FarcallError):
    """An admin command cannot do what it was asked."""


def add_user(store: Store, name: str) -> User:
    if not name.strip():
        raise AdminError("a user name may not be empty")
    if store.get_user(name) is not None:
        raise AdminError(f"user {name!r} already exists")
    return store.create_user(name)


def find_user(store: Store, name_or_id: str) -> User:
    user = store.get_user(name_or_id)
    if user is None:
        raise AdminError(f"no user {name_or_id!r}; add one with 'farcall server user add NAME'")
    return user


def create_token(store: Store, user_name_or_id: str) -> str:
    """A new token for the user. Only its hash is stored: show it once."""
    user = find_user(store, user_name_or_id)
    token = new_token()
    store.add_token(user.id, hash_token(token))
    return token


def add_group(store: Store, name: str) -> Group:
    if not name.strip():
        raise AdminError("a group name may not be empty")
    if store.get_group(name) is not None:
        raise AdminError(f"group {name!r} already exists")
    return store.create_group(name)


def add_member(store: Store, group_name_or_id: str, user_name_or_id: str) -> tuple[Group, User]:
    group = store.get_group(group_name_or_id)
    if group is None:
        raise AdminError(
            f"no group {group_name_or_id!r}; add one with 'farcall server group add NAME'"
        )
    user = find_user(store, user_name_or_id)
    store.add_member(group.id, user.id)
    return group, user
