"""Hostile input against a live service and endpoint: forged and truncated packed buffers,
strategies that are unknown or not allowed, 100 MB bodies, deep JSON, non-UUID ids, path
traversal in names and huge results. Each gets a clear 4xx or a clear task failure, and a
normal task still succeeds afterwards."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import reliability_kit as kit
import sqlalchemy as sa
from farcall.serialize import pack_buffers
from farcall_testkit.endpoint import Api
from farcall_testkit.service import FARCALL, assert_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

MB = 1024 * 1024
ALLOWED = ["st", "00"]


def echo(x):
    return x


def big(n):
    return "x" * n


@dataclass
class Target:
    stack: Any  # kit.Stack, or farcall_testkit.scaled.ScaledStack
    api: Api
    endpoint_id: str
    echo: str
    plus_one: str
    big: str
    open_endpoint_id: str  # no allowlist

    def submit_raw(self, payload: str, fn: str | None = None, endpoint_id: str | None = None
                   ) -> Any:
        return self.api.http.post(
            f"{self.stack.url}/v3/endpoints/{endpoint_id or self.endpoint_id}/submit",
            json={"tasks": {fn or self.echo: [payload]}}, timeout=60)

    def still_serving(self) -> None:
        kit.assert_still_serving(self.api, self.endpoint_id, self.plus_one)


@pytest.fixture(scope="module", params=kit.STACKS)
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Target]:
    with kit.any_stack(request.param, request, tmp_path_factory.mktemp("hostile")) as stack:
        endpoint = stack.endpoint("hostile", allowed_serializers=ALLOWED,
                                  max_result_size=10 * MB)
        endpoint.start()
        unrestricted = stack.endpoint("unrestricted", workers=1)
        unrestricted.start()
        api = stack.api()
        yield Target(stack, api, endpoint.endpoint_id, kit.register(api, echo),
                     kit.register(api, kit.plus_one), kit.register(api, big),
                     unrestricted.endpoint_id)
        api.close()


def _payload(*args: Any) -> str:
    from farcall.serialize import Serializer

    serializer = Serializer()
    return pack_buffers([serializer.serialize(args), serializer.serialize({})])


def _outcome(target: Target, payload: str) -> tuple[int, str]:
    """(status code, error code or the task's final status and exception)."""
    answer = target.submit_raw(payload)
    if answer.status_code != 200:
        body = assert_error(answer, answer.status_code)
        assert 400 <= answer.status_code < 500, body
        return answer.status_code, body["code"]
    [task] = answer.json()["tasks"][target.echo]
    doc = target.api.wait([task], timeout=60)[task]
    return 200, f"{doc['status']}: {doc.get('exception', '')}"


GOOD = _payload(7)
FORGED = {
    "truncated-header": GOOD[:2],
    "truncated-first-buffer": GOOD[:10],
    "truncated-second-buffer": GOOD[:-4],
    "length-too-large": "999\n" + GOOD.split("\n", 1)[1],
    "length-negative": "-5\n" + GOOD.split("\n", 1)[1],
    "length-not-a-number": "xx\n" + GOOD.split("\n", 1)[1],
    "one-buffer": pack_buffers(["00\ngAR9lC4="]),
    "three-buffers": pack_buffers(["00\ngAR9lC4="] * 3),
    "no-header": pack_buffers(["gAR9lC4=", "gAR9lC4="]),
    "bad-base64": pack_buffers(["00\n!!!!not base64", "00\ngAR9lC4="]),
    "garbage-pickle": pack_buffers(["00\nZ2FyYmFnZQ==", "00\ngAR9lC4="]),
    "wrong-types": pack_buffers(["11\n{\"not\": \"a tuple\"}", "00\ngAR9lC4="]),
}


@pytest.mark.parametrize("name", sorted(FORGED))
def test_forged_and_truncated_payloads(target: Target, name: str) -> None:
    status, outcome = _outcome(target, FORGED[name])
    assert status in (400, 403) or outcome.startswith("failed: "), (name, outcome)
    if status == 200:
        assert len(outcome) > len("failed: ") + 10, outcome  # an explanation, not a blank
    target.still_serving()
    kit.record("hostile input", cases=1)


@pytest.mark.parametrize("strategy", ["zz", "11", "c0", "01"])
def test_strategies_unknown_or_not_allowed(target: Target, strategy: str) -> None:
    """The endpoint allows only st and 00: anything else fails the task, naming why."""
    args = "[7]" if strategy == "11" else "gAR9lC4="
    status, outcome = _outcome(target, pack_buffers([f"{strategy}\n{args}", "00\ngAR9lC4="]))
    assert status == 400 or outcome.startswith("failed: "), outcome
    if status == 200:
        assert f"strategy '{strategy}' is not allowed here" in outcome, outcome
    target.still_serving()
    kit.record("hostile input", cases=1)


@pytest.mark.parametrize("strategy", ["zz", "9\t", "ZZ"])
def test_unknown_strategies_without_an_allowlist(target: Target, strategy: str) -> None:
    answer = target.submit_raw(pack_buffers([f"{strategy}\ngAR9lC4=", "00\ngAR9lC4="]),
                               endpoint_id=target.open_endpoint_id)
    if answer.status_code != 200:
        assert_error(answer, 400)
    else:
        [task] = answer.json()["tasks"][target.echo]
        doc = target.api.wait([task], timeout=60)[task]
        assert doc["status"] == "failed", doc
        assert repr(strategy) in doc["exception"] or strategy in doc["exception"], doc
    kit.assert_still_serving(target.api, target.open_endpoint_id, target.plus_one)
    kit.record("hostile input", cases=1)


@settings(max_examples=kit.scale(40, 400), deadline=None, derandomize=not kit.SOAK,
          database=None, suppress_health_check=list(HealthCheck))
@given(cut=st.integers(0, len(GOOD)), junk=st.text(max_size=12),
       keep_tail=st.booleans())
def test_fuzzed_payloads(target: Target, cut: int, junk: str, keep_tail: bool) -> None:
    payload = GOOD[:cut] + junk + (GOOD[cut:] if keep_tail else "")
    answer = target.submit_raw(payload)
    kit.record("hostile input", fuzz_cases=1)
    if answer.status_code != 200:
        assert_error(answer, answer.status_code)
        assert 400 <= answer.status_code < 500
        return
    [task] = answer.json()["tasks"][target.echo]
    doc = target.api.wait([task], timeout=60)[task]
    assert doc["status"] == "success" or doc.get("exception"), doc


def test_fuzzing_left_it_serving(target: Target) -> None:
    target.still_serving()


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _raw_post(port: int, path: str, headers: str, chunks: Iterator[bytes]) -> bytes:
    """Send a request by hand, stopping when the server stops reading; return its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(headers.encode())
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except (TimeoutError, ConnectionResetError):
            pass
        return answer


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_100_mb_body_is_refused_without_reading_it(target: Target, framing: str) -> None:
    size = 100 * MB
    pid = target.stack.service.process.pid
    before = _peak_rss_kib(pid)
    path = f"/v3/endpoints/{target.endpoint_id}/submit"
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
            f"{target.stack.token}\r\nContent-Type: application/json\r\n")
    block = b"[" * MB
    if framing == "content-length":
        head += f"Content-Length: {size}\r\n\r\n"
        chunks = (block for _ in range(size // MB))
    else:
        head += "Transfer-Encoding: chunked\r\n\r\n"
        chunks = (b"%x\r\n%s\r\n" % (MB, block) for _ in range(size // MB))
    answer = _raw_post(target.stack.service.port, path, head, chunks)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"REQUEST_TOO_LARGE" in answer
    grown_mib = (_peak_rss_kib(pid) - before) / 1024
    assert grown_mib < 40, f"the service's peak memory grew by {grown_mib:.0f} MiB"
    kit.record("hostile input", cases=1)
    kit.record("100 MB body", **{f"peak_rss_growth_mib_{framing}": round(grown_mib, 1)})
    target.still_serving()


def _nested(depth: int) -> str:
    return '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1)


def _deep_answer(target: Target, path: str, body: str) -> int:
    """POST ``body`` (raw JSON); the status, which must be a clear 4xx."""
    answer = target.api.http.post(target.stack.url + path, data=body.encode(), timeout=60,
                                  headers={"Content-Type": "application/json"})
    assert_error(answer, answer.status_code)
    assert 400 <= answer.status_code < 500, (path, answer.status_code, answer.text[:200])
    return answer.status_code


@pytest.mark.parametrize("depth", [40, 300, 900, 1000, 100_000])
def test_deeply_nested_json(target: Target, depth: int) -> None:
    """Stored free-form fields are refused past their depth limit (32), and bodies too
    deep to parse are refused as such: JSON_TOO_DEEP either way, never a 5xx."""
    nested, raw = _nested(depth), "[" * depth + "]" * depth
    ep = target.endpoint_id
    cases = [
        (f"/v3/endpoints/{ep}/submit", f'{{"tasks": {{"{target.echo}": {raw}}}}}'),
        (f"/v3/endpoints/{ep}/submit",
         f'{{"tasks": {{"{target.echo}": ["x"]}}, "resource_specification": {nested}}}'),
        ("/v3/functions", f'{{"function_name": "f", "function_code": "x", "serialized": false, '
                          f'"meta": {nested}}}'),
        ("/v3/endpoints", f'{{"endpoint_name": "deep", "metadata": {nested}}}'),
        ("/v2/batch_status", raw),
    ]
    statuses = [_deep_answer(target, path, body) for path, body in cases]
    assert statuses[1:4] == [400, 400, 400], statuses  # JSON_TOO_DEEP, not 422
    kit.record("deep json", cases=len(cases), server_errors=0)
    kit.record("hostile input", cases=len(cases))
    target.still_serving()


def test_deep_json_on_the_channels_answers_400_and_keeps_them_open(target: Target) -> None:
    from websockets.sync.client import connect

    base = target.stack.url.replace("http://", "ws://")
    headers = {"Authorization": f"Bearer {target.stack.token}"}
    raw = "[" * 100_000 + "]" * 100_000
    for path, follow_up in [
        ("/farcall/v1/channel", {"op": "wait", "task_ids": [str(uuid.uuid4())], "timeout": 0}),
        (f"/farcall/v1/endpoints/{target.endpoint_id}/channel",
         {"op": "results", "session": "probe", "results": []}),
    ]:
        with connect(base + path, additional_headers=headers, max_size=None,
                     open_timeout=30) as ws:
            assert json.loads(ws.recv(timeout=30))["ok"] is True
            ws.send(raw)
            error = json.loads(ws.recv(timeout=30))["error"]
            assert (error["status"], error["code"]) == (400, "JSON_TOO_DEEP"), error
            ws.send(json.dumps(follow_up))
            assert "error" not in json.loads(ws.recv(timeout=30))  # still open, answering
    kit.record("deep json", cases=2, server_errors=0)
    kit.record("hostile input", cases=2)
    target.still_serving()


def test_deep_details_and_deep_rows_read_back(target: Target) -> None:
    """A report with deep details keeps its result; a 300-level row written straight
    into the database (as an older service stored them) reads back with 200."""
    api, url = target.api, target.stack.url
    ep = str(uuid.uuid4())
    api.register_endpoint(ep, "deep-details")
    [task] = api.submit(ep, target.echo, [(1,)])
    claimed = api.call("POST", f"/farcall/v1/endpoints/{ep}/claim",
                       json={"session": "deep", "max_tasks": 1})["tasks"]
    assert [t["task_id"] for t in claimed] == [task]
    result = json.dumps({"task_id": task, "status": "success",
                         "result": api.serializer.serialize(1)})
    report = ('{"session": "deep", "results": [' + result[:-1] + ', "details": '
              + _nested(500) + "}]}")
    answer = api.http.post(f"{url}/farcall/v1/endpoints/{ep}/results", data=report.encode(),
                           headers={"Content-Type": "application/json"}, timeout=60)
    assert answer.status_code == 200 and answer.json()["acknowledged"] == [task], answer.text
    doc = api.wait([task], timeout=60)[task]
    assert doc["status"] == "success" and "farcall_dropped" in doc["details"], doc
    fn = kit.register(api, echo, public=True)
    engine = sa.create_engine(kit.database_url(target.stack), poolclass=sa.pool.NullPool)
    value = "CAST(:v AS json)" if engine.dialect.name == "postgresql" else ":v"
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE functions SET metadata = {value} WHERE id = :i"),
                     {"v": _nested(300), "i": fn})
        conn.execute(sa.text(f"UPDATE tasks SET details = {value} WHERE id = :i"),
                     {"v": _nested(300), "i": task})
    engine.dispose()
    reads = [api.http.get(f"{url}/v2/functions/{fn}", timeout=60),
             api.http.get(f"{url}/v2/tasks/{task}", timeout=60),
             api.http.post(f"{url}/v2/batch_status", json={"task_ids": [task]}, timeout=60)]
    assert [r.status_code for r in reads] == [200, 200, 200], [r.text[:200] for r in reads]
    kit.record("deep json", cases=4, server_errors=0)
    kit.record("hostile input", cases=4)
    target.still_serving()


BAD_IDS = ["not-a-uuid", "..%2F..%2Fetc%2Fpasswd", "%00", "' OR 1=1 --", "a" * 5000,
           "00000000-0000-0000-0000-00000000000g", "{uuid}"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_non_uuid_ids(target: Target, bad: str) -> None:
    for path in ["/v2/tasks/{}", "/v2/functions/{}", "/v2/endpoints/{}/status",
                 "/v2/taskgroup/{}", "/farcall/v1/containers/{}"]:
        answer = target.api.http.get(target.stack.url + path.format(bad), timeout=30)
        body = assert_error(answer, answer.status_code)
        assert answer.status_code in (400, 404), (path, answer.status_code, body)
    answer = target.api.http.post(f"{target.stack.url}/v2/batch_status",
                                  json={"task_ids": [bad]}, timeout=30)
    assert answer.status_code in (200, 400, 422), answer.text
    kit.record("hostile input", cases=6)
    target.still_serving()


TRAVERSAL = ["../../x", "../../../etc/passwd", "/etc/passwd", "..", "a/../../b", "x\x00y"]


@pytest.mark.parametrize("name", TRAVERSAL)
def test_path_traversal_in_service_names(target: Target, name: str, tmp_path: Path) -> None:
    """Names are data: stored verbatim or refused, never used as paths."""
    home = target.stack.home
    before = sorted(os.listdir(home.parent))
    http, url = target.api.http, target.stack.url
    answers = [
        http.post(f"{url}/v3/endpoints", json={"endpoint_name": name}, timeout=30),
        http.post(f"{url}/v3/functions", json={"function_name": name, "serialized": False,
                                               "function_code": "def f():\n    return 1\n"},
                  timeout=30),
        http.post(f"{url}/farcall/v1/containers",
                  json={"name": name, "type": "venv", "location": name}, timeout=30),
    ]
    for answer in answers:
        if answer.status_code != 200:
            assert_error(answer, answer.status_code)
            assert 400 <= answer.status_code < 500, answer.text
    if answers[0].status_code == 200:
        ep = answers[0].json()["endpoint_id"]
        assert target.api.call("GET", f"/v2/endpoints/{ep}")["name"] == name
    assert sorted(os.listdir(home.parent)) == before
    kit.record("hostile input", cases=3)
    target.still_serving()


@pytest.mark.parametrize("name", ["../x", "../../x", "/tmp/x", "a/b", ".hidden", "..", ""])
@pytest.mark.parametrize("command", ["configure", "start", "status", "stop"])
def test_path_traversal_in_endpoint_names(tmp_path: Path, command: str, name: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "FARCALL_HOME": str(home)}
    done = subprocess.run([*FARCALL, "endpoint", command, name], env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode != 0
    assert "name" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]
    assert not any(home.rglob("config.toml"))
    kit.record("hostile input", cases=1)


def test_huge_results(target: Target) -> None:
    """Over the endpoint's max_result_size: the task fails, saying so. Several large
    results that together exceed the service's body limit still all arrive."""
    [too_big] = target.api.submit(target.endpoint_id, target.big, [(11 * MB,)])
    large = target.api.submit(target.endpoint_id, target.big, [(3 * MB,)] * 5)
    docs = target.api.wait([too_big, *large], timeout=120)
    assert docs[too_big]["status"] == "failed"
    assert "size" in docs[too_big]["exception"].lower(), docs[too_big]["exception"][:500]
    assert [len(target.api.result(docs[t])) for t in large] == [3 * MB] * 5
    kit.record("hostile input", cases=2)
    target.still_serving()


def test_python_api_refuses_traversal(tmp_path: Path) -> None:
    from farcall_endpoint.config import ConfigError
    from farcall_endpoint.configure import configure_endpoint

    for name in ("../x", "/abs", "a/b"):
        with pytest.raises(ConfigError):
            configure_endpoint(name, home=tmp_path)
    assert list(tmp_path.iterdir()) == [] or not any(tmp_path.rglob("config.toml"))
