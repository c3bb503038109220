"""The sqlite result cache passes the result cache contract, across instances too."""

from __future__ import annotations

from farcall.testing.result_cache_contract import ResultCacheContract


class TestSqliteResultCache(ResultCacheContract):
    name = "sqlite"
    persistent = True
