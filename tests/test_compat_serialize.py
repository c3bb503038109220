"""Interop, both ways, with the official globus-compute-sdk 4.19 serializer.

The same script (compat/roundtrip.py) runs under both SDKs so that functions are
defined in ``__main__`` on the producing side, as users define them.
"""

from __future__ import annotations

import pytest

from tests.conftest import run_json

pytestmark = pytest.mark.compat

SCRIPT = "tests/compat/roundtrip.py"


@pytest.fixture(scope="module")
def expected(farcall_python):
    return run_json(farcall_python, [SCRIPT, "farcall", "expect"])


@pytest.fixture(scope="module")
def official_output(compat_python):
    return run_json(compat_python, [SCRIPT, "official", "produce"])


@pytest.fixture(scope="module")
def farcall_output(farcall_python):
    return run_json(farcall_python, [SCRIPT, "farcall", "produce"])


def assert_matches(results, expected):
    assert results, "nothing was exchanged"
    for ident, cases in results.items():
        assert cases, f"strategy {ident} carried no case"
        for name, value in cases.items():
            assert value == expected[ident][name], f"strategy {ident}, case {name}"


def test_farcall_reads_what_the_official_sdk_writes(farcall_python, official_output, expected):
    assert set(official_output) >= {"00", "01", "03", "04", "10", "11", "12", "13", "sd", "st"}
    results = run_json(farcall_python, [SCRIPT, "farcall", "consume"], stdin=official_output)
    assert_matches(results, expected)


def test_official_sdk_reads_what_farcall_writes(compat_python, farcall_output, expected):
    assert set(farcall_output) == {"00", "01", "11", "12", "13", "sd", "st"}
    results = run_json(compat_python, [SCRIPT, "official", "consume"], stdin=farcall_output)
    assert_matches(results, expected)


def test_text_strategies_are_byte_identical(farcall_output, official_output):
    for ident in ("11", "st", "sd"):
        assert farcall_output[ident] == official_output[ident], ident


def test_remote_exception_survives_the_trip(farcall_python, official_output):
    results = run_json(farcall_python, [SCRIPT, "farcall", "consume"], stdin=official_output)
    assert results["01"]["raises"] == {"raised": "ValueError: boom ✓"}
