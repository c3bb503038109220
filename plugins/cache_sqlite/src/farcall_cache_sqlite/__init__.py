"""farcall plugin: the ``sqlite`` result cache."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from farcall.plugins import hookimpl
from farcall.plugins.types import ResultCache, ResultCacheType


def _build(settings: Mapping[str, Any]) -> ResultCache:
    from farcall_cache_sqlite.cache import SqliteResultCache

    return SqliteResultCache.from_settings(settings)


@hookimpl
def farcall_result_caches() -> Iterable[ResultCacheType]:
    return [ResultCacheType("sqlite", _build, "completed results on disk, across sessions")]
