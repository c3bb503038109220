"""The ``local`` broker has no result streams: the stream contract skips it, saying so."""

from __future__ import annotations

from farcall_service.testing.stream_contract import StreamContract


class TestLocalBrokerStreams(StreamContract):
    name = "local"
