"""The cloudpickle strategies."""

from __future__ import annotations

import base64
import binascii
import pickle
from typing import Any

import cloudpickle
from farcall.serialize.base import SerializationStrategy


class _Cloudpickle(SerializationStrategy):
    def dumps(self, obj: Any) -> str:
        return base64.b64encode(cloudpickle.dumps(obj)).decode("ascii")

    def loads(self, body: str) -> Any:
        return pickle.loads(binascii.a2b_base64(body))


class CloudpickleData(_Cloudpickle):
    identifier = "c0"
    for_code = False


class CloudpickleCode(_Cloudpickle):
    identifier = "c1"
    for_code = True
