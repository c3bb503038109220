"""The contract every endpoint link plugin must meet, against a real service.

Use it from a plugin's tests by subclassing and naming the link::

    from farcall_endpoint.testing.link_contract import LinkContract

    class TestMyLink(LinkContract):
        link_name = "my-link"

The link is built through the installed plugins, from the context an endpoint
builds (its login and transport), so the suite also proves that the plugin's entry
point is declared and loads. By default each class starts a ``farcall server`` on a
free loopback port (``farcall_testkit``, from farcall-endpoint's ``test`` extra, and
farcall-service are needed); a link for another service overrides ``service`` with
one that has the same few REST routes, or ``make_link`` to build its link another
way. See :mod:`farcall_endpoint.links.interface` for what each test holds the link to.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from farcall.plugins import get_plugin_manager
from farcall.plugins.manager import FarcallPluginManager

from farcall_endpoint.config import EndpointConfig
from farcall_endpoint.connect import link_context
from farcall_endpoint.engines.interface import EngineStatus
from farcall_endpoint.kinds import LINKS
from farcall_endpoint.links.interface import EndpointRefused, Link, Registration

#: The service's offline timeout: short, so a test can see the endpoint go offline.
OFFLINE_TIMEOUT = 1.0
#: Seconds any single expectation may take.
PATIENCE = 30.0


def double(x: int) -> int:
    return 2 * x


@dataclass
class LinkService:
    """A running service, its owner's token and another user's, and the owner's view
    through the REST API (``farcall_testkit.endpoint.Api``: ``call``, ``submit``,
    ``register_function``, ``documents``, ``wait``, ``result``, ``status``)."""

    url: str
    token: str
    stranger_token: str
    api: Any


#: Builds a link to the service for an endpoint id, signed with a token (the owner's
#: when None).
MakeLink = Callable[..., Link]


class LinkContract:
    """Subclass and set ``link_name``."""

    link_name: ClassVar[str]
    #: The transport plugin the link's context opens connections with.
    transport_name: ClassVar[str] = "http"

    # -- fixtures a plugin may override ------------------------------------------------

    @pytest.fixture(scope="class")
    @classmethod
    def plugin_manager(cls) -> FarcallPluginManager:
        return get_plugin_manager()

    @pytest.fixture(scope="class")
    @classmethod
    def service(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LinkService]:
        from farcall_testkit.endpoint import Api, create_user, start_service

        home = Path(tmp_path_factory.mktemp("link-service"))
        owner, stranger = create_user(home, "owner"), create_user(home, "stranger")
        process = start_service(home, ["--offline-timeout", str(OFFLINE_TIMEOUT),
                                       "--rate-limit", "0"])
        api = Api(process.url, owner)
        try:
            yield LinkService(process.url, owner, stranger, api)
        finally:
            api.close()
            process.stop()

    @pytest.fixture
    def make_link(self, plugin_manager: FarcallPluginManager, service: LinkService,
                  tmp_path: Path) -> Iterator[MakeLink]:
        """Links as an endpoint builds them; each is closed at the end of the test."""
        links: list[Link] = []

        def make(endpoint_id: str, token: str | None = None) -> Link:
            config = EndpointConfig(name="contract", home=tmp_path, base_url=service.url,
                                    token=token or service.token, link=self.link_name,
                                    transport=self.transport_name)
            context = link_context(config, plugin_manager, endpoint_id)
            link = plugin_manager.select(LINKS, self.link_name).factory(context)
            links.append(link)
            return link

        yield make
        for link in links:
            link.close()

    @pytest.fixture
    def endpoint_id(self) -> str:
        return str(uuid.uuid4())

    @pytest.fixture
    def link(self, make_link: MakeLink, endpoint_id: str) -> Link:
        """A link to a fresh endpoint, registered."""
        link = make_link(endpoint_id)
        link.register(registration())
        return link

    # -- the contract ---------------------------------------------------------------------

    def test_registering_creates_the_endpoint_and_again_updates_it(
            self, make_link: MakeLink, endpoint_id: str, service: LinkService) -> None:
        link = make_link(endpoint_id)
        answer = link.register(registration("first"))
        assert isinstance(answer, dict)
        assert service.api.call("GET", f"/v2/endpoints/{endpoint_id}")["name"] == "first"
        link.register(registration("second"))  # a restart registers again
        assert service.api.call("GET", f"/v2/endpoints/{endpoint_id}")["name"] == "second"

    def test_tasks_a_user_submits_arrive(self, link: Link, endpoint_id: str,
                                         service: LinkService) -> None:
        fn = service.api.register_function(double)
        submitted = service.api.submit(endpoint_id, fn, [(n,) for n in range(3)])
        docs = claim_all(link, "s1", submitted)
        assert sorted(docs) == sorted(submitted)
        for doc in docs.values():
            assert doc["function_id"] == fn and doc["payload"]

    def test_a_waiting_claim_gets_a_task_submitted_meanwhile(
            self, link: Link, endpoint_id: str, service: LinkService) -> None:
        fn = service.api.register_function(double)
        assert link.claim("s1", 10, 0.2) == []  # nothing queued: empty, after the wait
        got: list[list[dict[str, Any]]] = []
        waiting = threading.Thread(target=lambda: got.append(link.claim("s1", 10, 20.0)))
        begun = time.monotonic()
        waiting.start()
        time.sleep(0.3)
        task_id = service.api.submit(endpoint_id, fn, [(1,)])[0]
        waiting.join(PATIENCE)
        assert got and [d["task_id"] for d in got[0]] == [task_id]
        assert time.monotonic() - begun < 15, "the claim waited out its wait"

    def test_a_waiting_claim_hears_at_once_of_a_held_task_s_cancel(
            self, link: Link, endpoint_id: str, service: LinkService) -> None:
        """Only for a link that has the optional ``cancelled()``."""
        cancelled = getattr(link, "cancelled", None)
        if cancelled is None:
            pytest.skip("the link does not say which tasks were cancelled")
        api = service.api
        task_id = api.submit(endpoint_id, api.register_function(double), [(1,)])[0]
        claim_all(link, "s1", [task_id])
        got: list[list[dict[str, Any]]] = []
        waiting = threading.Thread(target=lambda: got.append(link.claim("s1", 10, 60.0)))
        begun = time.monotonic()
        waiting.start()
        time.sleep(0.3)
        answer = api.call("POST", "/farcall/v1/tasks/cancel", json={"task_ids": [task_id]})
        assert answer["results"][task_id]["outcome"] == "cancelled"
        waiting.join(PATIENCE)
        assert got == [[]]
        assert time.monotonic() - begun < 30, "the claim waited out its wait"
        assert cancelled() == [task_id]
        assert cancelled() == []  # each said once
        receipt = link.report("s1", [{"task_id": task_id, "status": "failed",
                                      "exception": "cancelled"}], PATIENCE)
        assert receipt.acknowledged == [task_id]  # acknowledged, not recorded
        assert "cancelled by" in api.call("GET", f"/v2/tasks/{task_id}")["exception"]

    def test_a_new_session_gets_back_what_an_older_one_was_handed(
            self, link: Link, endpoint_id: str, service: LinkService) -> None:
        fn = service.api.register_function(double)
        task_id = service.api.submit(endpoint_id, fn, [(1,)])[0]
        assert list(claim_all(link, "s1", [task_id])) == [task_id]
        assert list(claim_all(link, "s2", [task_id])) == [task_id]

    def test_a_reported_result_is_recorded_once(self, link: Link, endpoint_id: str,
                                                service: LinkService) -> None:
        api = service.api
        task_id = api.submit(endpoint_id, api.register_function(double), [(21,)])[0]
        claim_all(link, "s1", [task_id])
        ran: list[str] = []
        receipt = link.report("s1", [success(api, task_id, 42)], PATIENCE,
                              lambda: ran.append("meanwhile"))
        assert receipt.acknowledged == [task_id] and receipt.rejected == []
        assert ran == ["meanwhile"]
        assert api.result(api.wait([task_id])[task_id]) == 42
        # Sent again (its acknowledgement lost): acknowledged, and the first one stays.
        again = link.report("s1", [success(api, task_id, 0)], PATIENCE)
        assert again.acknowledged == [task_id]
        assert api.result(api.documents([task_id])[task_id]) == 42

    def test_a_result_for_a_task_the_service_does_not_know_is_rejected(
            self, link: Link) -> None:
        unknown = str(uuid.uuid4())
        receipt = link.report("s1", [{"task_id": unknown, "status": "success",
                                      "result": "00\nx"}], PATIENCE)
        assert receipt.rejected == [unknown] and receipt.acknowledged == []

    def test_a_heartbeat_makes_the_endpoint_online_with_its_counts(
            self, link: Link, endpoint_id: str, service: LinkService) -> None:
        def status() -> dict[str, Any]:
            return dict(service.api.status(endpoint_id))

        assert eventually(lambda: status()["status"] == "offline"), "never went offline"
        offline = link.heartbeat("s1", EngineStatus(total_workers=3, idle_workers=2,
                                                    pending_tasks=1))
        assert offline is None or offline > 0
        answer = status()
        assert answer["status"] == "online"
        details = answer["details"]
        assert (details["total_workers"], details["idle_workers"],
                details["pending_tasks"]) == (3, 2, 1)

    def test_a_waiting_claim_does_not_delay_a_heartbeat_or_a_report(
            self, link: Link, endpoint_id: str, service: LinkService) -> None:
        waiting = threading.Thread(target=link.claim, args=("s1", 10, 3.0), daemon=True)
        waiting.start()
        time.sleep(0.2)
        begun = time.monotonic()
        link.heartbeat("s1", EngineStatus(1, 1, 0))
        unknown = {"task_id": str(uuid.uuid4()), "status": "success", "result": "00\nx"}
        link.report("s1", [unknown], PATIENCE)
        assert time.monotonic() - begun < 2.0, "the heartbeat or report waited for the claim"
        waiting.join(PATIENCE)

    def test_a_wrong_token_is_refused_for_good(self, make_link: MakeLink,
                                               endpoint_id: str) -> None:
        link = make_link(endpoint_id, token="not-a-token")
        with pytest.raises(EndpointRefused) as refused:
            link.register(registration())
        assert endpoint_id in str(refused.value)

    def test_another_users_endpoint_is_refused_for_good(
            self, link: Link, make_link: MakeLink, endpoint_id: str,
            service: LinkService) -> None:
        intruder = make_link(endpoint_id, token=service.stranger_token)
        with pytest.raises(EndpointRefused):
            intruder.register(registration())
        with pytest.raises(EndpointRefused):
            intruder.claim("s1", 10, 0.0)
        with pytest.raises(EndpointRefused):
            intruder.heartbeat("s1", EngineStatus(1, 1, 0))

    def test_close_returns_while_a_claim_waits_and_is_idempotent(self, link: Link) -> None:
        waiting = threading.Thread(target=swallow(link.claim), args=("s1", 10, 5.0),
                                   daemon=True)
        waiting.start()
        time.sleep(0.3)
        begun = time.monotonic()
        link.close()
        link.close()
        assert time.monotonic() - begun < 2.0, "close waited for the claim"
        waiting.join(PATIENCE)  # the claim ends, by its wait or by the closing


def registration(name: str = "contract") -> Registration:
    return Registration(endpoint_name=name, display_name=name,
                        metadata={"hostname": "contract-test", "engine": "none"})


def claim_all(link: Link, session: str, task_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Claim until every one of ``task_ids`` came (a claim may bring fewer)."""
    docs: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + PATIENCE
    while not set(task_ids) <= set(docs):
        assert time.monotonic() < deadline, f"claimed {len(docs)} of {len(task_ids)} tasks"
        docs.update((str(d["task_id"]), d) for d in link.claim(session, 100, 1.0))
    return docs


def success(api: Any, task_id: str, value: Any) -> dict[str, Any]:
    now = time.time()
    return {"task_id": task_id, "status": "success", "result": api.serializer.serialize(value),
            "details": {"task_transitions": {"received": now, "success": now}}}


def eventually(check: Callable[[], bool], timeout: float = PATIENCE) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def swallow(call: Callable[..., Any]) -> Callable[..., None]:
    """``call``, with whatever it raises ignored (a claim cut short by close)."""
    def run(*args: Any) -> None:
        with contextlib.suppress(Exception):
            call(*args)
    return run
