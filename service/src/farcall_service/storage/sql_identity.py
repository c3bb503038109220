"""The SQL store's :class:`~farcall_service.storage.interface.IdentityStore`: users,
groups, memberships, static tokens and passwords."""

from __future__ import annotations

import time
import uuid

import sqlalchemy as sa

from farcall_service.storage import schema as t
from farcall_service.storage.records import Group, User
from farcall_service.storage.sql_engine import SqlConnections


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
                sa.select(t.users.c.id, t.users.c.name).where(
                    sa.or_(t.users.c.id == name_or_id, t.users.c.name == name_or_id)
                )
            ).first()
        return User(row.id, row.name) if row else None

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
                .where(t.tokens.c.token_hash == token_hash)
            ).first()
        return User(row.id, row.name) if row else None

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

    def groups_of(self, user_id: str) -> frozenset[str]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(t.memberships.c.group_id).where(t.memberships.c.user_id == user_id)
            )
            return frozenset(row.group_id for row in rows)
