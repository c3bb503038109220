"""Where the broker is: the parts of an ``amqp://user:pass@host:port/vhost`` URL.

The URL may carry one farcall option in its query, ``user_prefix``: a prefix for the
names of the RabbitMQ users the broker makes (result-stream readers), so that several
farcall deployments, or test runs, can share one RabbitMQ server. It is not passed on
to the AMQP client.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

#: The broker used when ``--broker rabbitmq`` names it without a URL.
DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
#: Query options farcall reads itself.
OWN_OPTIONS = frozenset({"user_prefix"})


@dataclass(frozen=True)
class BrokerAddress:
    scheme: str
    host: str
    port: int
    vhost: str
    username: str
    password: str
    #: Prefix of the RabbitMQ users this broker makes.
    user_prefix: str = ""
    #: AMQP client options from the URL's query, passed on as they came.
    query: str = ""

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in {"amqp", "amqps"}:
            raise ValueError(f"not an AMQP URL (amqp:// or amqps://): scheme {scheme!r}")
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        options = parse_qsl(parts.query, keep_blank_values=True)
        own = {k: v for k, v in options if k in OWN_OPTIONS}
        return cls(
            scheme=scheme,
            host=parts.hostname or "localhost",
            port=parts.port or (5671 if scheme == "amqps" else 5672),
            vhost=unquote(path) or "/",
            username=unquote(parts.username or "guest"),
            password=unquote(parts.password or "guest"),
            user_prefix=own.get("user_prefix", ""),
            query=urlencode([(k, v) for k, v in options if k not in OWN_OPTIONS]),
        )

    @property
    def where(self) -> str:
        """``host:port``, for messages: never the credentials."""
        return f"{self.host}:{self.port}"

    def url(self, username: str | None = None, password: str | None = None) -> str:
        """The AMQP URL for ``username`` (default: the broker's own user), without
        farcall's own options."""
        user = quote(self.username if username is None else username, safe="")
        secret = quote(self.password if password is None else password, safe="")
        host = f"[{self.host}]" if ":" in self.host else self.host
        query = f"?{self.query}" if self.query else ""
        return (f"{self.scheme}://{user}:{secret}@{host}:{self.port}/"
                f"{quote(self.vhost, safe='')}{query}")

    def management_url(self) -> str:
        """The management API beside the broker: its host, port 15672 (15671 over TLS),
        the broker's credentials."""
        scheme = "https" if self.scheme == "amqps" else "http"
        port = 15671 if self.scheme == "amqps" else 15672
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (f"{scheme}://{quote(self.username, safe='')}:{quote(self.password, safe='')}"
                f"@{host}:{port}")
