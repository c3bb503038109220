"""Grouping tests for pytest-xdist's ``--dist loadgroup`` (``make test`` runs the suite
on several workers).

Tests that share a module- or class-scoped fixture (a service process, a scaled stack,
a login server) go to one worker, as the ``xdist_group`` of their module: spread over
workers, each worker would start the fixture again. A test with an ``xdist_group``
mark of its own keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

#: Fixture scopes wider than a test and narrower than a worker's session.
SHARED_SCOPES = frozenset({"package", "module", "class"})


def shares_a_fixture(item: pytest.Item) -> bool:
    """Whether ``item`` uses a fixture set up once for several tests of its module."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(defs and defs[-1].scope in SHARED_SCOPES
               for defs in info.name2fixturedefs.values())


def group_by_module(items: Iterable[pytest.Item]) -> None:
    """Mark each test that shares a fixture with ``xdist_group(<its module>)``."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None and shares_a_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.partition("::")[0]))

