import datetime as dt
import decimal
import uuid

from farcall.testing.serializer_contract import JSON_SAFE_SAMPLES, SerializationStrategyContract

# Beyond JSON: what msgpack carries exactly, through its extension types.
MSGPACK_SAMPLES = [
    *JSON_SAFE_SAMPLES,
    2**64,
    -(2**200),
    b"\x00\xff" * 1000,
    (1, (2, "three")),
    {1: "int key", (2, 3): "tuple key", b"k": "bytes key", None: 0.5},
    {1, 2},
    frozenset("ab"),
    dt.datetime(2026, 12, 6, 17, 0, 1, 5),
    dt.date(1999, 12, 31),
    dt.timedelta(days=-2, seconds=3),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    decimal.Decimal("3.14159265358979323846"),
]


class TestMsgpackData(SerializationStrategyContract):
    identifier = "mp"
    data_samples = MSGPACK_SAMPLES
    garbage_bodies = [*SerializationStrategyContract.garbage_bodies, "kscA", "wA==wA=="]
