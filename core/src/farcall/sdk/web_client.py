"""The ``WebClient`` a User Guide style login manager returns from ``get_web_client``.

farcall only needs its ``authorizer``: the Client talks to the service through its
own transport plugin.
"""

from __future__ import annotations

from typing import Any


class WebClient:
    def __init__(self, *, base_url: str, authorizer: Any = None, **_ignored: Any) -> None:
        self.base_url = base_url
        self.authorizer = authorizer

    def __repr__(self) -> str:
        return f"WebClient(base_url={self.base_url!r})"
