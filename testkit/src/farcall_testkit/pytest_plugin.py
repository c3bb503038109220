"""Fixtures every farcall distribution's tests may use, loaded through ``pytest11``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from farcall_testkit.official_endpoint import OfficialEndpoint
    from farcall_testkit.servers import PostgreSQL, RabbitMQ

#: The interpreter with the official globus-compute-sdk, set by ``make test``.
COMPAT_PYTHON = "FARCALL_COMPAT_PYTHON"


def pytest_sessionfinish(session: pytest.Session) -> None:
    from farcall_testkit import figures

    figures.hand_over(session.config)


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's: on the controller, a worker is done
def pytest_testnodedown(node: object, error: object) -> None:
    from farcall_testkit import figures

    figures.take_over(node)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from farcall_testkit import figures

    figures.summarize(terminalreporter)


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


@pytest.fixture
def official_endpoint(
    request: pytest.FixtureRequest, tmp_path: Path, postgresql: PostgreSQL, broker_url: str
) -> Iterator[OfficialEndpoint]:
    """The official ``globus-compute-endpoint`` (configured, not started), run by an
    unprivileged user made for the test, logging in with an OAuth client of the user
    ``alice`` of a farcall service on 127.0.0.1:5000 (RabbitMQ broker, scratch vhost
    and database): ``.farcall`` is that side. Skips (or fails, with
    ``FARCALL_REQUIRE_SERVERS=1``) when not root or the port is taken by something else
    than another such test (which it waits for)."""
    from farcall_testkit import official_endpoint as official
    from farcall_testkit.scaled import broker_installed
    from farcall_testkit.servers import unavailable

    problem = official.can_make_users()
    if problem is None and not broker_installed():
        problem = "no installed broker serves amqp:// URLs: install plugins/broker_rabbitmq"
    if problem is not None:
        unavailable(problem)
    script = official.endpoint_venv(official.venv_path(request.config.rootpath))
    db_url = postgresql.create_database()
    try:
        with (
            official.port_turn(),  # on 5000, one test at a time
            official.farcall_on_port(tmp_path / "farcall", db_url, broker_url) as farcall,
            official.official_endpoint(script, farcall) as endpoint,
        ):
            yield endpoint
    finally:
        postgresql.drop_database(db_url)
