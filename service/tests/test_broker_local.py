"""The ``local`` broker meets the broker contract, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from farcall_service.settings import Settings
from farcall_service.testing.broker_contract import BrokerContract


class TestLocalBroker(BrokerContract):
    name = "local"


class TestLocalBrokerOnPostgreSQL(BrokerContract):
    name = "local"

    @pytest.fixture
    def settings(self, tmp_path: Path, postgresql_url: str) -> Settings:
        return Settings(home=tmp_path, db_url=postgresql_url, broker=self.name)


def test_the_app_takes_its_broker_from_the_plugin_manager_it_is_given(
    settings: Settings,
) -> None:
    from dataclasses import replace

    from farcall.plugins import get_plugin_manager, hookimpl
    from farcall_service.app import create_app
    from farcall_service.brokers.local import LocalBroker
    from farcall_service.kinds import BrokerType
    from fastapi.testclient import TestClient

    built: list[LocalBroker] = []

    def factory(settings: Settings, _store: object) -> LocalBroker:
        built.append(LocalBroker(settings.database_url))
        return built[-1]

    class Plugin:
        @hookimpl
        def farcall_brokers(self) -> list[BrokerType]:
            return [BrokerType("counted", factory)]

    pm = get_plugin_manager(load_entrypoints=False)  # the service's own plugin is added
    pm.register(Plugin(), name="counted-broker")
    app = create_app(replace(settings, broker="counted"), plugin_manager=pm)
    assert app.state.farcall.lifecycle.broker is built[0]
    with TestClient(app) as client:
        assert client.get("/openapi.json").status_code == 200
    with pytest.raises(Exception, match="'counted'"):  # the choices are listed
        create_app(replace(settings, broker="missing"), plugin_manager=pm)
