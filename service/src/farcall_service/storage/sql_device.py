"""The SQL store's device authorization grants (RFC 8628), part of its
:class:`~farcall_service.storage.interface.OAuthStore`.

A poll and a decision are each one write transaction with the row locked, so two
concurrent polls of an approved grant cannot both find it unused, and a grant is
approved or denied once.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import sqlalchemy as sa

from farcall_service.storage import schema as t
from farcall_service.storage.records import (
    DEVICE_APPROVED,
    DEVICE_DENIED,
    DEVICE_PENDING,
    SLOW_DOWN_STEP,
    DeviceGrant,
)
from farcall_service.storage.sql_engine import SqlConnections

_c = t.oauth_device_grants.c


class DeviceGrantSql(SqlConnections):
    """Grants waiting for a user on another device; codes kept only as hashes."""

    def save_device_grant(self, grant: DeviceGrant) -> bool:
        try:
            with self._write() as conn:
                taken = conn.execute(sa.select(_c.device_code_hash).where(
                    _c.user_code_hash == grant.user_code_hash)).first()
                if taken is not None:
                    return False
                conn.execute(sa.insert(t.oauth_device_grants).values(
                    device_code_hash=grant.device_code_hash,
                    user_code_hash=grant.user_code_hash,
                    client_id=grant.client_id,
                    scope=grant.scope,
                    grant_id=grant.grant_id,
                    status=grant.status,
                    user_id=grant.user_id,
                    interval=grant.interval,
                    last_polled_at=grant.last_polled_at,
                    used=grant.used,
                    expires_at=grant.expires_at,
                    created_at=time.time(),
                ))
        except sa.exc.IntegrityError:
            return False  # the same user code, saved at the same moment by another call
        return True

    def find_device_grant(self, user_code_hash: str) -> DeviceGrant | None:
        with self._read() as conn:
            row = conn.execute(sa.select(t.oauth_device_grants).where(
                _c.user_code_hash == user_code_hash)).first()
        return _grant(row) if row else None

    def decide_device_grant(self, user_code_hash: str, user_id: str | None, approve: bool,
                            now: float) -> DeviceGrant | None:
        status = DEVICE_APPROVED if approve else DEVICE_DENIED
        with self._write() as conn:
            row = conn.execute(
                sa.select(t.oauth_device_grants)
                .where(_c.user_code_hash == user_code_hash, _c.status == DEVICE_PENDING,
                       _c.expires_at > now)
                .with_for_update()
            ).first()
            if row is None:
                return None
            conn.execute(sa.update(t.oauth_device_grants)
                         .where(_c.device_code_hash == row.device_code_hash)
                         .values(status=status, user_id=user_id))
        return _grant(row, status=status, user_id=user_id)

    def poll_device_grant(self, device_code_hash: str, client_id: str,
                          now: float) -> DeviceGrant | None:
        with self._write() as conn:
            row = conn.execute(
                sa.select(t.oauth_device_grants)
                .where(_c.device_code_hash == device_code_hash)
                .with_for_update()
            ).first()
            if row is None:
                return None
            if row.client_id != client_id:
                return _grant(row)
            changes: dict[str, Any] = {"last_polled_at": now}
            if (row.status == DEVICE_PENDING and row.last_polled_at is not None
                    and now - row.last_polled_at < row.interval):
                changes["interval"] = row.interval + SLOW_DOWN_STEP
            if row.status == DEVICE_APPROVED:
                changes["used"] = True
            conn.execute(sa.update(t.oauth_device_grants)
                         .where(_c.device_code_hash == device_code_hash).values(**changes))
        return _grant(row)

    def delete_device_grants(self, expired_before: float) -> int:
        with self._write() as conn:
            done = conn.execute(sa.delete(t.oauth_device_grants)
                                .where(_c.expires_at < expired_before))
        return int(done.rowcount or 0)


def _grant(row: Any, **changes: Any) -> DeviceGrant:
    grant = DeviceGrant(
        device_code_hash=row.device_code_hash,
        user_code_hash=row.user_code_hash,
        client_id=row.client_id,
        scope=row.scope,
        grant_id=row.grant_id,
        expires_at=row.expires_at,
        interval=row.interval,
        status=row.status,
        user_id=row.user_id,
        last_polled_at=row.last_polled_at,
        used=bool(row.used),
    )
    return dataclasses.replace(grant, **changes) if changes else grant
