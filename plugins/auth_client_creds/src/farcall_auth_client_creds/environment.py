"""Reading client credentials from the environment, by the guide's rules.

``GLOBUS_COMPUTE_CLIENT_ID``/``_SECRET`` win over the older
``FUNCX_SDK_CLIENT_ID``/``_SECRET``. Half a pair is an error rather than a silent
fallback to other credentials: a service account that quietly ran as someone else
would be worse than one that does not start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from farcall.errors import FarcallError

PAIRS = (
    ("GLOBUS_COMPUTE_CLIENT_ID", "GLOBUS_COMPUTE_CLIENT_SECRET"),
    ("FUNCX_SDK_CLIENT_ID", "FUNCX_SDK_CLIENT_SECRET"),
)


class ClientCredentialsError(FarcallError):
    """Client credentials are set but cannot be used."""


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    secret: str = field(repr=False)
    #: The variable the id came from, for messages.
    source: str = ""


def credentials_from_env(environ: Mapping[str, str] | None = None) -> ClientCredentials | None:
    env = os.environ if environ is None else environ
    for id_var, secret_var in PAIRS:
        client_id = env.get(id_var, "").strip()
        secret = env.get(secret_var, "").strip()
        if client_id and secret:
            return ClientCredentials(client_id, secret, id_var)
        if client_id or secret:
            present, missing = (id_var, secret_var) if client_id else (secret_var, id_var)
            raise ClientCredentialsError(
                f"{present} is set but {missing} is not: set both to log in with client "
                f"credentials, or unset {present}"
            )
    return None
