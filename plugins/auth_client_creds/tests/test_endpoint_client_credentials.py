"""`farcall endpoint start` with client credentials runs for the client's owner."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("farcall_service")
pytest.importorskip("farcall_endpoint")
from farcall_testkit.endpoint import EndpointProcess  # noqa: E402
from farcall_testkit.service import ServiceProcess, admin  # noqa: E402


class ClientCredentialsEndpoint(EndpointProcess):
    """The endpoint process with client credentials and no static token at all."""

    def __init__(self, *args: object, credentials: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.credentials = credentials

    def env(self) -> dict[str, str]:
        env = super().env()
        env.pop("FARCALL_TOKEN", None)
        env.update(self.credentials)
        return env


def test_endpoint_and_client_run_for_the_clients_owner(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    alice_id = admin(tmp_path, "user", "add", "alice")
    alice_token = admin(tmp_path, "token", "create", "alice")
    created = json.loads(admin(tmp_path, "client", "create", "alice", "--json"))
    credentials = {"GLOBUS_COMPUTE_CLIENT_ID": created["client_id"],
                   "GLOBUS_COMPUTE_CLIENT_SECRET": created["client_secret"]}
    with ServiceProcess(tmp_path, env={"FARCALL_SERVICE_LOG_LEVEL": "WARNING"}) as service:
        endpoint = ClientCredentialsEndpoint(tmp_path, "robot", service.url, "unused",
                                             credentials=credentials)
        with endpoint:
            for key in [k for k in os.environ if k.startswith(("FARCALL_", "GLOBUS_", "FUNCX_"))]:
                monkeypatch.delenv(key)
            monkeypatch.setenv("FARCALL_HOME", str(tmp_path / "sdk-home"))
            # A static token is configured too: the client credentials still win.
            monkeypatch.setenv("FARCALL_TOKEN", alice_token)
            for key, value in credentials.items():
                monkeypatch.setenv(key, value)
            from farcall import Client

            gcc = Client(service.url)
            [listed] = gcc.get_endpoints()
            assert listed["uuid"] == endpoint.endpoint_id
            assert listed["owner"] == created["identity_id"] == alice_id
            fn = gcc.register_function(_square)
            task = gcc.run(7, endpoint_id=endpoint.endpoint_id, function_id=fn)
            gcc.wait([task], timeout=60, progress=False)
            assert gcc.get_result(task) == 49
            # With her own token alice sees the same endpoint and task: they are hers.
            monkeypatch.delenv("GLOBUS_COMPUTE_CLIENT_ID")
            monkeypatch.delenv("GLOBUS_COMPUTE_CLIENT_SECRET")
            own = Client(service.url)
            assert [e["uuid"] for e in own.get_endpoints()] == [endpoint.endpoint_id]
            assert own.get_result(task) == 49


def _square(x: int) -> int:
    return x * x
