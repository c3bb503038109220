"""Packed buffers: the length-prefixed framing every payload of the wire format uses."""

from __future__ import annotations

import pytest
from farcall.errors import DeserializationError
from farcall.serialize import Serializer, pack_buffers, unpack_buffers


def test_pack_frames_each_buffer_with_its_length() -> None:
    assert pack_buffers(["ab", "c"]) == "2\nab1\nc"
    assert pack_buffers([]) == ""
    assert pack_buffers([""]) == "0\n"
    assert pack_buffers(["11\n[1]", "x\ny"]) == "6\n11\n[1]3\nx\ny"


@pytest.mark.parametrize(
    "buffers",
    [
        [],
        [""],
        ["", "", ""],
        ["ab", "c"],
        ["line\nbreaks\n", "12\nnot a length", "9\n"],
        ["x" * 100_000, "y"],
        ["00\n" + "A" * 76 + "\n", "11\n{}"],
    ],
)
def test_round_trip(buffers: list[str]) -> None:
    assert unpack_buffers(pack_buffers(buffers)) == buffers


def test_lengths_count_code_points_not_bytes() -> None:
    buffers = ["héllo wörld", "日本語", "🚀", "mixed 🚀 ✓ é"]
    packed = pack_buffers(buffers)
    assert packed == "11\nhéllo wörld3\n日本語1\n🚀11\nmixed 🚀 ✓ é"
    assert unpack_buffers(packed) == buffers
    # A byte count would say 3 for "é" + "x" in UTF-8; the code-point count is 2.
    assert unpack_buffers("2\néx") == ["éx"]
    assert unpack_buffers("4\n🚀🚀🚀🚀") == ["🚀🚀🚀🚀"]


def test_empty_string_is_no_buffers() -> None:
    assert unpack_buffers("") == []


def test_leading_zeros_are_a_length() -> None:
    assert unpack_buffers("002\nab") == ["ab"]


@pytest.mark.parametrize(
    ("packed", "fragment"),
    [
        ("5\nabc", "packed buffer 1 is truncated: its length says 5 characters but only 3 remain"),
        ("2\nab3\nc", "packed buffer 2 is truncated: its length says 3 characters but only 1"),
        ("1\n", "packed buffer 1 is truncated: its length says 1 characters but only 0 remain"),
        ("-1\na", "length '-1' is negative"),
        ("1.5\nab", "length '1.5' is not a non-negative integer"),
        ("+5\nabcde", "length '+5' is not a non-negative integer"),
        (" 5\nabcde", "length ' 5' is not a non-negative integer"),
        ("5 \nabcde", "length '5 ' is not a non-negative integer"),
        ("٣\nabc", "length '٣' is not a non-negative integer"),
        ("²\nab", "length '²' is not a non-negative integer"),
        ("\nabc", "length '' is not a non-negative integer"),
        ("1_0\n0123456789", "length '1_0' is not a non-negative integer"),
        ("abc", "packed buffer 1 at offset 0: expected a length"),
        ("5", "packed buffer 1 at offset 0: expected a length"),
        ("2\nab5", "packed buffer 2 at offset 4: expected a length"),
        ("1" * 21 + "\nx", "expected a length of at most 20 digits"),
    ],
)
def test_malformed_frames_are_refused(packed: str, fragment: str) -> None:
    with pytest.raises(DeserializationError) as excinfo:
        unpack_buffers(packed)
    assert fragment in str(excinfo.value)


def test_twenty_digit_lengths_are_read_then_found_truncated() -> None:
    with pytest.raises(DeserializationError, match="truncated"):
        unpack_buffers("9" * 20 + "\nx")


@pytest.mark.parametrize("packed", [b"2\nab", None, 3, ["2\nab"]])
def test_non_str_input_is_refused(packed: object) -> None:
    with pytest.raises(DeserializationError, match=f"must be a str, not {type(packed).__name__}"):
        unpack_buffers(packed)  # type: ignore[arg-type]


def test_deserialization_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        unpack_buffers("x")


def test_serializer_exposes_the_same_packing() -> None:
    serializer = Serializer(data_strategy="11")
    packed = serializer.pack_buffers([serializer.serialize(["é", 1]), serializer.serialize({})])
    assert serializer.unpack_buffers(packed) == ['11\n["\\u00e9", 1]', "11\n{}"]
    assert serializer.unpack_and_deserialize(packed) == [["é", 1], {}]
    with pytest.raises(DeserializationError, match="truncated"):
        serializer.unpack_and_deserialize(packed[:-1])
