"""The environment a task runs in: the MPI launcher prefix from its resource
specification, and variables restored after the call."""

from __future__ import annotations

import os

import pytest
from farcall_endpoint.task_env import mpi_prefix, task_environment


@pytest.mark.parametrize(
    ("spec", "prefix"),
    [
        (None, None),
        ({"timeout": 5}, None),
        ({"num_nodes": 1, "ranks_per_node": 2}, "mpiexec -n 2"),
        ({"num_ranks": 3}, "mpiexec -n 3"),
        ({"num_nodes": "1", "num_ranks": "4", "ranks_per_node": 4}, "mpiexec -n 4"),
        ({"ranks_per_node": 2, "launcher_options": "-bind-to core"}, "mpiexec -n 2 -bind-to core"),
        ({"num_nodes": 1}, "mpiexec -n 1"),
    ],
)
def test_the_prefix_follows_the_official_keys(spec, prefix) -> None:
    assert mpi_prefix(spec) == prefix


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"num_nodes": 2, "ranks_per_node": 2}, "must be 1, not 2"),
        ({"num_ranks": 0}, "at least 1"),
        ({"num_ranks": 2.5}, "at least 1, not 2.5"),
        ({"ranks_per_node": "many"}, "whole number, not 'many'"),
        ({"num_ranks": 4, "ranks_per_node": 2}, "4 ranks on one node but 2 ranks per node"),
        ({"num_ranks": 2, "launcher_options": ["-v"]}, "must be a string"),
    ],
)
def test_a_specification_this_endpoint_cannot_honour_says_what_to_change(spec, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        mpi_prefix(spec)


def test_the_prefix_is_there_only_for_the_task_that_asks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GC_TASK_UUID", raising=False)
    monkeypatch.delenv("PARSL_MPI_PREFIX", raising=False)
    with task_environment("t-1", {"num_ranks": 2}):
        assert os.environ["GC_TASK_UUID"] == "t-1"
        assert os.environ["PARSL_MPI_PREFIX"] == "mpiexec -n 2"
        assert os.environ["PARSL_MPIEXEC_PREFIX"] == "mpiexec -n 2"
    assert "PARSL_MPI_PREFIX" not in os.environ
    with task_environment("t-2", None):
        assert os.environ["GC_TASK_UUID"] == "t-2"
        assert "PARSL_MPI_PREFIX" not in os.environ
