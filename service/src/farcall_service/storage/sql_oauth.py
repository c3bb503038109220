"""The SQL store's :class:`~farcall_service.storage.interface.OAuthStore`: clients,
authorization codes and issued tokens.

Redeeming a code and spending a refresh token are single write transactions, so two
concurrent replays cannot both succeed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from farcall_service.storage import schema as t
from farcall_service.storage.records import AuthCode, IssuedToken, OAuthClient, User
from farcall_service.storage.sql_device import DeviceGrantSql


class OAuthSql(DeviceGrantSql):
    """The OAuth2 provider's records; tokens and codes are kept only as hashes (device
    grants in :mod:`sql_device`)."""

    # -- clients ------------------------------------------------------------------------

    def create_oauth_client(self, client: OAuthClient, principal_name: str) -> None:
        now = time.time()
        with self._write() as conn:
            conn.execute(
                sa.insert(t.users).values(
                    id=client.principal_id, name=principal_name, created_at=now
                )
            )
            conn.execute(
                sa.insert(t.oauth_clients).values(
                    id=client.id,
                    owner_id=client.owner_id,
                    principal_id=client.principal_id,
                    name=client.name,
                    secret_hash=client.secret_hash,
                    created_at=now,
                    deleted=False,
                )
            )

    def get_oauth_client(self, client_id: str) -> OAuthClient | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.oauth_clients).where(
                    t.oauth_clients.c.id == client_id, t.oauth_clients.c.deleted.is_(False)
                )
            ).first()
        return _client(row) if row else None

    def list_oauth_clients(self, owner_id: str) -> list[OAuthClient]:
        with self._read() as conn:
            rows = conn.execute(
                sa.select(t.oauth_clients)
                .where(t.oauth_clients.c.owner_id == owner_id, t.oauth_clients.c.deleted.is_(False))
                .order_by(t.oauth_clients.c.created_at)
            ).all()
        return [_client(row) for row in rows]

    def delete_oauth_client(self, client_id: str) -> None:
        with self._write() as conn:
            conn.execute(
                sa.update(t.oauth_clients)
                .where(t.oauth_clients.c.id == client_id)
                .values(deleted=True)
            )
            conn.execute(
                sa.update(t.oauth_tokens)
                .where(t.oauth_tokens.c.client_id == client_id)
                .values(revoked=True)
            )

    # -- codes --------------------------------------------------------------------------

    def save_auth_code(self, code: AuthCode) -> None:
        with self._write() as conn:
            conn.execute(
                sa.insert(t.oauth_codes).values(
                    code_hash=code.code_hash,
                    client_id=code.client_id,
                    user_id=code.user_id,
                    redirect_uri=code.redirect_uri,
                    scope=code.scope,
                    code_challenge=code.code_challenge,
                    offline=code.offline,
                    grant_id=code.grant_id,
                    expires_at=code.expires_at,
                    used=False,
                    created_at=time.time(),
                )
            )

    def redeem_auth_code(self, code_hash: str) -> AuthCode | None:
        c = t.oauth_codes.c
        with self._write() as conn:
            # FOR UPDATE: a concurrent redemption waits, then sees the code used.
            row = conn.execute(
                sa.select(t.oauth_codes).where(c.code_hash == code_hash).with_for_update()
            ).first()
            if row is None:
                return None
            conn.execute(sa.update(t.oauth_codes).where(c.code_hash == code_hash).values(used=True))
        return AuthCode(
            code_hash=row.code_hash,
            client_id=row.client_id,
            user_id=row.user_id,
            redirect_uri=row.redirect_uri,
            scope=row.scope,
            code_challenge=row.code_challenge,
            offline=bool(row.offline),
            grant_id=row.grant_id,
            expires_at=row.expires_at,
            used=bool(row.used),
        )

    # -- tokens -------------------------------------------------------------------------

    def save_oauth_tokens(self, tokens: Sequence[IssuedToken]) -> None:
        if not tokens:
            return
        now = time.time()
        with self._write() as conn:
            conn.execute(
                sa.insert(t.oauth_tokens),
                [
                    {
                        "token_hash": tok.token_hash,
                        "kind": tok.kind,
                        "user_id": tok.user_id,
                        "client_id": tok.client_id,
                        "scope": tok.scope,
                        "resource_server": tok.resource_server,
                        "grant_id": tok.grant_id,
                        "expires_at": tok.expires_at,
                        "revoked": False,
                        "created_at": now,
                    }
                    for tok in tokens
                ],
            )

    def get_oauth_token(self, token_hash: str) -> IssuedToken | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.oauth_tokens).where(t.oauth_tokens.c.token_hash == token_hash)
            ).first()
        return _token(row) if row else None

    def user_for_oauth_token(self, token_hash: str) -> tuple[IssuedToken, User] | None:
        with self._read() as conn:
            row = conn.execute(
                sa.select(t.oauth_tokens, t.users.c.name.label("user_name"))
                .join(t.users, t.users.c.id == t.oauth_tokens.c.user_id)
                .where(t.oauth_tokens.c.token_hash == token_hash, t.users.c.removed_at.is_(None))
            ).first()
        return (_token(row), User(row.user_id, row.user_name)) if row else None

    def spend_refresh_token(self, token_hash: str) -> IssuedToken | None:
        c = t.oauth_tokens.c
        with self._write() as conn:
            row = conn.execute(
                sa.select(t.oauth_tokens)
                .where(c.token_hash == token_hash, c.kind == "refresh")
                .with_for_update()
            ).first()
            if row is None:
                return None
            conn.execute(
                sa.update(t.oauth_tokens).where(c.token_hash == token_hash).values(revoked=True)
            )
        return _token(row)

    def revoke_oauth_token(self, token_hash: str) -> None:
        with self._write() as conn:
            conn.execute(
                sa.update(t.oauth_tokens)
                .where(t.oauth_tokens.c.token_hash == token_hash)
                .values(revoked=True)
            )

    def revoke_grant(self, grant_id: str) -> list[str]:
        c = t.oauth_tokens.c
        with self._write() as conn:
            hashes = list(
                conn.execute(sa.select(c.token_hash).where(c.grant_id == grant_id)).scalars()
            )
            conn.execute(
                sa.update(t.oauth_tokens).where(c.grant_id == grant_id).values(revoked=True)
            )
        return hashes

    def reset_password(self, user_id: str, password_hash: str | None) -> list[str]:
        c = t.oauth_tokens.c
        with self._write() as conn:
            # One transaction: a refresh that spent its token before it sees the new
            # hash after, and one that spends after finds the token revoked.
            conn.execute(sa.update(t.users).where(t.users.c.id == user_id)
                         .values(password_hash=password_hash))
            hashes = list(conn.execute(
                sa.select(c.token_hash).where(c.user_id == user_id, c.revoked.is_(False))
            ).scalars())
            conn.execute(sa.update(t.oauth_tokens).where(c.user_id == user_id).values(revoked=True))
            conn.execute(sa.delete(t.oauth_codes).where(t.oauth_codes.c.user_id == user_id))
            conn.execute(sa.delete(t.oauth_device_grants)
                         .where(t.oauth_device_grants.c.user_id == user_id))
        return hashes


def _client(row: Any) -> OAuthClient:
    return OAuthClient(
        id=row.id,
        owner_id=row.owner_id,
        principal_id=row.principal_id,
        name=row.name,
        secret_hash=row.secret_hash,
        created_at=row.created_at,
    )


def _token(row: Any) -> IssuedToken:
    return IssuedToken(
        token_hash=row.token_hash,
        kind=row.kind,
        user_id=row.user_id,
        client_id=row.client_id,
        scope=row.scope,
        resource_server=row.resource_server,
        grant_id=row.grant_id,
        expires_at=row.expires_at,
        revoked=bool(row.revoked),
        created_at=row.created_at,
    )
