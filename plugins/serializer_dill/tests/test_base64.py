"""The strategies' base64 is byte for byte what the official serializer writes."""

from __future__ import annotations

import codecs
import os

import pytest
from farcall_serializer_dill.strategies import _b64


@pytest.mark.parametrize("size", [*range(0, 120), 1000, 4096, 100_000])
def test_base64_is_codecs_base64(size: int) -> None:
    data = os.urandom(size)
    assert _b64(data) == codecs.encode(data, "base64").decode("ascii")
