"""Endpoint links: how an endpoint reaches its service (see :mod:`.interface`)."""

from farcall_endpoint.links.interface import (
    CredentialsRefused,
    EndpointRefused,
    Link,
    LinkContext,
    Receipt,
    Registration,
    ReportTooLarge,
)

__all__ = ["CredentialsRefused", "EndpointRefused", "Link", "LinkContext", "Receipt",
           "Registration", "ReportTooLarge"]
