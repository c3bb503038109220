"""Serialization compatible, byte for byte, with the Globus Compute wire format.

Every serialized string is a two-character strategy identifier, a newline, and a
body; strategies come from plugins (:mod:`farcall.plugins.hookspecs`).
"""

from farcall.errors import DeserializationError, SerializationError
from farcall.serialize.base import SerializationStrategy
from farcall.serialize.facade import Serializer
from farcall.serialize.packing import pack_buffers, unpack_buffers

__all__ = [
    "DeserializationError",
    "SerializationError",
    "SerializationStrategy",
    "Serializer",
    "pack_buffers",
    "unpack_buffers",
]
