"""Scaled-stack tests: three ``farcall server start`` processes on one scratch
PostgreSQL database and one scratch RabbitMQ vhost, behind a round-robin proxy.

Starting a stack costs seconds, so each module shares one (``scaled``); tests that
break things use endpoints and functions of their own. The servers unreachable: the
tests skip, or fail with ``FARCALL_REQUIRE_SERVERS=1``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("farcall_service")
pytest.importorskip("farcall_endpoint")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale_kit as kit  # noqa: E402
from farcall_testkit.scaled import SERVICE_ARGS, ScaledStack  # noqa: E402

#: Claimed tasks of a killed endpoint come back this soon (seconds).
REQUEUE_TIMEOUT = 6


def _broker_installed() -> bool:
    """Whether an installed broker serves ``amqp://`` URLs (farcall-broker-rabbitmq)."""
    from farcall.plugins import get_plugin_manager
    from farcall_service.kinds import BROKERS
    from farcall_service.plugin import ensure_registered

    manager = get_plugin_manager()
    ensure_registered(manager)
    return any("amqp" in record.schemes for record in manager.records(BROKERS).values())


StackFactory = Callable[..., ScaledStack]


@pytest.fixture(scope="module")
def make_stack(tmp_path_factory: pytest.TempPathFactory, postgresql: Any, rabbitmq: Any
               ) -> Iterator[StackFactory]:
    """Starts stacks on scratch databases and vhosts; all are stopped and removed at
    the end of the module."""
    if not _broker_installed():
        pytest.skip("no installed broker serves amqp:// URLs: install plugins/broker_rabbitmq")
    made: list[tuple[ScaledStack, str, str]] = []

    def make(processes: int = 3, args: tuple[str, ...] = ()) -> ScaledStack:
        db_url, broker_url = postgresql.create_database(), rabbitmq.create_vhost()
        stack = ScaledStack(tmp_path_factory.mktemp("scaled"), db_url, broker_url,
                            processes=processes, args=(*SERVICE_ARGS, *args))
        made.append((stack, db_url, broker_url))
        return stack.start()

    try:
        yield make
    finally:
        for stack, db_url, broker_url in made:
            stack.close()
            postgresql.drop_database(db_url)
            rabbitmq.delete_vhost(broker_url)


@pytest.fixture(scope="module")
def scaled(make_stack: StackFactory) -> ScaledStack:
    """Three processes behind a proxy, claimed tasks of a dead endpoint requeued soon."""
    return make_stack(3, ("--requeue-timeout", str(REQUEUE_TIMEOUT)))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not kit.FIGURES:
        return
    terminalreporter.write_sep("=", "scaled-stack figures (soak)" if kit.SOAK
                               else "scaled-stack figures")
    for section in sorted(kit.FIGURES):
        values = ", ".join(f"{name}={kit._fmt(value)}"
                           for name, value in kit.FIGURES[section].items())
        terminalreporter.write_line(f"{section}: {values}")
