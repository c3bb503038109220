"""The device authorization grant (RFC 8628): logging in on a machine with no browser.

The device asks for a pair of codes. The ``device_code`` is a secret that only the
device holds (256 random bits, stored as its hash) and polls the token endpoint with;
the ``user_code`` is short enough to read off a terminal and type on a phone: eight
letters from an alphabet without vowels (no words) and without look-alikes, shown as
``XXXX-XXXX``, read back case-insensitively with or without the dash. Its 20**8
(about 2.6e10) values are guessable only slowly, since wrong codes are throttled per
address and in all (:class:`~farcall_service.oauth.throttle.UserCodeThrottle`).

:func:`device_token` is the token endpoint's answer to a poll: ``authorization_pending``,
``slow_down`` (polled sooner than ``interval``), ``access_denied``, ``expired_token``,
or tokens shaped like the authorization-code grant's, refresh token included, once.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

from farcall_service.context import ServiceContext
from farcall_service.oauth.clients import CallingClient
from farcall_service.oauth.granting import issue, revoke_grant
from farcall_service.oauth.scopes import UnknownScope, by_resource_server
from farcall_service.oauth.tokens import OAuthError
from farcall_service.storage.interface import DeviceGrant
from farcall_service.storage.records import DEVICE_DENIED, DEVICE_PENDING
from farcall_service.tokens import hash_token

#: RFC 8628's grant type at the token endpoint.
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_CODE_PREFIX = "fcd_"
#: RFC 8628 section 6.1: consonants only, so no word (rude or not) can be spelled;
#: none of them is read as another (no I/1, O/0).
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8


def new_device_code() -> str:
    return DEVICE_CODE_PREFIX + secrets.token_urlsafe(32)


def new_user_code() -> str:
    """Eight letters, as typed back: ``shown_user_code`` adds the dash."""
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))


def shown_user_code(code: str) -> str:
    half = USER_CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def normalize_user_code(typed: str) -> str | None:
    """The code a person typed, as stored (upper case, no dash or spaces), or None when
    it cannot be one: such a typo costs no database look-up."""
    code = "".join(typed.split()).replace("-", "").upper()
    if len(code) != USER_CODE_LENGTH or any(c not in USER_CODE_ALPHABET for c in code):
        return None
    return code


def user_code_hash(code: str) -> str:
    return hash_token("user-code:" + code)


def live(grant: DeviceGrant | None, now: float) -> bool:
    """Whether a person may still approve or deny this grant."""
    return grant is not None and grant.status == DEVICE_PENDING and grant.expires_at > now


def device_token(ctx: ServiceContext, client: CallingClient,
                 form: Mapping[str, str]) -> dict[str, Any]:
    """The token endpoint's answer to one poll with a device code (RFC 8628, 3.4-3.5)."""
    code = form.get("device_code", "")
    if not code:
        raise OAuthError("invalid_request", "the device_code parameter is missing")
    now = time.time()
    grant = ctx.store.poll_device_grant(hash_token(code), client.id, now)
    if grant is None:
        raise OAuthError("invalid_grant", "the device code is not valid (or expired long "
                         "ago): start the login again")
    if grant.client_id != client.id:
        raise OAuthError("invalid_grant", "the device code was issued to another client")
    if grant.used:
        revoke_grant(ctx, grant.grant_id)
        raise OAuthError("invalid_grant", "the device code was already used; the tokens "
                         "issued for it are revoked. Log in again.")
    if grant.expires_at <= now:
        raise OAuthError("expired_token", "the device code has expired before it was "
                         "approved: start the login again")
    if grant.status == DEVICE_DENIED:
        raise OAuthError("access_denied", "the user denied this login on the verification page")
    if grant.status == DEVICE_PENDING:
        if grant.last_polled_at is not None and now - grant.last_polled_at < grant.interval:
            wait = grant.interval + 5
            raise OAuthError("slow_down", f"polled sooner than every {grant.interval:g} s; "
                             f"wait {wait:g} s between polls from now on")
        raise OAuthError("authorization_pending", "the user has not yet approved this login")
    assert grant.user_id is not None  # approved: by whom is recorded with the decision
    try:
        scopes = by_resource_server(grant.scope)
    except UnknownScope as exc:
        raise OAuthError("invalid_scope", str(exc)) from None
    issued = issue(ctx, client, grant.user_id, scopes, grant.grant_id, True, now)
    if ctx.store.find_device_grant(grant.user_code_hash) is None:
        # Forgotten since this poll: a password change ended the user's logins while
        # these tokens were being made, and must end this one too.
        revoke_grant(ctx, grant.grant_id)
        raise OAuthError("invalid_grant", "the password changed meanwhile; log in again")
    return issued
