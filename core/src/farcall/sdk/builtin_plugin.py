"""The SDK's defaults: the http transport, the memory cache, static tokens."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from farcall.plugins import hookimpl
from farcall.plugins.types import (
    Authorizer,
    LoginManager,
    LoginManagerType,
    ResultCache,
    ResultCacheType,
    Transport,
    TransportType,
)


def _http(base_url: str, authorizer: Authorizer | None, settings: Mapping[str, Any]) -> Transport:
    from farcall.sdk.http_transport import HttpTransport

    return HttpTransport(base_url, authorizer, settings)


def _memory(settings: Mapping[str, Any]) -> ResultCache:
    from farcall.sdk.memory_cache import MemoryResultCache

    return MemoryResultCache(settings)


def _static(settings: Mapping[str, Any]) -> LoginManager | None:
    from farcall.sdk.login import static_token_factory

    return static_token_factory(settings)


@hookimpl(trylast=True)
def farcall_transports() -> Iterable[TransportType]:
    return [TransportType("http", _http, "HTTP(S) with pooled connections and retries")]


@hookimpl(trylast=True)
def farcall_result_caches() -> Iterable[ResultCacheType]:
    return [ResultCacheType("memory", _memory, "completed results, for this session")]


@hookimpl(trylast=True)
def farcall_login_managers() -> Iterable[LoginManagerType]:
    return [LoginManagerType("static-token", _static, "FARCALL_TOKEN or the farcall dev profile")]


@hookimpl(trylast=True)
def farcall_login_manager(settings: Mapping[str, Any]) -> LoginManager | None:
    """Last in the chain: a static token, when one is configured (the ``farcall dev``
    profile's; ``FARCALL_TOKEN`` is asked earlier, see :mod:`farcall.sdk.environment_plugin`)."""
    return _static(settings)
