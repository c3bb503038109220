"""The SQL store's :class:`~farcall_service.storage.interface.IdentityStore`: users,
groups, memberships, static tokens and passwords, and removing a user."""

from __future__ import annotations

import time
import uuid
from typing import Any

import sqlalchemy as sa

from farcall_service.storage import schema as t
from farcall_service.storage.records import Group, Holdings, StaticToken, User, UserSummary
from farcall_service.storage.sql_engine import SqlConnections
from farcall_service.storage.sql_queue import fail_unfinished

#: Users who have not been removed.
_PRESENT = t.users.c.removed_at.is_(None)


class IdentitySql(SqlConnections):
    """Who is who. Static tokens and passwords are kept only as hashes."""

    def create_user(self, name: str) -> User:
        user = User(str(uuid.uuid4()), name)
        with self._write() as conn:
            conn.execute(
                sa.insert(t.users).values(id=user.id, name=name, created_at=time.time())
            )
        return user

    def get_user(self, name_or_id: str) -> User | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.users.c.id, t.users.c.name, t.users.c.admin).where(
                    sa.or_(t.users.c.id == name_or_id, t.users.c.name == name_or_id), _PRESENT
                )
            ).first()
        return User(row.id, row.name, bool(row.admin)) if row else None

    def set_admin(self, user_id: str, admin: bool) -> None:
        with self._write() as conn:
            conn.execute(sa.update(t.users).where(t.users.c.id == user_id).values(admin=admin))

    def list_users(self) -> list[UserSummary]:
        c = t.users.c
        with self._read() as conn:
            rows = conn.execute(
                sa.select(c.id, c.name, c.created_at, c.password_hash.is_not(None), c.admin)
                .where(_PRESENT).order_by(c.created_at, c.name)
            ).all()
        return [UserSummary(row[0], row[1], row[2], bool(row[3]), bool(row[4])) for row in rows]

    def add_token(self, user_id: str, token_hash: str) -> None:
        with self._write() as conn:
            conn.execute(
                sa.insert(t.tokens).values(
                    token_hash=token_hash, user_id=user_id, created_at=time.time()
                )
            )

    def user_for_token(self, token_hash: str) -> User | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.users.c.id, t.users.c.name)
                .join(t.tokens, t.tokens.c.user_id == t.users.c.id)
                .where(t.tokens.c.token_hash == token_hash, _PRESENT)
            ).first()
        return User(row.id, row.name) if row else None

    def list_tokens(self, user_id: str | None = None) -> list[StaticToken]:
        query = (
            sa.select(t.tokens.c.token_hash, t.tokens.c.user_id, t.tokens.c.created_at,
                      t.users.c.name)
            .join(t.users, t.users.c.id == t.tokens.c.user_id)
            .order_by(t.tokens.c.created_at, t.tokens.c.token_hash)
        )
        if user_id is not None:
            query = query.where(t.tokens.c.user_id == user_id)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [StaticToken(row.token_hash, row.user_id, row.name, row.created_at)
                for row in rows]

    def delete_token(self, token_hash: str) -> bool:
        with self._write() as conn:
            deleted = conn.execute(
                sa.delete(t.tokens).where(t.tokens.c.token_hash == token_hash)
            ).rowcount
        return bool(deleted)

    def set_password_hash(self, user_id: str, password_hash: str | None) -> None:
        with self._write() as conn:
            conn.execute(
                sa.update(t.users)
                .where(t.users.c.id == user_id)
                .values(password_hash=password_hash)
            )

    def get_password_hash(self, user_id: str) -> str | None:
        with self._read() as conn:
            found: str | None = conn.execute(
                sa.select(t.users.c.password_hash).where(t.users.c.id == user_id)
            ).scalar()
        return found

    def create_group(self, name: str) -> Group:
        group = Group(str(uuid.uuid4()), name)
        with self._write() as conn:
            conn.execute(
                sa.insert(t.groups).values(id=group.id, name=name, created_at=time.time())
            )
        return group

    def get_group(self, name_or_id: str) -> Group | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.groups.c.id, t.groups.c.name).where(
                    sa.or_(t.groups.c.id == name_or_id, t.groups.c.name == name_or_id)
                )
            ).first()
        return Group(row.id, row.name) if row else None

    def add_member(self, group_id: str, user_id: str) -> None:
        with self._write() as conn:
            exists = conn.execute(
                sa.select(t.memberships.c.user_id).where(
                    t.memberships.c.group_id == group_id, t.memberships.c.user_id == user_id
                )
            ).first()
            if not exists:
                conn.execute(sa.insert(t.memberships).values(group_id=group_id, user_id=user_id))

    def remove_member(self, group_id: str, user_id: str) -> bool:
        m = t.memberships.c
        with self._write() as conn:
            deleted = conn.execute(
                sa.delete(t.memberships).where(m.group_id == group_id, m.user_id == user_id)
            ).rowcount
        return bool(deleted)

    def groups_of(self, user_id: str) -> frozenset[str]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(t.memberships.c.group_id).where(t.memberships.c.user_id == user_id)
            )
            return frozenset(row.group_id for row in rows)

    # -- removal --------------------------------------------------------------------------

    def holdings(self, user_id: str) -> Holdings:
        with self._read() as conn:
            who = _identities(conn, user_id)

            def count(table: sa.Table, *where: Any) -> int:
                return int(conn.execute(
                    sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())

            return Holdings(
                functions=count(t.functions, t.functions.c.owner_id.in_(who),
                                t.functions.c.deleted.is_(False)),
                endpoints=count(t.endpoints, t.endpoints.c.owner_id.in_(who),
                                t.endpoints.c.deleted.is_(False)),
                unfinished_tasks=count(t.tasks, t.tasks.c.owner_id.in_(who), t.UNFINISHED),
                clients=count(t.oauth_clients, t.oauth_clients.c.owner_id == user_id,
                              t.oauth_clients.c.deleted.is_(False)),
            )

    def remove_user(self, user_id: str, now: float, reason: str) -> None:
        with self._write() as conn:
            who = _identities(conn, user_id)
            endpoints = list(conn.execute(sa.select(t.endpoints.c.id).where(
                t.endpoints.c.owner_id.in_(who), t.endpoints.c.deleted.is_(False))).scalars())
            if endpoints:
                conn.execute(sa.update(t.endpoints).where(t.endpoints.c.id.in_(endpoints))
                             .values(deleted=True, session_id=None))
                fail_unfinished(self._hot, conn, reason, now,
                                t.tasks.c.endpoint_id.in_(endpoints))
            fail_unfinished(self._hot, conn, reason, now, t.tasks.c.owner_id.in_(who))
            conn.execute(sa.update(t.functions).where(t.functions.c.owner_id.in_(who))
                         .values(deleted=True))
            clients = sa.select(t.oauth_clients.c.id).where(
                t.oauth_clients.c.owner_id == user_id).scalar_subquery()
            conn.execute(sa.update(t.oauth_clients).where(t.oauth_clients.c.owner_id == user_id)
                         .values(deleted=True))
            conn.execute(sa.update(t.oauth_tokens).where(sa.or_(
                t.oauth_tokens.c.user_id.in_(who), t.oauth_tokens.c.client_id.in_(clients)))
                .values(revoked=True))
            conn.execute(sa.delete(t.oauth_codes).where(t.oauth_codes.c.user_id.in_(who)))
            conn.execute(sa.delete(t.oauth_device_grants)
                         .where(t.oauth_device_grants.c.user_id.in_(who)))
            conn.execute(sa.delete(t.tokens).where(t.tokens.c.user_id.in_(who)))
            conn.execute(sa.delete(t.memberships).where(t.memberships.c.user_id.in_(who)))
            conn.execute(sa.update(t.users).where(t.users.c.id.in_(who))
                         .values(password_hash=None, removed_at=now))


def _identities(conn: sa.Connection, user_id: str) -> list[str]:
    """The user and the principals of the OAuth clients they own (deleted ones too)."""
    principals = conn.execute(sa.select(t.oauth_clients.c.principal_id).where(
        t.oauth_clients.c.owner_id == user_id)).scalars()
    return [user_id, *principals]
