"""``farcall endpoint`` as users run it: configure, start --detach, list, status, stop,
restart, delete; and the transcript of all of them, for each engine, as a user types them.
No step may print a traceback; each step's duration is printed (not asserted: speed
is measured in benchmarks)."""

from __future__ import annotations

import json
import time

import pytest
from farcall_endpoint.config import load_config


@pytest.fixture
def stop_later(cli):
    names: list[str] = []
    yield names.append
    for name in names:
        cli("stop", name, "--timeout", "10", check=False)


def test_configure_start_list_status_stop(cli, service, api, stop_later) -> None:
    cli("configure", "cli-ep", "--engine", "thread", "--workers", "2")
    config = load_config("cli-ep", service.home)
    assert config.engine == {"type": "thread", "workers": 2}
    assert oct(config.config_path.stat().st_mode & 0o777) == "0o600"
    listing = json.loads(cli("list", "--json").stdout)
    [entry] = listing
    endpoint_id = entry["id"]
    assert (entry["name"], entry["state"]) == ("cli-ep", "stopped")

    stop_later("cli-ep")
    assert "started" in cli("start", "cli-ep", "--detach").stdout
    assert "already running" in cli("start", "cli-ep", check=False).stderr
    status = json.loads(cli("status", "cli-ep", "--json").stdout)
    assert (status["id"], status["state"], status["engine"]) == (endpoint_id, "serving", "thread")
    assert "cli-ep" in cli("list").stdout
    assert api.status(endpoint_id)["status"] == "online"

    assert "stopped" in cli("stop", "cli-ep").stdout
    status = json.loads(cli("status", "cli-ep", "--json").stdout)
    assert status["state"] == "stopped" and status["pid"] is None

    # The id is stable across restarts: the service still knows exactly one endpoint.
    cli("start", "cli-ep", "--detach")
    assert json.loads(cli("status", "cli-ep", "--json").stdout)["id"] == endpoint_id
    cli("stop", "cli-ep")
    assert [e["uuid"] for e in api.call("GET", "/v2/endpoints")] == [endpoint_id]
    assert "is not running" in cli("stop", "cli-ep").stdout


def test_configure_errors(cli, service) -> None:
    bad = cli("configure", "../escape", check=False)
    assert bad.returncode != 0 and "endpoint name" in bad.stderr
    cli("configure", "twice")
    again = cli("configure", "twice", check=False)
    assert again.returncode != 0 and "already configured" in again.stderr
    missing = cli("start", "nobody", check=False)
    assert missing.returncode != 0 and "farcall endpoint configure nobody" in missing.stderr


def test_unknown_engine_is_refused_at_configure_listing_the_engines(cli, service) -> None:
    done = cli("configure", "odd", "--engine", "slurmish", check=False)
    assert done.returncode != 0
    assert "engine 'slurmish'" in done.stderr and "'process'" in done.stderr
    assert not (service.home / "endpoints" / "odd").exists()


def test_delete_asks_and_refuses_a_running_endpoint_unless_forced(cli, service) -> None:
    cli("configure", "never-started")
    done = cli("delete", "never-started", "--yes")
    assert "the service does not know endpoint never-started" in done.stdout
    assert not (service.home / "endpoints" / "never-started").exists()

    cli("configure", "busy", "--engine", "thread")
    cli("start", "busy", "--detach")
    try:
        refused = cli("delete", "busy", "--yes", check=False)
        assert refused.returncode != 0 and "is running" in refused.stderr
        unanswered = cli("delete", "busy", "--force", check=False)  # no answer to the prompt
        assert unanswered.returncode != 0 and "Aborted" in unanswered.stderr
        assert json.loads(cli("status", "busy", "--json").stdout)["state"] == "serving"
        cli("delete", "busy", "--yes", "--force")
        assert not (service.home / "endpoints" / "busy").exists()
    finally:
        cli("stop", "busy", check=False)


def test_delete_with_the_service_down_needs_force(cli, service) -> None:
    cli("configure", "far", "--base-url", "http://127.0.0.1:9")
    (service.home / "endpoints" / "far" / "endpoint.json").write_text(
        '{"endpoint_id": "0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0"}\n')
    refused = cli("delete", "far", "--yes", check=False)
    assert refused.returncode != 0 and "--force deletes it here anyway" in refused.stderr
    assert (service.home / "endpoints" / "far").exists()
    forced = cli("delete", "far", "--yes", "--force")
    assert "ConnectionRefusedError" in forced.stderr
    assert not (service.home / "endpoints" / "far").exists()


def test_stop_status_and_restart_of_an_unknown_endpoint_fail(cli, service) -> None:
    cli("configure", "known")
    for command in ("stop", "status", "restart", "delete"):
        done = cli(command, "nosuch", check=False)
        assert done.returncode != 0, command
        assert "'nosuch' is not configured (configured: known)" in done.stderr, command


ENGINES = [
    pytest.param("process", id="process"),
    pytest.param("parsl", id="parsl"),
    pytest.param("dask", id="dask"),
]


def _skip_missing(engine: str) -> None:
    if engine in ("parsl", "dask"):
        pytest.importorskip(engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_transcript(cli, service, api, engine: str) -> None:
    _skip_missing(engine)
    name = f"tr-{engine}"
    outputs: list[str] = []

    def step(*args: str) -> str:
        started = time.monotonic()
        done = cli(*args, check=False)
        print(f"{' '.join(args):<40} {time.monotonic() - started:6.2f} s")
        outputs.append(done.stdout + done.stderr)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    try:
        step("configure", name, "--engine", engine, "--workers", "1")
        config_text = load_config(name, service.home).config_path.read_text()
        template = {"parsl": ["max_workers_per_node = 1", "[engine.provider]",
                              'type = "LocalProvider"', '# type = "SlurmProvider"'],
                    "dask": ["workers = 1", "threads_per_worker = 1",
                             '# scheduler_address = "tcp://scheduler.example.org:8786"']}
        for line in template.get(engine, ["workers = 1"]):
            assert line in config_text.splitlines(), config_text
        step("start", name, "--detach")
        listing = step("list")
        header, *rows = listing.splitlines()
        assert header.split() == ["NAME", "ID", "ENGINE", "STATE", "STATUS"]
        [row] = [r.split() for r in rows if r.split()[0] == name]
        endpoint_id = row[1]
        assert row[2:] == [engine, "serving", "online"]
        step("restart", name)
        assert json.loads(step("status", name, "--json"))["state"] == "serving"
        step("stop", name)
        assert api.status(endpoint_id)["status"] == "offline"  # it said goodbye
        [entry] = json.loads(step("list", "--json"))
        assert (entry["state"], entry["status"]) == ("stopped", "offline")
        endpoint_log = (service.home / "endpoints" / name / "endpoint.log").read_text()
        outputs.append(endpoint_log)
        # Each stop (restart's and stop's) ended in order, not by SIGKILL at the timeout.
        assert endpoint_log.count(f"endpoint {name} stopped") == 2, endpoint_log
        step("delete", name, "--yes")
        assert "no endpoints configured" in step("list")
        assert endpoint_id not in [e["uuid"] for e in api.call("GET", "/v2/endpoints")]
    finally:
        cli("stop", name, "--timeout", "10", check=False)
    log = "\n".join(outputs)
    assert "Traceback" not in log, log
