"""The service as an OAuth2 provider, shaped like Globus Auth.

globus-sdk's ``NativeAppAuthClient`` and ``ConfidentialAppAuthClient`` need only a base
URL, so pointing them (or ``GLOBUS_SDK_SERVICE_URL_AUTH``) at ``<service>/auth/`` makes
farcall's own login plugins and the official SDK log in here. Modules: ``passwords``
(scrypt), ``codes`` (authorization codes and PKCE), ``scopes``, ``tokens`` (issuing and
checking), ``clients`` (who is asking), ``pages`` (the login form), ``routes``, and
``device`` with ``device_routes`` (the device authorization grant, RFC 8628).
"""

from __future__ import annotations

#: Where the provider's routes live, so that the auth base URL is ``<service>/auth/``.
PREFIX = "/auth"

#: The public native-app client of farcall's own CLI; it exists on every service.
NATIVE_CLIENT_ID = "b3eb108b-24b6-586c-a337-dd3bebd706f3"

#: Principals of confidential clients are named like Globus Auth's client identities.
CLIENT_PRINCIPAL_DOMAIN = "clients.farcall"
