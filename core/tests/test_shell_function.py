"""ShellFunction and MPIFunction called in this process, as an endpoint's worker calls
them: real bash, real files, real process groups."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import pytest
from farcall import MPIFunction, ShellFunction, ShellResult


def test_a_command_is_formatted_from_keyword_arguments_and_its_output_comes_back() -> None:
    result = ShellFunction("echo {greeting} {name}; echo to-stderr >&2")(
        greeting="hello", name="farcall"
    )
    assert isinstance(result, ShellResult)
    assert result.cmd == "echo hello farcall; echo to-stderr >&2"
    assert (result.stdout, result.stderr) == ("hello farcall\n", "to-stderr\n")
    assert (result.returncode, result.exception_name) == (0, None)
    assert str(result) == "exit code: 0\n   stdout:\nhello farcall"


def test_a_non_zero_exit_is_a_result_that_names_the_failure() -> None:
    result = ShellFunction("echo partial; echo broke >&2; exit 3")()
    assert result.returncode == 3
    assert result.exception_name == "subprocess.CalledProcessError"
    assert "stderr:\nbroke" in str(result)
    assert "exception: subprocess.CalledProcessError" in str(result)
    assert repr(result).startswith("ShellResult(returncode=3, cmd='echo partial;")


def test_a_command_reads_an_empty_stdin_never_the_workers() -> None:
    result = ShellFunction("cat; echo read-all", walltime=60)()
    assert (result.returncode, result.stdout) == (0, "read-all\n")


def test_snippet_lines_keeps_the_last_lines_and_return_dict_gives_plain_data() -> None:
    result = ShellFunction("seq 1 5000", snippet_lines=3, return_dict=True)()
    assert result == {
        "cmd": "seq 1 5000",
        "stdout": "4998\n4999\n5000\n",
        "stderr": "",
        "returncode": 0,
        "exception_name": None,
    }


def test_walltime_stops_the_command_and_everything_it_started(tmp_path: Path) -> None:
    marker = tmp_path / "late"
    # The background child outlives the shell unless its whole group is killed.
    fn = ShellFunction(f"(sleep 3; touch {marker}) & sleep 30", walltime=0.5)
    result = fn()
    assert (result.returncode, result.exception_name) == (124, "subprocess.TimeoutExpired")
    time.sleep(4)
    assert not marker.exists()


def test_named_output_files_are_kept_and_appended_temporary_ones_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = tmp_path / "sandbox"
    monkeypatch.setenv("GC_TASK_SANDBOX_DIR", str(sandbox))
    fn = ShellFunction("echo run {n}; pwd", stdout="logs/out.txt")
    fn(n=1)
    result = fn(n=2)
    assert (sandbox / "logs" / "out.txt").read_text() == (f"run 1\n{sandbox}\nrun 2\n{sandbox}\n")
    assert result.stdout.endswith(f"run 2\n{sandbox}\n")
    assert result.stderr == ""  # no warning about sandboxing mixed into the output
    assert sorted(p.name for p in sandbox.iterdir()) == ["logs"]
    assert Path.cwd() != sandbox  # the worker's own directory is left alone


def test_names_are_checked_and_the_function_pickles_for_the_endpoint() -> None:
    with pytest.raises(ValueError, match="valid Python name"):
        ShellFunction("true", name="not a name")
    with pytest.raises(ValueError, match="walltime"):
        ShellFunction("true", walltime=-1)
    fn = pickle.loads(pickle.dumps(ShellFunction("echo {x}", name="echo_x", walltime=5)))
    assert fn.__name__ == "echo_x"
    assert repr(fn) == (
        "ShellFunction(name='echo_x', walltime=5, snippet_lines=1000, cmd='echo {x}')"
    )
    assert fn(x=1).stdout == "1\n"


def test_str_and_repr_match_the_official_sdk() -> None:
    """Where the endpoint's venv has the official SDK (the endpoint's globus-compute
    extra, installed with the tests), compare with it directly."""
    official = pytest.importorskip("globus_compute_sdk.sdk.shell_function")
    for args, kwargs in [
        (("echo {x}",), {}),
        (("line1\nline2\n" * 8,), {"walltime": 3, "stdout": "o.txt", "name": "many"}),
    ]:
        ours, theirs = ShellFunction(*args, **kwargs), official.ShellFunction(*args, **kwargs)
        assert (str(ours), repr(ours)) == (str(theirs), repr(theirs))
    for returncode in (0, 2):
        result = dict(
            cmd="x",
            stdout="a\n" * 30,
            stderr="b" * 2000,
            returncode=returncode,
            exception_name="subprocess.CalledProcessError",
        )
        ours, theirs = ShellResult(**result), official.ShellResult(**result)
        assert (str(ours), repr(ours)) == (str(theirs), repr(theirs))


def test_an_mpi_function_runs_under_the_prefix_the_endpoint_sets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PARSL_MPI_PREFIX", "env LAUNCHED_BY=prefix")
    result = MPIFunction("printenv {name}")(name="LAUNCHED_BY")
    assert result.cmd == "$PARSL_MPI_PREFIX printenv LAUNCHED_BY"
    assert result.stdout == "prefix\n"
