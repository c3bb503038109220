"""The ``http`` transport: a pooled urllib3 connection pool with retries and clear errors.

urllib3 (which requests is built on) is used directly: on a keep-alive connection to a
local service a request through ``requests.Session`` costs about three times as much
client time, which is most of a round trip when the service is on the same machine.
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from farcall.plugins.types import Authorizer
from farcall.sdk.errors import FarcallAPIError, ServiceUnreachable
from farcall.sdk.plain_http import check_url

if TYPE_CHECKING:
    from farcall.sdk.channel import Channel, Fallback, PushHandler

#: Statuses the official SDK also retries; Retry-After is honoured on 429 and 503.
RETRY_STATUSES = (429, 500, 502, 503, 504)


class HttpTransport:
    def __init__(
        self, base_url: str, authorizer: Authorizer | None, settings: Mapping[str, Any]
    ) -> None:
        import urllib3
        from urllib3.util.retry import Retry

        self.base_url = check_url(base_url.rstrip("/"))
        self.authorizer = authorizer
        self.timeout = float(settings.get("timeout", 60.0))
        self._retry = Retry(
            total=int(settings.get("retries", 5)),
            connect=2,
            backoff_factor=float(settings.get("backoff", 0.2)),
            status_forcelist=RETRY_STATUSES,
            allowed_methods=None,
            respect_retry_after_header=True,
            raise_on_status=False,
            redirect=0,
        )
        # One service, so one connection pool: a PoolManager would parse the URL and
        # pick the pool again for every request.
        self._pool = urllib3.connection_from_url(self.base_url, maxsize=16, block=False)
        self._path_prefix = urllib3.util.parse_url(self.base_url).path or ""
        self._headers = {"Accept": "application/json", "User-Agent": f"farcall-sdk/{_version()}"}
        self._errors = (urllib3.exceptions.HTTPError, OSError)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        headers = dict(self._headers)
        if self.authorizer is not None:
            header = self.authorizer.get_authorization_header()
            if header:
                headers["Authorization"] = header
        body = None
        if json is not None:
            body = jsonlib.dumps(json, separators=(",", ":"), allow_nan=False).encode()
            headers["Content-Type"] = "application/json"
        url = self._path_prefix + path
        if params:
            url += "?" + urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
        try:
            response = self._pool.urlopen(
                method, url, body=body, headers=headers, retries=self._retry,
                timeout=timeout or self.timeout, redirect=False, preload_content=True,
            )
        except self._errors as exc:
            raise ServiceUnreachable(
                f"{method} {path}: the farcall service at {self.base_url} did not answer "
                f"({type(_root_cause(exc)).__name__}). Is it running?"
            ) from None
        if response.status >= 400:
            raise _api_error(method, path, response.status, response.reason, response.data)
        if not response.data:
            return None
        return jsonlib.loads(response.data)

    def upload(self, method: str, path: str, chunks: Iterable[bytes], *, size: int,
               timeout: float | None = None) -> Any:
        """Send ``size`` bytes from ``chunks`` as the body (not retried: the chunks
        cannot be sent twice) and return the decoded JSON answer."""
        headers = self._signed({"Content-Type": "application/octet-stream",
                                "Content-Length": str(size)})
        try:
            response = self._pool.urlopen(
                method, self._path_prefix + path, body=chunks, headers=headers, retries=False,
                timeout=timeout or self.timeout, redirect=False, preload_content=True)
        except self._errors as exc:
            raise self._unreachable(method, path, exc) from None
        if response.status >= 400:
            raise _api_error(method, path, response.status, response.reason, response.data)
        return jsonlib.loads(response.data) if response.data else None

    def download(self, path: str, *, params: Mapping[str, Any] | None = None,
                 timeout: float | None = None) -> Iterator[bytes]:
        """The answer's body in chunks, as they arrive; an error answer raises here,
        before the first chunk."""
        url = self._path_prefix + path
        if params:
            url += "?" + urlencode(params)
        try:
            response = self._pool.urlopen(
                "GET", url, headers=self._signed({}), retries=self._retry,
                timeout=timeout or self.timeout, redirect=False, preload_content=False)
        except self._errors as exc:
            raise self._unreachable("GET", path, exc) from None
        if response.status >= 400:
            data = response.read()
            response.release_conn()
            raise _api_error("GET", path, response.status, response.reason, data)
        return _chunks(response)

    def _signed(self, extra: dict[str, str]) -> dict[str, str]:
        headers = {**self._headers, **extra}
        if self.authorizer is not None:
            header = self.authorizer.get_authorization_header()
            if header:
                headers["Authorization"] = header
        return headers

    def _unreachable(self, method: str, path: str, exc: BaseException) -> ServiceUnreachable:
        return ServiceUnreachable(
            f"{method} {path}: the farcall service at {self.base_url} did not answer "
            f"({type(_root_cause(exc)).__name__}). Is it running?")

    def open_channel(
        self, path: str, fallback: Fallback, on_push: PushHandler | None = None
    ) -> Channel:
        """A WebSocket channel at ``path`` on the same service, opened on first use."""
        from farcall.sdk.channel import Channel

        return Channel(self.base_url, path, self.authorizer, fallback, on_push=on_push)

    def close(self) -> None:
        self._pool.close()


def _chunks(response: Any) -> Iterator[bytes]:
    try:
        yield from response.stream(1024 * 1024)
    finally:
        response.release_conn()


def _api_error(method: str, path: str, status: int, reason: str | None,
               data: bytes) -> FarcallAPIError:
    try:
        body = jsonlib.loads(data)
        code, message = str(body["code"]), str(body["message"])
    except Exception:
        code = f"HTTP_{status}"
        message = (data.decode("utf-8", "replace") or reason or "").strip()[:300]
    return FarcallAPIError(method, path, status, code, message)


def _version() -> str:
    from farcall import __version__

    return __version__


def _root_cause(exc: BaseException) -> BaseException:
    """The error underneath urllib3's wrappers (``MaxRetryError`` -> ``NewConnectionError``
    -> ``ConnectionRefusedError``): the name that tells a user what happened."""
    for _ in range(10):  # wrappers nest a few deep; never loop on a cycle
        reason = getattr(exc, "reason", None)
        inner = reason if isinstance(reason, BaseException) else exc.__cause__ or exc.__context__
        if inner is None or inner is exc:
            break
        exc = inner
    return exc
