"""Which first-party distribution provides a name, so errors can say what to install."""

from __future__ import annotations

#: (kind, name) -> distribution. Kinds match FarcallPluginManager's selection methods.
KNOWN_PROVIDERS: dict[tuple[str, str], str] = {
    **{
        ("serialization strategy", ident): "farcall-serializer-dill"
        for ident in ("00", "01", "02", "03", "04", "10", "sd")
    },
    ("serialization strategy", "st"): "farcall-serializer-source",
    ("serialization strategy", "c0"): "farcall-serializer-cloudpickle",
    ("serialization strategy", "c1"): "farcall-serializer-cloudpickle",
    ("login manager", "native"): "farcall-auth-native",
    ("login manager", "client-credentials"): "farcall-auth-client-creds",
    ("result cache", "sqlite"): "farcall-cache-sqlite",
    ("engine", "process"): "farcall-endpoint",
    ("engine", "thread"): "farcall-endpoint",
    ("engine", "parsl"): "farcall-engine-parsl",
    ("engine", "dask"): "farcall-engine-dask",
    ("command", "server"): "farcall-service",
    ("command", "endpoint"): "farcall-endpoint",
}


def provider_hint(kind: str, name: str) -> str:
    """A sentence naming the distribution to install, or nothing when unknown."""
    dist = KNOWN_PROVIDERS.get((kind, name))
    return f" It is provided by {dist}: is {dist} installed?" if dist else ""
