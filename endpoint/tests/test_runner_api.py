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


def pause(seconds):
    import time

    time.sleep(seconds)
    return seconds


def test_a_result_goes_out_while_another_report_awaits_its_acknowledgement(
    tmp_path: Path, monkeypatch
) -> None:
    """Two reporters: the service holds the first report's commit (so its
    acknowledgement); the next result is still sent, and told, meanwhile."""
    import time

    from farcall import Client
    from farcall_service import admin
    from farcall_service.app import create_app
    from farcall_service.settings import Settings
    from farcall_testkit.service import AppServer, hold_next_call

    app = create_app(Settings(home=tmp_path / "svc", rate_limit=0))
    ctx = app.state.farcall
    admin.add_user(ctx.store, "ada")
    token = admin.create_token(ctx.store, "ada")
    held, release = hold_next_call(monkeypatch, ctx.store, "record_reports")
    with AppServer(app) as server:
        config = configure_endpoint("local", home=tmp_path / "ep", base_url=server.url,
                                    token=token, engine={"type": "thread", "workers": 2},
                                    claim_wait=1.0)
        runner = EndpointRunner(config)
        runner.start()
        try:
            assert runner.ready.wait(60) and runner.error is None
            client = Client(server.url, token=token)
            fn = client.register_function(pause)
            batch = client.create_batch()
            batch.add(0, endpoint_id=runner.endpoint_id, function_id=fn)
            batch.add(1.0, endpoint_id=runner.endpoint_id, function_id=fn)
            quick, slow = client.batch_run(batch)
            try:
                assert held.wait(30)  # the quick one's report, committing
                deadline = time.monotonic() + 20
                while client.get_task(slow)["pending"]:
                    assert time.monotonic() < deadline, "the slow result waited for the other"
                    time.sleep(0.05)
                assert not release.is_set()
            finally:
                release.set()
            assert client.get_result(quick) == 0 and client.get_result(slow) == 1.0
        finally:
            runner.stop(timeout=60)


class _UpperJSON:
    """A data strategy only the runner's own plugin manager knows: JSON, upper-cased."""

    @staticmethod
    def record():
        import json

        from farcall.plugins.types import SerializationStrategyType
        from farcall.serialize.base import SerializationStrategy

        class UpperJSON(SerializationStrategy):
            identifier = "u1"
            for_code = False

            def dumps(self, obj):
                return json.dumps(obj).upper()

            def loads(self, body):
                return json.loads(body.lower())

        return SerializationStrategyType("u1", "UpperJSON", False, lambda _r: UpperJSON())


def test_the_runner_serializes_with_its_own_plugin_manager(service, api, tmp_path: Path) -> None:
    """A runner given a manager runs its in-process engine's tasks with that manager's
    strategies, which the process-wide default does not know."""
    from farcall.plugins import get_plugin_manager, hookimpl
    from farcall.serialize import Serializer

    class Plugin:
        @hookimpl
        def farcall_serialization_strategies(self):
            return [_UpperJSON.record()]

    pm = get_plugin_manager()
    pm.register(Plugin(), name="upper-json")
    config = configure_endpoint("own-pm", home=tmp_path / "h", base_url=service.url,
                                token=service.token, engine={"type": "thread", "workers": 1},
                                claim_wait=1.0)
    runner = EndpointRunner(config, plugin_manager=pm)
    thread = runner.start()
    try:
        assert runner.ready.wait(60) and runner.error is None
        fn = api.register_function(triple)
        (task_id,) = api.submit(runner.endpoint_id, fn, [("ab",)], result_serializers=["u1"])
        document = api.wait([task_id])[task_id]
    finally:
        runner.stop(timeout=60)
    thread.join(60)
    assert document["status"] == "success", document
    assert document["result"] == 'u1\n"ABABAB"'
    try:
        Serializer().deserialize(document["result"])
    except Exception as exc:
        assert "u1" in str(exc)
    else:
        raise AssertionError("the process-wide default must not know the runner's strategy")
