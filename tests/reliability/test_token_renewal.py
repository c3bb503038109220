"""An endpoint that logs in with client credentials outlives its access tokens.

Its channel to the service is opened with the token of the moment; when that token
expires, the service refuses the channel's next request and the endpoint opens the
channel again with a fresh token instead of giving up.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import reliability_kit as kit
import requests
from farcall_testkit.endpoint import EndpointProcess
from farcall_testkit.service import COMPUTE_SCOPE, ServiceProcess, admin

#: Seconds an access token lives: long enough for one round of the test's own calls.
TOKEN_TTL = 3.0


class ClientEndpoint(EndpointProcess):
    """An endpoint process that logs in as a confidential client, not with a token."""

    def __init__(self, home: Path, url: str, client: dict[str, str]) -> None:
        super().__init__(home, "robot", url, "", engine={"type": "process", "workers": 1},
                         **kit.FAST_ENDPOINT)
        self.client = client

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("FARCALL_", "GLOBUS_", "FUNCX_"))}
        env.update(FARCALL_HOME=str(self.home), FARCALL_BASE_URL=self.url,
                   GLOBUS_COMPUTE_CLIENT_ID=self.client["client_id"],
                   GLOBUS_COMPUTE_CLIENT_SECRET=self.client["client_secret"])
        return env


def fresh_token(url: str, client: dict[str, str]) -> str:
    grant = requests.post(f"{url}/auth/v2/oauth2/token", timeout=30,
                          data={"grant_type": "client_credentials", "scope": COMPUTE_SCOPE},
                          auth=(client["client_id"], client["client_secret"]))
    assert grant.status_code == 200, grant.text
    return grant.json()["access_token"]


def test_an_endpoint_outlives_its_access_tokens(tmp_path: Path) -> None:
    admin(tmp_path, "user", "add", "alice")
    client = json.loads(admin(tmp_path, "client", "create", "alice", "--json"))
    env = {"FARCALL_SERVICE_ACCESS_TOKEN_TTL": str(TOKEN_TTL)}
    with ServiceProcess(tmp_path, args=kit.SERVICE_ARGS, env=env) as service:
        endpoint = ClientEndpoint(tmp_path, service.url, client).start()
        try:
            for round_ in range(2):
                assert endpoint.process is not None and endpoint.process.poll() is None, (
                    f"the endpoint gave up:\n{endpoint.log()[-3000:]}")
                api = kit.Api(service.url, fresh_token(service.url, client))
                fn = kit.register(api, kit.plus_one)
                [task] = api.submit(endpoint.endpoint_id, fn, [(round_,)])
                assert api.result(api.wait([task], 60)[task]) == round_ + 1
                api.close()
                # Every token the endpoint holds expires, and its claim, waiting at most
                # claim_wait, comes back for another with the token it opened with.
                time.sleep(TOKEN_TTL + kit.FAST_ENDPOINT["claim_wait"] + 0.5)
        finally:
            endpoint.stop()
