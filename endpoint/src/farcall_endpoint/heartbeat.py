"""The heartbeat thread: tells the service the endpoint is alive and how busy.

It beats every ``heartbeat_period`` seconds, or three times within the service's
offline timeout when that is shorter, so the endpoint stays ``online`` while no
claim or report is under way. A failed beat is only logged: the next one follows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from farcall_endpoint.backoff import short
from farcall_endpoint.config import EndpointConfig
from farcall_endpoint.engines.interface import Engine
from farcall_endpoint.ledger import Ledger
from farcall_endpoint.links.interface import EndpointRefused, Link

log = logging.getLogger(__name__)

#: The shortest pause between beats, whatever the service says.
MIN_PERIOD = 0.1


class Heartbeat:
    def __init__(self, link: Link, ledger: Ledger, engine: Engine, config: EndpointConfig,
                 fail: Callable[[EndpointRefused], None]) -> None:
        self.link, self.ledger, self.engine, self.config = link, ledger, engine, config
        self.fail = fail

    def run(self) -> None:
        ledger = self.ledger
        period = self.config.heartbeat_period
        while not ledger.stopping:
            status = self.engine.status()
            try:
                offline = self.link.heartbeat(ledger.session, status)
                period = self.config.heartbeat_period
                if offline is not None and offline > 0:
                    period = min(period, offline / 3)
            except EndpointRefused as exc:
                self.fail(exc)
                return
            except Exception as exc:
                with ledger.lock:
                    held = len(ledger.outstanding)
                log.info("heartbeat failed (%s); %d tasks in hand", short(exc), held)
            if ledger.wait_stop(max(MIN_PERIOD, period)):
                return
