"""The channels' two forms: JSON text and msgpack binary frames, chosen by the service's
greeting, against websockets' own server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgpack
import pytest
from farcall import frames
from farcall.sdk.channel import Channel
from websockets.sync.server import serve

MESSAGE = {"op": "submit", "tasks": {"f": ["01\nabc", "11\n[1]"]}, "n": 3, "ok": None}


def test_msgpack_carries_channel_messages_and_json_what_it_cannot() -> None:
    packed = frames.encode(MESSAGE, binary=True)
    assert isinstance(packed, bytes) and frames.decode(packed) == MESSAGE
    assert frames.decode(frames.encode(MESSAGE, binary=False)) == MESSAGE
    big = {"user_endpoint_config": {"n": 2**70}}
    fallback = frames.encode(big, binary=True)
    assert isinstance(fallback, str) and frames.decode(fallback) == big


@pytest.mark.parametrize(
    "data",
    [
        b"\xc1",  # never used by msgpack
        b"\x92\x01",  # truncated
        msgpack.packb({"op": msgpack.ExtType(1, b"x")}),  # extension types have no place
        b"\xa2\xff\xfe",  # a str that is no UTF-8
        b"\xc0\xc0",  # data after the message
    ],
)
def test_what_is_not_a_msgpack_message_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        frames.decode(data)


def test_nesting_beyond_the_reader_is_too_deep() -> None:
    with pytest.raises(frames.TooDeep):
        frames.decode(b"\x91" * 100_000 + b"\xc0")


@contextmanager
def service(hello: dict[str, Any]) -> Iterator[tuple[str, list[str]]]:
    """Greets with ``hello``, then answers each request with the kind of frame it came
    in, in the same form, as the service does."""
    kinds: list[str] = []

    def handler(ws: Any) -> None:
        ws.send(json.dumps(hello))
        for message in ws:
            binary = isinstance(message, bytes)
            kinds.append("binary" if binary else "text")
            request = frames.decode(message)
            ws.send(frames.encode({"echo": request["op"]}, binary))

    with serve(handler, "127.0.0.1", 0) as running:
        thread = threading.Thread(target=running.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{running.socket.getsockname()[1]}", kinds
        finally:
            running.shutdown()
            thread.join(10)


class NoFallback:
    def ask(self, operation: str, body: dict[str, Any], timeout: float) -> Any:
        raise AssertionError("the channel should have answered")

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("offered", "kind"),
    [
        (["json", "msgpack"], "binary"),
        (["json"], "text"),
        (None, "text"),  # a service from before frames
    ],
)
def test_the_sdk_sends_msgpack_only_where_the_service_offers_it(offered: Any, kind: str) -> None:
    hello: dict[str, Any] = {"ok": True, "max_message": 1 << 20}
    if offered is not None:
        hello["frames"] = offered
    with service(hello) as (url, kinds):
        channel = Channel(url, "/channel", None, NoFallback(), open_timeout=10)
        try:
            assert channel.ask("submit", {"tasks": {}}, timeout=10) == {"echo": "submit"}
            assert channel.ask("wait", {"task_ids": []}, timeout=10) == {"echo": "wait"}
        finally:
            channel.close()
    assert kinds == [kind, kind]
