"""Administration on the database itself: users, passwords, tokens, OAuth clients,
groups, memberships.

These run without the service (or beside it: SQLite in WAL mode takes concurrent
writers). A running service sees the change within its cache lifetime
(``cache_ttl``): it caches what a token and a membership stand for that long, so a
revoked token, a removed user or member stops working at most ``cache_ttl``
seconds after the command returns.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import TYPE_CHECKING

from farcall.errors import FarcallError

from farcall_service.oauth import CLIENT_PRINCIPAL_DOMAIN
from farcall_service.oauth.passwords import hash_password
from farcall_service.settings import Settings
from farcall_service.storage.interface import (
    Group,
    Holdings,
    OAuthClient,
    StaticToken,
    Store,
    User,
)
from farcall_service.tokens import PREFIX, hash_token, new_token

if TYPE_CHECKING:
    from farcall.plugins import FarcallPluginManager

CLIENT_SECRET_PREFIX = "fcs_"
#: How many leading hex digits of a static token's hash name it (``token list``).
TOKEN_ID_LENGTH = 12
#: The shortest prefix of a token id that ``token revoke`` takes.
TOKEN_ID_MIN = 8
#: The exception of the tasks a user's removal fails.
REMOVED_REASON = "farcall: the task could not run: its submitter or its endpoint's owner " \
    "was removed"


class AdminError(FarcallError):
    """An admin command cannot do what it was asked."""


def add_user(store: Store, name: str, password: str | None = None,
             is_admin: bool = False) -> User:
    if not name.strip():
        raise AdminError("a user name may not be empty")
    if "@" in name:
        raise AdminError("a user name may not contain '@' (client identities use it)")
    if store.get_user(name) is not None:
        raise AdminError(f"user {name!r} already exists")
    password_hash = _hashed(password) if password is not None else None
    try:
        user = store.create_user(name)
    except Exception:  # the store's own error: the name of a removed user
        raise AdminError(f"the name {name!r} is taken (a removed user's name is not "
                         "reused)") from None
    if password_hash is not None:
        store.set_password_hash(user.id, password_hash)
    if is_admin:
        store.set_admin(user.id, True)
        user = User(user.id, user.name, True)
    return user


def set_password(store: Store, user_name_or_id: str, password: str) -> tuple[User, int]:
    """Set (or replace) the password the login page checks; only its scrypt hash is kept.

    Every OAuth login of the user ends with it, in the same transaction (access and
    refresh tokens revoked, unredeemed codes forgotten), so whoever signed in with the
    old password must sign in again; static tokens are not touched (``token revoke``
    ends those). Returns the user and how many live OAuth tokens were revoked.
    """
    user = find_user(store, user_name_or_id)
    if user.name.endswith("@" + CLIENT_PRINCIPAL_DOMAIN):
        raise AdminError("a client's identity signs in with its secret, not a password")
    return user, len(store.reset_password(user.id, _hashed(password)))


def remove_user(store: Store, user_name_or_id: str, force: bool = False) -> tuple[User, Holdings]:
    """Remove a user: their credentials end (static tokens, OAuth logins, password,
    their OAuth clients and the clients' tokens) and their memberships go.

    A user who still has functions, endpoints, unfinished tasks or OAuth clients is
    refused unless ``force``: then their functions and endpoints are deleted and
    every unfinished task of theirs, or on their endpoints (other users' too), fails
    with :data:`REMOVED_REASON`. Their name is not given to anyone else. Returns what
    they held.
    """
    user = find_user(store, user_name_or_id)
    if user.name.endswith("@" + CLIENT_PRINCIPAL_DOMAIN):
        raise AdminError("a client's identity is removed with 'farcall server client delete'")
    held = store.holdings(user.id)
    if held and not force:
        raise AdminError(
            f"user {user.name!r} still has {describe(held)}; remove them with --force to "
            "delete their functions and endpoints and fail their unfinished tasks (and "
            "the tasks others queued on their endpoints)"
        )
    store.remove_user(user.id, time.time(), REMOVED_REASON)
    return user, held


def identities(store: Store, user: User) -> list[str]:
    """The user's id and their OAuth clients' principals: whoever may have result
    streams that the user's removal ends (read before the removal deletes the clients)."""
    return [user.id, *(client.principal_id for client in store.list_oauth_clients(user.id))]


def forget_result_streams(settings: Settings, store: Store, owner_ids: list[str],
                          plugin_manager: FarcallPluginManager | None = None) -> bool:
    """End the removed identities' result streams (their broker credentials and
    queues), with the broker ``settings.broker`` names, started for this command only.
    False when that broker has no streams. Raises :class:`AdminError` when it cannot
    be reached: the streams then end on their own (credentials at the end of their
    period, ``stream_credential_ttl``; queues after ``stream_queue_expiry`` unused).
    """
    import asyncio

    from farcall.plugins import get_plugin_manager

    from farcall_service.app import select_broker
    from farcall_service.brokers.interface import BrokerError

    broker = select_broker(plugin_manager or get_plugin_manager(), settings, store)
    streams = broker.streams
    if streams is None:
        return False

    async def forget_all() -> None:
        for owner_id in owner_ids:
            await streams.forget(owner_id)

    try:
        broker.start()
        try:
            asyncio.run(forget_all())
        finally:
            broker.stop()
    except BrokerError as exc:
        raise AdminError(
            f"the user is removed, but their result streams could not be ended ({exc}): "
            "their broker credentials stop working within stream_credential_ttl and their "
            "queues go after stream_queue_expiry unused") from None
    return True


def describe(held: Holdings) -> str:
    parts = [(held.functions, "function"), (held.endpoints, "endpoint"),
             (held.unfinished_tasks, "unfinished task"), (held.clients, "OAuth client")]
    return ", ".join(f"{n} {what}{'s' if n != 1 else ''}" for n, what in parts if n)


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


def token_id(token_hash: str) -> str:
    """The name ``token list`` shows for a static token: the start of its hash, which
    tells nothing of the token itself."""
    return token_hash[:TOKEN_ID_LENGTH]


def list_tokens(store: Store, user_name_or_id: str | None = None) -> list[StaticToken]:
    user_id = find_user(store, user_name_or_id).id if user_name_or_id else None
    return store.list_tokens(user_id)


def revoke_token(store: Store, token: str) -> StaticToken:
    """Delete the static token named by its id (a prefix of at least eight hex
    digits, as ``token list`` shows) or given itself."""
    if token.startswith(PREFIX):
        wanted = hash_token(token)
        found = [k for k in store.list_tokens() if k.token_hash == wanted]
    else:
        prefix = token.strip().lower()
        if len(prefix) < TOKEN_ID_MIN or any(c not in "0123456789abcdef" for c in prefix):
            raise AdminError(f"a token id is {TOKEN_ID_MIN} or more hex digits, as "
                             "'farcall server token list' shows")
        found = [k for k in store.list_tokens() if k.token_hash.startswith(prefix)]
        if len(found) > 1:
            raise AdminError(f"{len(found)} tokens have ids starting {prefix!r}; give more "
                             "digits")
    if not found:
        raise AdminError("no such token; 'farcall server token list' shows them")
    store.delete_token(found[0].token_hash)
    return found[0]


def add_group(store: Store, name: str) -> Group:
    if not name.strip():
        raise AdminError("a group name may not be empty")
    if store.get_group(name) is not None:
        raise AdminError(f"group {name!r} already exists")
    return store.create_group(name)


def add_member(store: Store, group_name_or_id: str, user_name_or_id: str) -> tuple[Group, User]:
    group = _find_group(store, group_name_or_id)
    user = find_user(store, user_name_or_id)
    store.add_member(group.id, user.id)
    return group, user


def remove_member(store: Store, group_name_or_id: str, user_name_or_id: str
                  ) -> tuple[Group, User]:
    """Take the user out of the group: the group's functions are no longer theirs to
    see or run (tasks already queued still run)."""
    group = _find_group(store, group_name_or_id)
    user = find_user(store, user_name_or_id)
    if not store.remove_member(group.id, user.id):
        raise AdminError(f"{user.name} is not a member of {group.name}")
    return group, user


def _find_group(store: Store, name_or_id: str) -> Group:
    group = store.get_group(name_or_id)
    if group is None:
        raise AdminError(f"no group {name_or_id!r}; add one with 'farcall server group add NAME'")
    return group


def create_client(store: Store, owner_name_or_id: str, name: str | None = None
                  ) -> tuple[OAuthClient, str]:
    """A confidential client owned by a user, and its secret (shown once).

    Its client-credentials tokens stand for the owner (see ``oauth.routes``). The
    principal user ``<client id>@clients.farcall`` made with it is what static tokens
    made for the client with ``token create`` stand for.
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
    """Forget a client and revoke its tokens, static tokens made for its identity
    too (a running service notices within its cache lifetime)."""
    client = store.get_oauth_client(client_id)
    if client is None:
        raise AdminError(f"no client {client_id!r}")
    store.delete_oauth_client(client_id)
    for token in store.list_tokens(client.principal_id):  # made with 'token create'
        store.delete_token(token.token_hash)
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
