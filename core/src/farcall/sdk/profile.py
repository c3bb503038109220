"""Where the SDK finds its service and credentials when it is not told.

In order: explicit arguments, ``FARCALL_BASE_URL`` / ``FARCALL_TOKEN``, then the
profile ``farcall dev`` writes at ``$FARCALL_HOME/dev.json``. The profile's token and
endpoint belong to the profile's service: they are not used for another URL, where
sending the token would hand it to a stranger.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from farcall.private_files import farcall_home
from farcall.sdk.plain_http import check_url

__all__ = ["Profile", "farcall_home", "load_profile"]

DEFAULT_BASE_URL = "http://127.0.0.1:5000"


@dataclass(frozen=True)
class Profile:
    base_url: str
    token: str | None = None
    endpoint_id: str | None = None
    #: Where the token came from: ``"environment"``, the profile's path, or
    #: ``"defaults"`` (no token).
    source: str = "defaults"


def load_profile(base_url: str | None = None) -> Profile:
    """The service URL and static token to use, with where they came from.

    Raises :class:`~farcall.sdk.plain_http.InsecureURLError` for a plain-http URL to a
    host that is not loopback (unless ``FARCALL_ALLOW_INSECURE_HTTP=1``): the SDK and
    the endpoint send their tokens to it.
    """
    profile = _load_profile(base_url)
    check_url(profile.base_url)
    return profile


def _load_profile(base_url: str | None) -> Profile:
    env_url, env_token = os.environ.get("FARCALL_BASE_URL"), os.environ.get("FARCALL_TOKEN")
    dev = _read_dev_profile()
    dev_url = str(dev.get("base_url") or DEFAULT_BASE_URL).rstrip("/")
    url = (base_url or env_url or dev_url).rstrip("/")
    ours = bool(dev) and url == dev_url  # the dev profile describes this service
    endpoint_id = dev.get("endpoint_id") if ours else None
    if env_token:
        return Profile(url, env_token, endpoint_id, "environment")
    if ours and dev.get("token"):
        return Profile(url, dev["token"], endpoint_id, str(farcall_home() / "dev.json"))
    return Profile(url, None, endpoint_id)


def _read_dev_profile() -> dict[str, str]:
    path = farcall_home() / "dev.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
