"""farcall plugin: the ``rabbitmq`` broker (``--broker amqp://user:pass@host:5672/vhost``).

Loading the plugin imports nothing heavy: aio-pika only when a service builds the broker.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from farcall.plugins import hookimpl

if TYPE_CHECKING:
    from farcall_service.brokers.interface import Broker
    from farcall_service.kinds import BrokerType
    from farcall_service.settings import Settings
    from farcall_service.storage.interface import Store


def _build(settings: Settings, store: Store) -> Broker:
    from farcall_broker_rabbitmq.broker import RabbitMQBroker

    return RabbitMQBroker(settings)


@hookimpl
def farcall_brokers() -> Iterable[BrokerType]:
    from farcall_service.kinds import BrokerType

    return [BrokerType(
        "rabbitmq", _build,
        "any number of service processes on one database; wake-ups and result streams "
        "over RabbitMQ",
        schemes=("amqp", "amqps"),
    )]
