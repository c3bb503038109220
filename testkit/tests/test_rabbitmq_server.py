"""The ``rabbitmq`` fixture makes scratch vhosts the AMQP user may use, and removes
them, and every user named after the run, when it closes."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from farcall_testkit.servers import RabbitMQ


def _vhosts(server: RabbitMQ) -> set[str]:
    listed = server._request("GET", "/api/vhosts")
    assert isinstance(listed, list)
    return {v["name"] for v in listed}


def test_a_scratch_vhost_is_the_users_and_goes_with_the_users_of_the_run(
    rabbitmq: RabbitMQ,
) -> None:
    server = RabbitMQ.from_environment()  # a run of its own, closed here
    url = server.create_vhost()
    vhost = unquote(urlsplit(url).path.lstrip("/"))
    assert vhost.startswith(server.prefix) and vhost in _vhosts(rabbitmq)
    assert urlsplit(url).query == f"user_prefix={server.prefix}_"
    permissions = server._request("GET", f"/api/vhosts/{vhost}/permissions")
    assert isinstance(permissions, list)
    assert [(p["user"], p["configure"], p["read"]) for p in permissions] == [
        (server.user, ".*", ".*")]
    server._request("PUT", f"/api/users/{server.prefix}_someone",
                    json={"password": "secret", "tags": ""})
    assert server.users() == [f"{server.prefix}_someone"]

    server.delete_vhost(url)
    assert vhost not in _vhosts(rabbitmq)
    left = unquote(urlsplit(server.create_vhost()).path.lstrip("/"))
    server.close()
    assert left not in _vhosts(rabbitmq)
    assert server.prefix not in str(rabbitmq._request("GET", "/api/users"))
