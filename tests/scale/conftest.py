"""Scaled-stack tests: three ``farcall server start`` processes on one scratch
PostgreSQL database and one scratch RabbitMQ vhost, behind a round-robin proxy.

Starting a stack costs seconds, so each module shares one (``scaled``); tests that
break things use endpoints and functions of their own. The servers unreachable: the
tests skip, or fail with ``FARCALL_REQUIRE_SERVERS=1``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("farcall_service")
pytest.importorskip("farcall_endpoint")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from farcall_testkit.scaled import SERVICE_ARGS, ScaledStack, scaled_stack  # noqa: E402

#: Claimed tasks of a killed endpoint come back this soon (seconds).
REQUEUE_TIMEOUT = 6


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory, postgresql: Any, rabbitmq: Any
           ) -> Iterator[ScaledStack]:
    """Three processes behind a proxy, claimed tasks of a dead endpoint requeued soon."""
    args = (*SERVICE_ARGS, "--requeue-timeout", str(REQUEUE_TIMEOUT))
    with scaled_stack(tmp_path_factory.mktemp("scaled"), postgresql, rabbitmq, 3, args) as stack:
        yield stack
