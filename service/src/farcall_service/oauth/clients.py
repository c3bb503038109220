"""Who is asking at the token endpoints: the built-in native client or a confidential one.

Confidential clients authenticate with HTTP Basic (as globus-sdk sends it) or with
``client_id``/``client_secret`` form fields. Their secrets are stored as SHA-256 and
compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from farcall_service.oauth import NATIVE_CLIENT_ID, PREFIX
from farcall_service.oauth.tokens import OAuthError
from farcall_service.storage.interface import Store
from farcall_service.tokens import hash_token

#: Where the login page shows the code when the client names no page of its own;
#: globus-sdk's native flow uses this path under the auth base URL by default.
AUTH_CODE_PATH = PREFIX + "/v2/web/auth-code"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class CallingClient:
    id: str
    confidential: bool
    #: The principal a confidential client's own tokens carry.
    principal_id: str | None = None
    owner_id: str | None = None


def _invalid(message: str) -> OAuthError:
    return OAuthError("invalid_client", message, 401)


def _confidential(store: Store, client_id: str, secret: str) -> CallingClient:
    client = store.get_oauth_client(client_id) if _looks_like_id(client_id) else None
    expected = client.secret_hash if client else hash_token("absent")
    if not hmac.compare_digest(hash_token(secret), expected) or client is None:
        raise _invalid("unknown client id or wrong client secret")
    return CallingClient(client.id, True, client.principal_id, client.owner_id)


def authenticate_client(
    store: Store, authorization: str | None, form: Mapping[str, str]
) -> CallingClient:
    """The client of a token-endpoint request, or ``invalid_client``."""
    if authorization and authorization.lower().startswith("basic "):
        try:
            raw = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
            client_id, secret = raw.split(":", 1)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise _invalid("the Basic authorization header is malformed") from None
        return _confidential(store, unquote(client_id), unquote(secret))
    client_id = form.get("client_id", "")
    if form.get("client_secret"):
        return _confidential(store, client_id, form["client_secret"])
    if client_id == NATIVE_CLIENT_ID:
        return CallingClient(NATIVE_CLIENT_ID, False)
    if client_id and _looks_like_id(client_id) and store.get_oauth_client(client_id):
        raise _invalid("this client is confidential: authenticate with its secret")
    if client_id:
        raise _invalid("unknown client id")
    raise _invalid("no client credentials: send HTTP Basic auth or a client_id")


def known_client(store: Store, client_id: str) -> bool:
    if client_id == NATIVE_CLIENT_ID:
        return True
    return _looks_like_id(client_id) and store.get_oauth_client(client_id) is not None


def describe_client(store: Store, client_id: str) -> str:
    """Who asks, in words for the sign-in page: farcall's own app or a registered client
    (its name, id and owner), so a user can tell which application they let in."""
    if client_id == NATIVE_CLIENT_ID:
        return "farcall's own app (the farcall command line and SDK login)"
    client = store.get_oauth_client(client_id) if _looks_like_id(client_id) else None
    if client is None:
        return f"an unknown application ({client_id[:64]})"
    owner = store.get_user(client.owner_id)
    label = client.name or "unnamed"
    by = f", owned by {owner.name}" if owner is not None else ""
    return f"\"{label}\", an application registered with this service (client {client.id}{by})"


#: Characters a browser reads differently from ``urllib`` (WHATWG turns ``\\`` into ``/``
#: and drops tabs and newlines), or that no redirect URI of ours needs.
_AMBIGUOUS = re.compile(r"[\\\x00-\x20\x7f-\U0010ffff#]")


def redirect_allowed(redirect_uri: str, service_host: str) -> bool:
    """This service's own code page or dashboard, or a loopback address (RFC 8252
    native apps).

    Anything else could hand a user's code to a third party, so it is refused without
    redirecting. A URI that browsers could parse differently from this check (a
    backslash, whitespace or control characters, a user name or password before the
    host, a fragment, percent-escapes in the host) is refused outright.
    """
    if len(redirect_uri) > 2048 or _AMBIGUOUS.search(redirect_uri):
        return False
    try:
        parts = urlsplit(redirect_uri)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    if not redirect_uri.lower().startswith(parts.scheme + "://"):
        return False
    if "@" in parts.netloc or "%" in parts.netloc:
        return False
    if parts.netloc == service_host and parts.path.rstrip("/") in (AUTH_CODE_PATH,
                                                                    "/dashboard/callback"):
        return True
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS


def _looks_like_id(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c.isalnum() or c == "-" for c in value)
