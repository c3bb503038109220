"""The ``http`` transport: a pooled requests session with retries and clear errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from farcall.plugins.types import Authorizer
from farcall.sdk.errors import FarcallAPIError, ServiceUnreachable

#: Statuses the official SDK also retries; Retry-After is honoured on 429 and 503.
RETRY_STATUSES = (429, 500, 502, 503, 504)


class HttpTransport:
    def __init__(
        self, base_url: str, authorizer: Authorizer | None, settings: Mapping[str, Any]
    ) -> None:
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        self.base_url = base_url.rstrip("/")
        self.authorizer = authorizer
        self.timeout = float(settings.get("timeout", 60.0))
        retry = Retry(
            total=int(settings.get("retries", 5)),
            connect=2,
            backoff_factor=float(settings.get("backoff", 0.2)),
            status_forcelist=RETRY_STATUSES,
            allowed_methods=None,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self.session = requests.Session()
        self.session.mount("http://", HTTPAdapter(max_retries=retry, pool_maxsize=16))
        self.session.mount("https://", HTTPAdapter(max_retries=retry, pool_maxsize=16))
        self.session.headers["Accept"] = "application/json"
        self.session.headers["User-Agent"] = f"farcall-sdk/{_version()}"
        self._requests = requests

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        headers = {}
        if self.authorizer is not None:
            header = self.authorizer.get_authorization_header()
            if header:
                headers["Authorization"] = header
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                json=json,
                params=params,
                headers=headers,
                timeout=timeout or self.timeout,
            )
        except self._requests.RequestException as exc:
            raise ServiceUnreachable(
                f"{method} {path}: the farcall service at {self.base_url} did not answer "
                f"({type(exc).__name__}). Is it running?"
            ) from None
        if response.status_code >= 400:
            raise _api_error(method, path, response)
        if not response.content:
            return None
        return response.json()

    def close(self) -> None:
        self.session.close()


def _api_error(method: str, path: str, response: Any) -> FarcallAPIError:
    try:
        body = response.json()
        code, message = str(body["code"]), str(body["message"])
    except Exception:
        code = f"HTTP_{response.status_code}"
        message = (response.text or response.reason or "").strip()[:300]
    return FarcallAPIError(method, path, response.status_code, code, message)


def _version() -> str:
    from farcall import __version__

    return __version__
