"""The ``local`` broker: every wake-up within this one process, which it makes the only
service process on its database (``database_lock``)."""

from __future__ import annotations

import asyncio

from farcall_service.brokers.database_lock import DatabaseLock
from farcall_service.brokers.notifier import Notifier


class LocalBroker:
    """In-process claims, offers and result wake-ups (``notifier.Notifier``)."""

    single_process = True
    #: No AMQP result streams: ``--broker amqp://...`` has them.
    streams = None
    #: No AMQP endpoint queues either.
    endpoints = None

    def __init__(self, database_url: str) -> None:
        #: Claims, per endpoint id.
        self.tasks = Notifier()
        #: Result waits and listeners, per owner id.
        self.results = Notifier()
        self._lock = DatabaseLock(database_url)

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._lock.acquire()

    def stop(self) -> None:
        self.tasks.close()
        self.results.close()
        self._lock.release()
