"""MPI applications as functions: the official SDK's ``MPIFunction``.

The endpoint knows how to launch MPI on its resources; the submitter says how many
ranks in the batch's (or Executor's) ``resource_specification`` (``num_nodes``,
``ranks_per_node``, ``num_ranks``, ``launcher_options``). The endpoint turns that into
a launcher prefix, such as ``mpiexec -n 4``, and hands it to the task as
``$PARSL_MPI_PREFIX``, the variable the official endpoint sets, so commands written
for either endpoint run on both.
"""

from __future__ import annotations

from typing import Any

from farcall.sdk.shell import ShellFunction, ShellResult

__all__ = ["MPIFunction"]


class MPIFunction(ShellFunction):
    """A :class:`~farcall.sdk.shell.ShellFunction` whose command runs under the
    endpoint's MPI launcher."""

    def __call__(self, **kwargs: Any) -> ShellResult | dict[str, Any]:
        return self.execute_cmd_line("$PARSL_MPI_PREFIX " + self.cmd.format(**kwargs))
