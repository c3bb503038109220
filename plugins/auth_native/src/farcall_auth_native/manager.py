"""The native-app login manager: tokens from ``farcall login``, refreshed silently.

Tokens live in globus-sdk's ``JSONTokenStorage`` at ``$FARCALL_HOME/tokens.json``
(created owner-only), one namespace per auth provider, so logins to several services
(or to Globus Auth) coexist. A refreshed token is written back at once; the provider
rotates refresh tokens, so the stored one is always the latest.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from farcall.errors import FarcallError, LoginRequired
from farcall.private_files import in_farcall_home, private_dir, tighten_file
from farcall.sdk.login import auth_base_url
from farcall.sdk.profile import farcall_home

#: farcall's built-in public client: it exists on every farcall service.
FARCALL_NATIVE_CLIENT_ID = "b3eb108b-24b6-586c-a337-dd3bebd706f3"
COMPUTE_SCOPE = "https://auth.globus.org/scopes/facd7ccc-c5f4-42aa-916b-a0e270e2c2a9/all"
COMPUTE_RESOURCE_SERVER = "funcx_service"
AUTH_RESOURCE_SERVER = "auth.globus.org"
SCOPES = (COMPUTE_SCOPE, "openid", "profile")
#: Seconds ``farcall login`` waits for the browser's sign-in to come back.
BROWSER_LOGIN_TIMEOUT = 600.0
#: RFC 8693 token exchange, as the farcall service accepts it (``fork_login``).
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
REFRESH_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:refresh_token"


class NotLoggedIn(LoginRequired):
    """No stored tokens for this provider, or they can no longer be refreshed."""


class NativeLoginManager:
    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        settings = settings or {}
        self._settings = dict(settings)
        self.auth_url = auth_base_url(settings)
        self.client_id = str(
            settings.get("client_id")
            or os.environ.get("FARCALL_AUTH_CLIENT_ID")
            or FARCALL_NATIVE_CLIENT_ID
        )
        self.token_file = Path(settings.get("token_file") or farcall_home() / "tokens.json")
        self._storage: Any = None
        self._auth_client: Any = None

    # -- plumbing ----------------------------------------------------------------------

    @property
    def storage(self) -> Any:
        if self._storage is None:
            from globus_sdk.token_storage import JSONTokenStorage

            # globus-sdk writes new token files 0600 but makes the folder with the umask
            # and keeps the mode of a file it overwrites: owner-only, whoever came first.
            folder = self.token_file.parent
            private_dir(folder, tighten=in_farcall_home(folder))
            tighten_file(self.token_file)
            self._storage = JSONTokenStorage(self.token_file, namespace=self.auth_url)
        return self._storage

    @property
    def auth_client(self) -> Any:
        if self._auth_client is None:
            import globus_sdk

            self._auth_client = globus_sdk.NativeAppAuthClient(
                self.client_id, base_url=self.auth_url
            )
        return self._auth_client

    def has_tokens(self) -> bool:
        if not self.token_file.exists():
            return False
        return self.storage.get_token_data(COMPUTE_RESOURCE_SERVER) is not None

    def _authorizer_for(self, resource_server: str) -> Any:
        import globus_sdk

        data = self.storage.get_token_data(resource_server)
        if data is None:
            raise NotLoggedIn(
                f"not logged in to {self.auth_url}: run `farcall login`"
            )
        if data.refresh_token:
            return _ExplainedRefresh(
                globus_sdk.RefreshTokenAuthorizer(
                    data.refresh_token,
                    self.auth_client,
                    access_token=data.access_token,
                    expires_at=data.expires_at_seconds,
                    on_refresh=self.storage.store_token_response,
                ),
                self.auth_url,
            )
        if data.expires_at_seconds <= time.time():
            raise NotLoggedIn(f"the stored login for {self.auth_url} has expired: run "
                              "`farcall login`")
        return globus_sdk.AccessTokenAuthorizer(data.access_token)

    # -- the login manager protocol ------------------------------------------------------

    def ensure_logged_in(self) -> bool:
        """Stored tokens, or a login on the spot when someone is at the terminal
        (``Client(force_login=True)`` logs out first and lands here)."""
        if self.has_tokens():
            return True
        if sys.stdin is not None and sys.stdin.isatty():
            self.login_interactively()
            return True
        raise NotLoggedIn(f"not logged in to {self.auth_url}: run `farcall login`")

    def get_authorizer(self) -> Any:
        return self._authorizer_for(COMPUTE_RESOURCE_SERVER)

    def get_auth_client(self) -> Any:
        import globus_sdk

        return globus_sdk.AuthClient(
            base_url=self.auth_url, authorizer=self._authorizer_for(AUTH_RESOURCE_SERVER)
        )

    def logout(self) -> bool:
        """Revoke stored tokens at the provider (best effort) and forget them."""
        import globus_sdk

        if not self.token_file.exists():
            return False
        stored = self.storage.get_token_data_by_resource_server()
        for server, data in stored.items():
            for token in (data.refresh_token, data.access_token):
                # Best effort: forgetting the token locally still logs out.
                if token:
                    with contextlib.suppress(globus_sdk.GlobusAPIError, globus_sdk.NetworkError):
                        self.auth_client.oauth2_revoke_token(token)
            self.storage.remove_token_data(server)
        return bool(stored)

    def fork_login(self, token_file: Path) -> NativeLoginManager:
        """A login of its own for a long-running process (an endpoint), kept in
        ``token_file``: logging out here revokes this login only, and leaves that one
        alone. Made once, by exchanging this login's refresh token for a second login of
        the same user and scope (RFC 8693); later calls find it stored. Without a
        refresh token to exchange, this login is used as it is."""
        if Path(token_file) == self.token_file:
            return self
        own = NativeLoginManager({**self._settings, "token_file": str(token_file)})
        if own.has_tokens():
            return own
        data = self.storage.get_token_data(COMPUTE_RESOURCE_SERVER)
        if data is None or not data.refresh_token:
            return self
        import globus_sdk

        try:
            tokens = self.auth_client.oauth2_token({
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": data.refresh_token,
                "subject_token_type": REFRESH_TOKEN_TYPE,
                "client_id": self.client_id,
            })
        except globus_sdk.GlobusAPIError as exc:
            raw = exc.raw_json or {}
            reason = raw.get("error_description") or raw.get("message") or exc.message
            raise NotLoggedIn(f"could not make a login of its own from the one stored for "
                              f"{self.auth_url} ({reason}): run `farcall login`") from None
        own.storage.store_token_response(tokens)
        return own

    # -- the flow ------------------------------------------------------------------------

    def start_flow(self, redirect_uri: str | None = None, state: str | None = None) -> str:
        """Begin a native-app flow (PKCE); return the URL to open. Without
        ``redirect_uri`` the provider's own page shows the code to paste."""
        import globus_sdk

        self.auth_client.oauth2_start_flow(
            requested_scopes=list(SCOPES),
            refresh_tokens=True,
            redirect_uri=redirect_uri or globus_sdk.MISSING,
            state=state or "_default",
        )
        return str(self.auth_client.oauth2_get_authorize_url())

    def login_interactively(
        self,
        echo: Callable[[str], Any] = print,
        read_code: Callable[[str], str] = input,
        browser: bool = True,
    ) -> None:
        """Sign in and store tokens: in a browser opened here whose redirect is caught
        on a loopback port, else (``browser=False``, or no browser can be opened) by
        pasting the code the sign-in page shows."""
        if browser:
            from farcall_auth_native.loopback import LoopbackRedirect, NoBrowser, open_browser

            try:
                with LoopbackRedirect() as redirect:
                    url = self.start_flow(redirect.redirect_uri, redirect.state)
                    open_browser(url)
                    echo(f"Sign in in the browser that opened; if none did, open:\n\n  {url}\n")
                    code = redirect.wait(BROWSER_LOGIN_TIMEOUT)
            except NoBrowser as exc:
                echo(f"Not opening a browser: {exc}.")
            else:
                self.finish_flow(code)
                return
        url = self.start_flow()
        echo(f"Open this URL in a browser and sign in:\n\n  {url}\n")
        self.finish_flow(read_code("Paste the authorization code here: "))

    def login_with_device_code(
        self,
        echo: Callable[[str], Any] = print,
        progress: Callable[[str], Any] | None = None,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        """Log in with the device flow (RFC 8628): show a URL and a short code, which
        the user approves in a browser anywhere, and poll for the tokens meanwhile.
        Nothing is read from the terminal and no browser is needed here."""
        from farcall_auth_native.device import DeviceLogin

        tokens = DeviceLogin(self.auth_client, self.client_id, list(SCOPES), self.auth_url,
                             sleep=sleep).run(echo, progress or _dots)
        self.storage.store_token_response(tokens)

    def finish_flow(self, code: str) -> None:
        import globus_sdk

        try:
            tokens = self.auth_client.oauth2_exchange_code_for_tokens(code.strip())
        except globus_sdk.GlobusAPIError as exc:
            raw = exc.raw_json or {}
            reason = raw.get("error_description") or raw.get("message") or exc.message
            raise FarcallError(f"login failed: {reason}") from None
        self.storage.store_token_response(tokens)

    def userinfo(self) -> dict[str, Any]:
        return dict(self.get_auth_client().userinfo().data)


def _dots(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


class _ExplainedRefresh:
    """A refresh-token authorizer whose failures say what to do: a refresh refused by
    the provider (revoked, expired, replayed) means logging in again."""

    def __init__(self, inner: Any, auth_url: str) -> None:
        self.inner = inner
        self.auth_url = auth_url

    def get_authorization_header(self) -> str | None:
        import globus_sdk

        try:
            return self.inner.get_authorization_header()
        except globus_sdk.GlobusAPIError as exc:
            raw = exc.raw_json or {}
            reason = raw.get("error_description") or raw.get("message") or exc.message
            raise NotLoggedIn(
                f"the stored login for {self.auth_url} could not be refreshed ({reason}): "
                "run `farcall login`"
            ) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
