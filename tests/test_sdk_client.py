"""The farcall Client of the User Guide against a real service and a worker.

The service runs as ``farcall server start``; a minimal worker serves the endpoint
through the hand-off routes, so what is tested is the SDK's side of every call.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("farcall_service")

from farcall import Client, Executor, TaskExecutionFailed, TaskPending  # noqa: E402
from farcall.errors import FarcallError  # noqa: E402
from farcall.sdk.errors import FarcallAPIError, ServiceUnreachable  # noqa: E402
from farcall_testkit.service import MiniWorker, ServiceProcess, admin  # noqa: E402


def platform_func():
    import platform

    return platform.platform()


def hello(firstname, lastname):
    return f"Hello {firstname} {lastname}"


def identity(x):
    return x


def fails(message):
    raise KeyError(message)


def slowly(x):
    import time

    time.sleep(0.5)
    return x


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    home: Path = tmp_path_factory.mktemp("sdk-home")
    with ServiceProcess(home) as svc:
        tokens = {}
        for name in ("alice", "bob", "carol"):
            admin(home, "user", "add", name)
            tokens[name] = admin(home, "token", "create", name).splitlines()[-1].strip()
        group_id = admin(home, "group", "add", "lab").splitlines()[-1].strip()
        admin(home, "group", "add-member", "lab", "alice")
        admin(home, "group", "add-member", "lab", "bob")
        svc.tokens = tokens
        svc.group_id = group_id
        yield svc


@pytest.fixture(scope="module")
def alice(service):
    return Client(service.url, token=service.tokens["alice"])


@pytest.fixture(scope="module")
def endpoint_id(service, alice):
    answer = alice.transport.request("POST", "/v3/endpoints", json={"endpoint_name": "sdk-tests"})
    return answer["endpoint_id"]


@pytest.fixture(scope="module")
def worker(service, endpoint_id):
    w = MiniWorker(service.url, service.tokens["alice"], endpoint_id, wait=1.0)
    w.start()
    yield w
    w.stop()


def test_client_finds_service_and_token_in_the_environment(service, monkeypatch):
    monkeypatch.setenv("FARCALL_BASE_URL", service.url)
    monkeypatch.setenv("FARCALL_TOKEN", service.tokens["alice"])
    gcc = Client()
    assert gcc.base_url == service.url
    assert gcc.version()["api"]


def test_guide_register_run_and_pending_then_result(service, alice, endpoint_id):
    func_uuid = alice.register_function(platform_func)
    task_id = alice.run(endpoint_id=endpoint_id, function_id=func_uuid)
    with pytest.raises(TaskPending) as pending:
        alice.get_result(task_id)
    assert pending.value.status in {"waiting-for-ep", "received"}
    w = MiniWorker(service.url, service.tokens["alice"], endpoint_id, wait=1.0)
    w.start()
    try:
        result = alice.wait([task_id], timeout=60, progress=False)[task_id]["result"]
    finally:
        w.stop()
    import platform

    assert result == platform.platform()
    assert alice.get_result(task_id) == result


def test_guide_hello_with_arguments_and_uuid_forms(alice, endpoint_id, worker):
    func_id = alice.register_function(hello)
    task_id = alice.run(
        "Bob", "Smith", endpoint_id=uuid.UUID(endpoint_id), function_id=func_id.upper()
    )
    alice.wait([task_id], timeout=60, progress=False)
    assert alice.get_result(task_id) == "Hello Bob Smith"
    task = alice.get_task(task_id)
    assert task["status"] == "success" and task["pending"] is False
    assert float(task["completion_t"]) > 0


def test_guide_batch_keeps_order_and_reports_each_task(alice, endpoint_id, worker):
    func_id = alice.register_function(identity)
    other = alice.register_function(hello)
    batch = alice.create_batch()
    for x in range(0, 5):
        batch.add(x, endpoint_id=endpoint_id, function_id=func_id)
    batch.add("Ada", "Lovelace", endpoint_id=endpoint_id, function_id=other)
    batch_res = alice.batch_run(batch)
    assert len(batch_res) == 6 and len(set(batch_res)) == 6
    alice.wait(batch_res, timeout=60, progress=False)
    results = alice.get_batch_result(batch_res)
    assert list(results) == batch_res
    assert [results[t]["result"] for t in batch_res] == [0, 1, 2, 3, 4, "Hello Ada Lovelace"]
    for entry in results.values():
        assert entry["pending"] is False and entry["status"] == "success"
        assert float(entry["completion_t"]) > 0


def test_remote_exception_is_raised_with_its_traceback(alice, endpoint_id, worker):
    func_id = alice.register_function(fails)
    task_id = alice.run("missing-key", endpoint_id=endpoint_id, function_id=func_id)
    entry = alice.wait([task_id], timeout=60, progress=False)[task_id]
    assert entry["status"] == "failed"
    with pytest.raises((KeyError, TaskExecutionFailed)) as raised:
        alice.get_result(task_id)
    text = getattr(raised.value, "remote_traceback", "")
    assert "missing-key" in text and "Traceback" in text
    # the guide's own pattern: print the exception
    try:
        alice.get_result(task_id)
    except Exception as e:
        assert "missing-key" in f"Exception: {e}"


def test_sharing_with_a_group_and_publicly(service, alice, endpoint_id, worker):
    bob = Client(service.url, token=service.tokens["bob"])
    carol = Client(service.url, token=service.tokens["carol"])
    tag = uuid.uuid4().hex[:8]
    shared = alice.register_function(
        identity, function_name=f"shared_{tag}", description=f"My function {tag}",
        group=service.group_id,
    )
    public = alice.register_function(
        identity, function_name=f"public_{tag}", description=f"My function {tag}", public=True
    )
    private = alice.register_function(identity, function_name=f"private_{tag}")

    def names(client):
        found = client.search_function(tag, offset=0, limit=5)["results"]
        return {r["function_name"] for r in found}

    assert names(alice) == {f"shared_{tag}", f"public_{tag}", f"private_{tag}"}
    assert names(bob) == {f"shared_{tag}", f"public_{tag}"}
    assert names(carol) == {f"public_{tag}"}
    with pytest.raises(FarcallAPIError) as refused:
        carol.get_function(private)
    assert refused.value.http_status == 404
    assert bob.get_function(shared)["function_name"] == f"shared_{tag}"
    assert carol.get_function(public)["function_name"] == f"public_{tag}"
    paged = alice.search_function(tag, offset=1, limit=1)
    assert paged["total"] == 3 and len(paged["results"]) == 1


def test_containers_register_and_attach(alice):
    container_id = alice.register_container("/opt/envs/science/bin/python", "venv", name="science")
    assert alice.get_container(container_id)["type"] == "venv"
    func_id = alice.register_function(identity, container_uuid=container_id)
    assert func_id
    other = alice.register_function(identity)
    assert alice.attach_container(other, container_id)["container_uuid"] == container_id


def test_errors_are_clear(service, alice):
    with pytest.raises(FarcallAPIError) as missing:
        alice.get_function(str(uuid.uuid4()))
    assert missing.value.http_status == 404 and missing.value.code
    assert "/v2/functions/" in str(missing.value)
    with pytest.raises(FarcallError, match="must be a UUID"):
        alice.run(endpoint_id="not-a-uuid", function_id=str(uuid.uuid4()))
    bad = Client(service.url, token="fc_not_a_real_token")
    with pytest.raises(FarcallAPIError) as unauthorized:
        bad.get_endpoints()
    assert unauthorized.value.http_status == 401
    with pytest.raises(ServiceUnreachable, match="did not answer"):
        Client("http://127.0.0.1:9", token="x", retries=0).version()


def test_guide_style_login_manager(service, endpoint_id):
    class WebClient:
        def __init__(self, base_url, authorizer):
            self.base_url, self.authorizer = base_url, authorizer

    class Authorizer:
        def __init__(self, token):
            self.token = token

        def get_authorization_header(self):
            return f"Bearer {self.token}"

    class LoginManager:
        def __init__(self, authorizers):
            self.authorizers = authorizers
            self.logged_out = False

        def get_web_client(self, *, base_url):
            return WebClient(base_url, self.authorizers[Client.FUNCX_SCOPE])

        def ensure_logged_in(self):
            return True

        def logout(self):
            self.logged_out = True

    manager = LoginManager({Client.FUNCX_SCOPE: Authorizer(service.tokens["alice"])})
    fx = Client(service.url, login_manager=manager, force_login=True)
    assert manager.logged_out is True
    assert any(ep["uuid"] == endpoint_id for ep in fx.get_endpoints())


def test_endpoint_listing_and_status(alice, endpoint_id, worker):
    assert any(ep["uuid"] == endpoint_id for ep in alice.get_endpoints())
    status = alice.get_endpoint_status(endpoint_id)
    assert status["status"] in {"online", "offline"}
    assert "total_workers" in status["details"]


def test_wait_shows_progress_on_a_terminal_only(alice, endpoint_id, worker, monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    func_id = alice.register_function(identity)
    failing = alice.register_function(fails)
    for stream, expected in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr("sys.stderr", stream)
        batch = alice.create_batch()
        for x in range(3):
            batch.add(x, endpoint_id=endpoint_id, function_id=func_id)
        batch.add("no", endpoint_id=endpoint_id, function_id=failing)
        ids = alice.batch_run(batch)
        alice.wait(ids, timeout=60)
        shown = stream.getvalue()
        assert ("4 tasks: 3 done, 1 failed in " in shown) is expected, shown
        if expected:  # the rate, and the line ended
            assert re.search(r"4 tasks: 3 done, 1 failed in \S+ \(\d+\.\d/s\)\s*\n$", shown)


def test_the_progress_line_counts_failures_and_shows_rate_and_eta():
    from farcall.sdk.progress import progress_line

    assert progress_line(400, 200, 200, 8.0).endswith("400 tasks: 200 done, 200 failed in 8.0s "
                                                       "(50.0/s)")
    running = progress_line(400, 150, 50, 4.0)
    assert running.startswith("[###############...............] ")
    assert running.endswith("400 tasks: 150 done, 50 failed, 200 pending; 50.0/s, ETA 4.0s")
    assert progress_line(10, 0, 0, 0.0).endswith("0 done, 0 failed, 10 pending; 0.0/s, ETA ?")
    assert progress_line(100_000, 100, 0, 10.0).endswith("ETA 2h46m")


def test_submissions_and_waits_travel_over_the_channel(service, endpoint_id, worker):
    submits = f"POST /v3/endpoints/{endpoint_id}/submit"
    before = service.log().count(submits)
    client = Client(service.url, token=service.tokens["alice"])
    func_id = client.register_function(identity)
    ids = [client.run(n, endpoint_id=endpoint_id, function_id=func_id) for n in range(3)]
    results = client.wait(ids, timeout=60, progress=False)
    assert [results[t]["result"] for t in ids] == [0, 1, 2]
    log = service.log()
    assert '"WebSocket /farcall/v1/channel" [accepted]' in log
    assert log.count(submits) == before, "a submission went over HTTP"


def test_a_forked_child_opens_a_channel_of_its_own(service, endpoint_id, worker):
    """A child forked after the parent opened its channel shares that socket but not
    the thread that reads it: it must not wait on the parent's channel."""
    import multiprocessing

    client = Client(service.url, token=service.tokens["alice"])
    func_id = client.register_function(identity)
    first = client.run(1, endpoint_id=endpoint_id, function_id=func_id)  # opens it
    client.wait([first], timeout=60, progress=False)

    def child(queue):
        started = time.monotonic()
        task = client.run(2, endpoint_id=endpoint_id, function_id=func_id)
        client.wait([task], timeout=60, progress=False)
        queue.put((client.get_result(task), time.monotonic() - started))

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=child, args=(queue,))
    process.start()
    result, seconds = queue.get(timeout=60)
    process.join(30)
    assert result == 2
    assert seconds < 20, f"the child took {seconds:.1f} s: it waited on its parent's channel"
    again = client.run(3, endpoint_id=endpoint_id, function_id=func_id)  # the parent's works
    client.wait([again], timeout=60, progress=False)
    assert client.get_result(again) == 3


def test_a_collected_client_closes_its_channel(service, endpoint_id, worker):
    import gc

    def open_one():
        client = Client(service.url, token=service.tokens["alice"])
        func_id = client.register_function(identity)
        task = client.run(1, endpoint_id=endpoint_id, function_id=func_id)
        client.wait([task], timeout=60, progress=False)
        channel = client.session.channel()
        return channel._ws._sock  # the socket alone outlives the client

    sock = open_one()
    deadline = time.monotonic() + 30
    while sock.fileno() != -1:
        assert time.monotonic() < deadline, "a collected client's channel stayed open"
        gc.collect()
        time.sleep(0.05)


def test_the_client_uses_http_against_a_service_without_the_channel(tmp_path):
    from farcall_service.app import create_app
    from farcall_service.settings import Settings
    from farcall_testkit.service import AppServer, without_channels

    app = without_channels(create_app(Settings(home=tmp_path, rate_limit=0)))
    store = app.state.farcall.store
    from farcall_service import admin as service_admin

    service_admin.add_user(store, "dora")
    token = service_admin.create_token(store, "dora")
    with AppServer(app) as server:
        client = Client(server.url, token=token)
        eid = client.transport.request(
            "POST", "/v3/endpoints", json={"endpoint_name": "no-channel"})["endpoint_id"]
        worker = MiniWorker(server.url, token, eid, wait=1.0)
        worker.start()
        try:
            func_id = client.register_function(hello)
            task_id = client.run("Ada", "Lovelace", endpoint_id=eid, function_id=func_id)
            client.wait([task_id], timeout=60, progress=False)
            assert client.get_result(task_id) == "Hello Ada Lovelace"
            with Executor(eid, client=client) as ex:  # nothing followed: its waits ask
                assert ex.submit(hello, "Grace", "Hopper").result(60) == "Hello Grace Hopper"
        finally:
            worker.stop()


def _count_channel_requests(monkeypatch) -> list[str]:
    from farcall.sdk import channel as channel_module

    asked: list[str] = []
    ask = channel_module.Channel.ask

    def counting_ask(self, operation, *args, **kwargs):
        asked.append(operation)
        return ask(self, operation, *args, **kwargs)

    monkeypatch.setattr(channel_module.Channel, "ask", counting_ask)
    return asked


def test_a_run_has_its_result_pushed_and_waits_without_asking(
    service, endpoint_id, worker, monkeypatch
):
    client = Client(service.url, token=service.tokens["alice"])
    func_id = client.register_function(slowly)  # pushed after the submission's answer
    asked = _count_channel_requests(monkeypatch)
    for n in range(3):
        task = client.run(n, endpoint_id=endpoint_id, function_id=func_id)
        assert client.wait([task], timeout=60, progress=False)[task]["result"] == n
    assert asked == ["submit"] * 3  # no result wait: each result came down the channel


def test_a_polled_result_is_read_from_what_was_pushed(service, endpoint_id, worker, monkeypatch):
    """The guide's loop of get_result calls finds the pushed result without a request."""
    client = Client(service.url, token=service.tokens["alice"])
    watcher = Client(service.url, token=service.tokens["alice"])
    func_id = client.register_function(identity)
    task = client.run(8, endpoint_id=endpoint_id, function_id=func_id)
    watcher.wait([task], timeout=60, progress=False)  # it has ended at the service
    reads, polls = [], 0
    request = client.transport.request
    monkeypatch.setattr(client.transport, "request",
                        lambda *a, **kw: (reads.append(a), request(*a, **kw))[1])
    while True:
        polls += 1
        try:
            assert client.get_result(task) == 8
            break
        except TaskPending:
            time.sleep(0.05)
    assert len(reads) < polls, "every poll read the task over HTTP"


def test_a_wait_asks_when_the_channel_that_followed_the_task_is_gone(
    service, endpoint_id, worker, monkeypatch
):
    client = Client(service.url, token=service.tokens["alice"])
    func_id = client.register_function(slowly)  # not done when the submission is answered
    asked = _count_channel_requests(monkeypatch)
    task = client.run(9, endpoint_id=endpoint_id, function_id=func_id)
    channel = client.session.channel()
    channel._ws.close()  # the connection is lost, and what it would have pushed with it
    assert client.wait([task], timeout=60, progress=False)[task]["result"] == 9
    assert asked == ["submit", "wait"]


def test_a_batch_past_the_service_s_cap_of_tasks_is_split_and_stored_once(
        tmp_path, monkeypatch):
    """A user of the SDK never sees the cap: batches are split by count, and a part a
    service with a lower cap refuses (storing nothing) is halved and sent again."""
    import sqlite3

    from farcall.sdk import running
    from farcall_service.settings import Settings

    assert Settings().max_tasks_per_submission == running.SUBMIT_CHUNK_TASKS
    home = tmp_path / "capped"
    home.mkdir()
    with ServiceProcess(home, env={"FARCALL_SERVICE_MAX_TASKS_PER_SUBMISSION": "7"}) as svc:
        admin(home, "user", "add", "ada")
        token = admin(home, "token", "create", "ada").splitlines()[-1].strip()
        client = Client(svc.url, token=token)
        eid = client.transport.request(
            "POST", "/v3/endpoints", json={"endpoint_name": "capped"})["endpoint_id"]
        func_id = client.register_function(identity)
        submits: list[int] = []
        refused: list[int] = []
        ask = client.session.ask

        def counting_ask(operation, body, timeout):
            size = sum(len(p) for p in body["tasks"].values())
            try:
                answer = ask(operation, body, timeout)
            except FarcallAPIError as exc:
                assert exc.code == "TOO_MANY_TASKS"
                refused.append(size)
                raise
            submits.append(size)
            return answer

        monkeypatch.setattr(client.session, "ask", counting_ask)
        batch = client.create_batch()
        for x in range(30):
            batch.add(x, endpoint_id=eid, function_id=func_id)
        ids = client.batch_run(batch)  # the default split (2,000) is above this cap
        assert len(set(ids)) == 30 and sum(submits) == 30 and max(submits) <= 7
        assert refused and refused[0] == 30
        monkeypatch.setattr(running, "SUBMIT_CHUNK_TASKS", 7)  # the cap known: no refusal
        submits.clear()
        refused.clear()
        more = client.batch_run(batch)
        assert submits == [7, 7, 7, 7, 2] and not refused
        with sqlite3.connect(home / "service" / "farcall.db") as db:
            stored = {row[0] for row in db.execute("SELECT id FROM tasks")}
        assert stored == set(ids) | set(more) and len(stored) == 60
        # Every part joined the task group the service made for the first one.
        assert sorted(client.get_task_group_tasks(batch.task_group_id)) == sorted(stored)
