"""The result spool on a real SQLite file: what survives, what is forgotten, and when."""

from __future__ import annotations

from pathlib import Path

from farcall_endpoint.spool import SPOOL_FILE, ResultSpool, spooled_count


def outcome(task_id: str, result: str = "r") -> dict[str, str]:
    return {"task_id": task_id, "status": "success", "result": result}


def test_acknowledged_results_are_deleted_with_the_next_write(tmp_path: Path) -> None:
    spool = ResultSpool(tmp_path / SPOOL_FILE)
    spool.put([outcome("a"), outcome("b"), outcome("c")])
    spool.forget(["a", "b"])
    assert spool.untidy
    assert spooled_count(tmp_path) == 3  # no transaction of its own
    spool.put([outcome("d")])
    assert not spool.untidy
    assert [o["task_id"] for o in spool.load()] == ["c", "d"]
    spool.forget(["c"])
    spool.tidy()
    assert [o["task_id"] for o in spool.load()] == ["d"]
    spool.close()


def test_a_result_forgotten_then_written_again_stays(tmp_path: Path) -> None:
    """A task handed out again and run again after its first result was acknowledged."""
    spool = ResultSpool(tmp_path / SPOOL_FILE)
    spool.put([outcome("a", "first")])
    spool.forget(["a"])
    spool.put([outcome("a", "second")])
    assert spool.load() == [outcome("a", "second")]
    spool.close()


def test_closing_deletes_what_was_acknowledged(tmp_path: Path) -> None:
    spool = ResultSpool(tmp_path / SPOOL_FILE)
    spool.put([outcome("a"), outcome("b")])
    spool.forget(["a"])
    spool.close()
    assert spooled_count(tmp_path) == 1


def test_without_a_close_acknowledged_results_are_sent_again(tmp_path: Path) -> None:
    """A killed endpoint leaves them on disk; the service acknowledges repeats."""
    spool = ResultSpool(tmp_path / SPOOL_FILE)
    spool.put([outcome("a"), outcome("b")])
    spool.forget(["a"])
    reopened = ResultSpool(tmp_path / SPOOL_FILE)  # what the next start reads
    assert [o["task_id"] for o in reopened.load()] == ["a", "b"]
    reopened.close()
    spool.close()
