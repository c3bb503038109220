"""Fixtures every farcall distribution's tests may use, loaded through ``pytest11``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from farcall_testkit.servers import PostgreSQL, RabbitMQ

#: The interpreter with the official globus-compute-sdk, set by ``make test``.
COMPAT_PYTHON = "FARCALL_COMPAT_PYTHON"


@pytest.fixture(scope="session")
def compat_python() -> str:
    """The interpreter of .venv-compat, which has the official globus-compute-sdk."""
    path = os.environ.get(COMPAT_PYTHON)
    if not path or not Path(path).exists():
        pytest.skip(f"{COMPAT_PYTHON} is not set: run through `make test`")
    return path


@pytest.fixture(scope="session")
def postgresql() -> Iterator[PostgreSQL]:
    """The PostgreSQL server to make scratch databases on; every one made is dropped at
    the end of the run. Unreachable: the tests skip, or fail with
    ``FARCALL_REQUIRE_SERVERS=1``."""
    from farcall_testkit.servers import PostgreSQL

    server = PostgreSQL.from_environment()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQ]:
    """The RabbitMQ server to make scratch vhosts on; every vhost made, and every user
    named with the run's prefix, is deleted at the end of the run. Unreachable: the
    tests skip, or fail with ``FARCALL_REQUIRE_SERVERS=1``."""
    from farcall_testkit.servers import RabbitMQ

    server = RabbitMQ.from_environment()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def broker_url(rabbitmq: RabbitMQ) -> Iterator[str]:
    """The ``amqp://`` URL of a new RabbitMQ vhost for one test, deleted after it."""
    url = rabbitmq.create_vhost()
    yield url
    rabbitmq.delete_vhost(url)
