"""The ``rabbitmq`` broker: any number of service processes on one PostgreSQL database.

The database stays the truth and the queue (claims with ``FOR UPDATE SKIP LOCKED``);
RabbitMQ carries the movement: wake-ups between processes (``wakeups``), result
streams for the official Executor (``streams``) and task queues for endpoints that
take their tasks over AMQP (``endpoint_queues``). Since other processes serve the same
database, ``single_process`` is False: nothing this process remembers may answer for
the others.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid

from farcall_service.brokers.interface import BrokerError
from farcall_service.settings import Settings

from farcall_broker_rabbitmq.address import DEFAULT_URL, BrokerAddress
from farcall_broker_rabbitmq.connection import CONNECT_TIMEOUT, Connection
from farcall_broker_rabbitmq.credentials import StreamCredentials
from farcall_broker_rabbitmq.endpoint_queues import RabbitMQEndpointQueues
from farcall_broker_rabbitmq.interests import Interests
from farcall_broker_rabbitmq.management import Management
from farcall_broker_rabbitmq.offers import RemoteOffers
from farcall_broker_rabbitmq.peers import Peers
from farcall_broker_rabbitmq.streams import RabbitMQStreams
from farcall_broker_rabbitmq.wakeups import Fanout, SharedResultWakeups, SharedTaskWakeups

log = logging.getLogger(__name__)


class RabbitMQBroker:
    single_process = False

    def __init__(self, settings: Settings) -> None:
        url = settings.broker if "://" in settings.broker else DEFAULT_URL
        try:
            self.address = BrokerAddress.parse(url)
        except ValueError as exc:
            raise BrokerError(f"--broker: {exc}") from None
        #: Tells this process's wake-ups from the others' on the fanout exchange.
        self.origin = uuid.uuid4().hex
        self._connection = Connection(self.address, f"farcall-service-{self.origin[:12]}")
        self._fanout = Fanout(self._connection, self.origin)
        management = Management(
            settings.broker_management_url or self.address.management_url(), self.address.vhost)
        self.streams = RabbitMQStreams(
            self._connection, self.address, management,
            StreamCredentials(self.address.password, settings.stream_credential_ttl),
            settings.stream_queue_expiry)
        self.endpoints = RabbitMQEndpointQueues(
            self._connection, self.address, management,
            StreamCredentials(self.address.password, settings.stream_credential_ttl))
        self._lock = threading.Lock()
        self._started = False

    @property
    def tasks(self) -> SharedTaskWakeups:
        return self._fanout.tasks

    @property
    def results(self) -> SharedResultWakeups:
        return self._fanout.results

    @property
    def peers(self) -> Peers:
        """The other service processes this one hears on the wake-up fanout."""
        return self._fanout.peers

    @property
    def interests(self) -> Interests:
        """The keyed wake-ups this process hears (the keys its queue is bound to)."""
        return self._fanout.interests

    @property
    def offers(self) -> RemoteOffers:
        """The claims waiting in the other processes, as their offers came."""
        return self._fanout.offers

    @property
    def reconnections(self) -> int:
        """How many times the connection to RabbitMQ was made again after a drop."""
        return self._connection.reconnections

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Connect and start hearing the other processes; blocks until then, or raises
        :class:`BrokerError` saying why. ``loop``: the service's, where the connection
        then lives."""
        with self._lock:
            if self._started:
                return
            self._connection.open(loop=loop)
            try:
                self._connection.io.call(self._fanout.declare(), CONNECT_TIMEOUT)
                self._connection.io.call(self.streams.prepare(), CONNECT_TIMEOUT)
                self._connection.io.call(self.endpoints.prepare(), CONNECT_TIMEOUT)
            except Exception as exc:
                self._connection.close()
                raise BrokerError(
                    f"RabbitMQ at {self.address.where} refused the wake-up exchange or a "
                    f"channel: {type(exc).__name__}: {exc}; check the user's permissions on vhost "
                    f"{self.address.vhost!r}") from None
            self._started = True

    def stop(self) -> None:
        with self._lock:
            self._fanout.close()
            self.streams.close()
            self.endpoints.close()
            self._connection.close()
            self._started = False
