"""No bearer tokens over plain ``http`` beyond this machine, unless asked for.

Every request of the SDK and the endpoint carries a token (the endpoint's works for
its owner), and plain ``http`` shows it to anyone on the path. Loopback addresses never
leave the machine (``farcall dev``, a service behind a local proxy), so they are
allowed; any other host needs ``https``, or ``FARCALL_ALLOW_INSECURE_HTTP=1`` for a
network that is trusted on purpose (a private test cluster).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from farcall.errors import FarcallError

#: Set to 1 to send tokens over plain http to hosts other than loopback ones.
ALLOW_INSECURE_HTTP = "FARCALL_ALLOW_INSECURE_HTTP"


class InsecureURLError(FarcallError):
    """A plain-http URL to a host that is not loopback, without the opt-in."""


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and ``localhost``: names and addresses that stay on this machine."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str = "the farcall service",
              environ: Mapping[str, str] | None = None) -> str:
    """``url`` itself, if tokens may be sent to it; else InsecureURLError saying why."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "http":
        return url
    if is_loopback(parts.hostname or ""):
        return url
    env = os.environ if environ is None else environ
    if env.get(ALLOW_INSECURE_HTTP, "").strip().lower() in ("1", "true", "yes"):
        return url
    raise InsecureURLError(
        f"refusing to send credentials to {what} at {url} over plain http: anyone on the "
        f"network path could read them. Use https://, or set {ALLOW_INSECURE_HTTP}=1 if "
        f"this network is trusted (plain http is allowed without it only to loopback "
        f"addresses: 127.0.0.0/8, ::1, localhost)"
    )
