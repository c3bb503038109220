"""The few RabbitMQ management API calls the result streams need: users, their
permissions, and a user's queues. Blocking HTTP (urllib) run in a worker thread, off
the caller's event loop."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from farcall_service.brokers.interface import BrokerError

#: Seconds for one management call.
TIMEOUT = 10.0


class Management:
    def __init__(self, url: str, vhost: str) -> None:
        parts = urlsplit(url)
        host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
        self.base = f"{parts.scheme}://{host}:{parts.port or 15672}{parts.path.rstrip('/')}"
        user, password = unquote(parts.username or "guest"), unquote(parts.password or "guest")
        self._auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.vhost = vhost

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path, data=data, method=method,
            headers={"Authorization": self._auth, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                content = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and method == "DELETE":
                return None  # already gone
            raise BrokerError(
                f"the RabbitMQ management API at {self.base} answered {exc.code} to "
                f"{method} {path.split('?')[0]}: {exc.read()[:300]!r}") from None
        except OSError as exc:
            raise BrokerError(
                f"the RabbitMQ management API at {self.base} is unreachable: {exc}; enable "
                f"it (rabbitmq-plugins enable rabbitmq_management) or set "
                f"broker_management_url") from None
        return json.loads(content) if content else None

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return await asyncio.to_thread(self._call, method, path, body)

    def _vhost(self) -> str:
        return quote(self.vhost, safe="")

    async def set_user(self, name: str, password: str, read: str) -> None:
        """Create or update ``name``, with no tags (no management access) and, on this
        vhost, nothing to configure, nothing to write, and ``read`` to read."""
        await self.set_permissions(name, password, configure="^$", write="^$", read=read)

    async def set_permissions(self, name: str, password: str, *, configure: str,
                              write: str, read: str) -> None:
        """Create or update ``name``, with no tags (no management access) and these
        permissions (regular expressions of names) on this vhost."""
        user = quote(name, safe="")
        await self.call("PUT", f"/api/users/{user}", {"password": password, "tags": ""})
        await self.call("PUT", f"/api/permissions/{self._vhost()}/{user}",
                        {"configure": configure, "write": write, "read": read})

    async def delete_user(self, name: str) -> None:
        """Delete ``name``; its connections are closed by the server."""
        await self.call("DELETE", f"/api/users/{quote(name, safe='')}")

    async def users(self, prefix: str) -> list[str]:
        """Names of the broker's users that start with ``prefix``."""
        listed = await self.call("GET", "/api/users?columns=name")
        return [u["name"] for u in listed or () if str(u.get("name", "")).startswith(prefix)]

    async def queues(self, prefix: str) -> list[str]:
        """Names of this vhost's queues that start with ``prefix``."""
        listed = await self.call("GET", f"/api/queues/{self._vhost()}?columns=name")
        return [q["name"] for q in listed or () if str(q.get("name", "")).startswith(prefix)]

    async def delete_queue(self, name: str) -> None:
        await self.call("DELETE", f"/api/queues/{self._vhost()}/{quote(name, safe='')}")
