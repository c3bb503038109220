"""Administration on the database itself: users, passwords, tokens, OAuth clients,
groups, memberships.

These run without the service (or beside it: SQLite in WAL mode takes concurrent
writers). A running service sees the change within its cache lifetime.
"""

from __future__ import annotations

import secrets
import time
import uuid

from farcall.errors import FarcallError

from farcall_service.oauth import CLIENT_PRINCIPAL_DOMAIN
from farcall_service.oauth.passwords import hash_password
from farcall_service.storage.interface import Group, OAuthClient, Store, User
from farcall_service.tokens import hash_token, new_token

CLIENT_SECRET_PREFIX = "fcs_"


class AdminError(FarcallError):
    """An admin command cannot do what it was asked."""


def add_user(store: Store, name: str, password: str | None = None) -> User:
    if not name.strip():
        raise AdminError("a user name may not be empty")
    if "@" in name:
        raise AdminError("a user name may not contain '@' (client identities use it)")
    if store.get_user(name) is not None:
        raise AdminError(f"user {name!r} already exists")
    password_hash = _hashed(password) if password is not None else None
    user = store.create_user(name)
    if password_hash is not None:
        store.set_password_hash(user.id, password_hash)
    return user


def set_password(store: Store, user_name_or_id: str, password: str) -> User:
    """Set (or replace) the password the login page checks; only its scrypt hash is kept."""
    user = find_user(store, user_name_or_id)
    if user.name.endswith("@" + CLIENT_PRINCIPAL_DOMAIN):
        raise AdminError("a client's identity signs in with its secret, not a password")
    store.set_password_hash(user.id, _hashed(password))
    return user


def _hashed(password: str) -> str:
    try:
        return hash_password(password)
    except ValueError as exc:
        raise AdminError(str(exc)) from None


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


def create_client(store: Store, owner_name_or_id: str, name: str | None = None
                  ) -> tuple[OAuthClient, str]:
    """A confidential client owned by a user, and its secret (shown once).

    The client is its own principal, named ``<client id>@clients.farcall``: what its
    tokens create (functions, endpoints, tasks) belongs to the client, not the owner,
    as with Globus Auth's client identities.
    """
    owner = find_user(store, owner_name_or_id)
    if "@" in owner.name:
        raise AdminError("a client cannot own another client")
    client_id = str(uuid.uuid4())
    secret = CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)
    client = OAuthClient(
        id=client_id,
        owner_id=owner.id,
        principal_id=str(uuid.uuid4()),
        name=name or f"{owner.name}'s client",
        secret_hash=hash_token(secret),
    )
    store.create_oauth_client(client, f"{client_id}@{CLIENT_PRINCIPAL_DOMAIN}")
    return client, secret


def list_clients(store: Store, owner_name_or_id: str) -> list[OAuthClient]:
    return store.list_oauth_clients(find_user(store, owner_name_or_id).id)


def delete_client(store: Store, client_id: str) -> OAuthClient:
    """Forget a client and revoke its tokens (a running service notices within its
    cache lifetime)."""
    client = store.get_oauth_client(client_id)
    if client is None:
        raise AdminError(f"no client {client_id!r}")
    store.delete_oauth_client(client_id)
    return client


def prune_tasks(store: Store, older_than_days: float, user_name_or_id: str | None = None,
                now: float | None = None) -> int:
    """Delete the tasks (everyone's, or one user's) that ended more than
    ``older_than_days`` ago, which frees their stored bytes quota; how many went."""
    if older_than_days < 0:
        raise AdminError("--older-than is a number of days, 0 or more")
    owner = find_user(store, user_name_or_id).id if user_name_or_id is not None else None
    before = (time.time() if now is None else now) - older_than_days * 86400
    return store.prune_finished(before, owner)
