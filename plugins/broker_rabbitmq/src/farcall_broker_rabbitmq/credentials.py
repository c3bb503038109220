"""Result-stream credentials: derived, never stored.

A user's RabbitMQ password is ``HMAC-SHA256(key, f"{username}:{period}")`` where the key
is derived from the broker URL's own password and ``period = floor(now / ttl)``. Every
service process computes the same password without asking anyone, nothing new is made
per connection attempt, and it changes every period (connections already open keep
working; a reconnecting Executor asks the service for the URL again).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import time

#: Names the purpose of the key, so the broker's password is never used directly.
_PURPOSE = b"farcall result-stream credentials v1"


def stream_username(owner_id: str, prefix: str = "") -> str:
    """The RabbitMQ user that reads ``owner_id``'s result queues."""
    return f"{prefix}farcall-user-{owner_id}"


class StreamCredentials:
    def __init__(self, secret: str, ttl: float) -> None:
        if ttl <= 0:
            raise ValueError(f"the stream credential lifetime must be positive, not {ttl}")
        self._key = hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()
        self.ttl = ttl

    def period(self, now: float | None = None) -> int:
        return math.floor((time.time() if now is None else now) / self.ttl)

    def password(self, username: str, period: int) -> str:
        """URL-safe, 43 characters."""
        digest = hmac.new(self._key, f"{username}:{period}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")
