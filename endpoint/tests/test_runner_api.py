"""The Python API ``farcall dev`` uses: configure an endpoint and run it in-process."""

from __future__ import annotations

from pathlib import Path

from farcall_endpoint.configure import configure_endpoint
from farcall_endpoint.runner import EndpointRunner


def triple(x):
    return 3 * x


def test_runner_in_a_thread(service, api, tmp_path: Path) -> None:
    home = tmp_path / "dev-home"
    config = configure_endpoint("local", home=home, base_url=service.url, token=service.token,
                                engine={"type": "process", "workers": 1}, claim_wait=1.0)
    runner = EndpointRunner(config)
    thread = runner.start()
    try:
        assert runner.ready.wait(60) and runner.error is None
        fn = api.register_function(triple)
        ids = api.submit(runner.endpoint_id, fn, [(i,) for i in range(10)])
        docs = api.wait(ids)
        assert [api.result(docs[t]) for t in ids] == [3 * i for i in range(10)]
        assert api.status(runner.endpoint_id)["details"]["total_workers"] == 1
    finally:
        runner.stop(timeout=60)
    assert not thread.is_alive()
    assert EndpointRunner(config).endpoint_id == runner.endpoint_id


def test_runner_reports_a_refused_token(service, tmp_path: Path) -> None:
    config = configure_endpoint("local", home=tmp_path / "h", base_url=service.url,
                                token="not-a-token", engine={"type": "thread", "workers": 1})
    runner = EndpointRunner(config)
    thread = runner.start()
    thread.join(60)
    assert not thread.is_alive()
    assert "refused endpoint" in str(runner.error) and "401" in str(runner.error)
