"""The client-credentials login manager, on globus-sdk's confidential client.

globus-sdk's ``ClientCredentialsAuthorizer`` fetches a token on first use and a new
one shortly before it expires, so a long-running endpoint never holds an expired
token. Nothing is stored on disk: the secret can always get a fresh token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from farcall.errors import FarcallError
from farcall.sdk.login import auth_base_url

from farcall_auth_client_creds.environment import ClientCredentials

#: The compute scope; its tokens are for the resource server ``funcx_service``.
COMPUTE_SCOPE = "https://auth.globus.org/scopes/facd7ccc-c5f4-42aa-916b-a0e270e2c2a9/all"


class ClientCredentialsLoginManager:
    """Acts as the client app's own identity, as the guide describes."""

    def __init__(self, credentials: ClientCredentials, settings: Mapping[str, Any]) -> None:
        import globus_sdk

        self.credentials = credentials
        self.auth_url = auth_base_url(settings)
        self.scope = str(settings.get("scope") or COMPUTE_SCOPE)
        self.auth_client = globus_sdk.ConfidentialAppAuthClient(
            credentials.client_id, credentials.secret, base_url=self.auth_url
        )
        self._authorizer: Any = None

    def ensure_logged_in(self) -> bool:
        """Fetch a token now, so bad credentials fail here with a clear message."""
        self.get_authorizer()
        return True

    def get_authorizer(self) -> Any:
        """globus-sdk's authorizer, built (and its first token fetched) on first use."""
        import globus_sdk

        if self._authorizer is not None:
            return self._authorizer
        try:
            self._authorizer = globus_sdk.ClientCredentialsAuthorizer(self.auth_client, self.scope)
        except globus_sdk.GlobusAPIError as exc:
            raise FarcallError(
                f"client credentials ({self.credentials.source}) were refused by "
                f"{self.auth_url}: {exc.http_status} {_describe(exc)}"
            ) from None
        except globus_sdk.NetworkError as exc:
            raise FarcallError(
                f"cannot reach the auth service at {self.auth_url} ({type(exc).__name__})"
            ) from None
        return self._authorizer

    def logout(self) -> bool:
        return False  # nothing is stored; the secret stays valid until deleted

    def get_auth_client(self) -> Any:
        return self.auth_client

    def __repr__(self) -> str:
        return f"ClientCredentialsLoginManager(client_id={self.credentials.client_id!r})"


def _describe(exc: Any) -> str:
    raw = getattr(exc, "raw_json", None) or {}
    return str(raw.get("error_description") or raw.get("message") or exc.message or exc.code)
