"""The device flow's client side (RFC 8628): ``farcall login --device``.

For a machine with no browser at all (a cluster's login node, a container): the CLI
shows a URL and a short code, the user opens the URL on any device (a laptop, a phone),
signs in and approves the code, and meanwhile the CLI polls the token endpoint at the
interval the provider names. Unlike ``--no-browser``, nothing has to be pasted back
into the terminal, so it also works where the CLI cannot read input.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from farcall.errors import FarcallError

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEVICE_AUTHORIZATION_PATH = "/v2/oauth2/device_authorization"
#: RFC 8628 section 3.5: 5 s when the provider names no interval, and 5 s more after
#: each ``slow_down``.
DEFAULT_INTERVAL = 5.0
SLOW_DOWN_STEP = 5.0
#: Network failures in a row that end the wait; fewer are waited out.
MAX_NETWORK_FAILURES = 5

AGAIN = "run `farcall login --device` again"


class DeviceLogin:
    """One device-flow login against ``auth_client`` (a globus-sdk ``NativeAppAuthClient``)."""

    def __init__(self, auth_client: Any, client_id: str, scopes: list[str], auth_url: str,
                 sleep: Callable[[float], Any] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.auth_client = auth_client
        self.client_id = client_id
        self.scopes = scopes
        self.auth_url = auth_url
        self.sleep = sleep
        self.clock = clock

    def start(self) -> dict[str, Any]:
        """The provider's device authorization answer (codes, URLs, lifetime, interval)."""
        import globus_sdk

        try:
            answer = self.auth_client.post(
                DEVICE_AUTHORIZATION_PATH, encoding="form",
                data={"client_id": self.client_id, "scope": " ".join(self.scopes)},
            )
        except globus_sdk.GlobusAPIError as exc:
            if exc.http_status in (404, 405):
                raise FarcallError(
                    f"{self.auth_url} does not offer the device login: use `farcall login "
                    "--no-browser` (open a URL anywhere, paste the code it shows)") from None
            raise FarcallError(f"could not start a device login: {_reason(exc)}") from None
        data = dict(answer.data)
        missing = [k for k in ("device_code", "user_code", "verification_uri") if not data.get(k)]
        if missing:
            raise FarcallError(f"{self.auth_url} answered the device login without "
                               f"{', '.join(missing)}")
        return data

    def run(self, echo: Callable[[str], Any], progress: Callable[[str], Any]) -> Any:
        """Show the URL and code, then poll until approved; the token response."""
        started = self.start()
        lifetime = float(started.get("expires_in") or 600)
        interval = float(started.get("interval") or DEFAULT_INTERVAL)
        echo("To log in, open this page in a browser on any device:\n\n"
             f"  {started['verification_uri']}\n\n"
             f"and enter the code:  {started['user_code']}\n")
        if started.get("verification_uri_complete"):
            echo("Or open this link, which already holds the code:\n\n"
                 f"  {started['verification_uri_complete']}\n")
        echo(f"Waiting for your approval (the code expires in {_minutes(lifetime)}); "
             "Ctrl-C gives up.")
        deadline = self.clock() + lifetime
        try:
            return self._poll(started["device_code"], interval, deadline, progress)
        finally:
            progress("\n")

    def _poll(self, device_code: str, interval: float, deadline: float,
              progress: Callable[[str], Any]) -> Any:
        import globus_sdk

        failures = 0
        while True:
            self.sleep(interval)
            try:
                return self.auth_client.oauth2_token({
                    "grant_type": DEVICE_CODE_GRANT, "device_code": device_code,
                    "client_id": self.client_id,
                })
            except globus_sdk.NetworkError as exc:
                failures += 1
                if failures >= MAX_NETWORK_FAILURES:
                    raise FarcallError(f"lost contact with {self.auth_url} while waiting "
                                       f"for the approval ({exc}): {AGAIN}") from None
                progress("!")
            except globus_sdk.GlobusAPIError as exc:
                failures = 0
                error = (exc.raw_json or {}).get("error")
                if error == "authorization_pending":
                    progress(".")
                elif error == "slow_down":
                    interval += SLOW_DOWN_STEP
                    progress(".")
                elif error == "access_denied":
                    raise FarcallError("the login was denied on the verification page: "
                                       f"{AGAIN} to try once more") from None
                elif error == "expired_token":
                    raise FarcallError(f"the code expired before it was approved: {AGAIN}, "
                                       "and approve it within its lifetime") from None
                else:
                    raise FarcallError(f"login failed: {_reason(exc)}") from None
            if self.clock() > deadline + interval:
                raise FarcallError(f"the code expired before it was approved: {AGAIN}")


def _reason(exc: Any) -> str:
    raw = exc.raw_json or {}
    return str(raw.get("error_description") or raw.get("message") or exc.message)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
