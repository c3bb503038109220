"""The plugin kinds the core owns. Other distributions define their own the same way."""

from __future__ import annotations

from typing import Any

from farcall.plugins.types import (
    CliCommandType,
    LoginManagerType,
    PluginKind,
    ResultCacheType,
    SerializationStrategyType,
    TransportType,
)

SERIALIZATION_STRATEGIES = PluginKind(
    "serialization strategy",
    "serialization strategies",
    "farcall_serialization_strategies",
    SerializationStrategyType,
    key=lambda record: record.identifier,
    known={
        **dict.fromkeys(("00", "01", "02", "03", "04", "10", "sd"), "farcall-serializer-dill"),
        "st": "farcall-serializer-source",
        "c0": "farcall-serializer-cloudpickle",
        "c1": "farcall-serializer-cloudpickle",
        "mp": "farcall-serializer-msgpack",
    },
)
LOGIN_MANAGERS = PluginKind(
    "login manager",
    "login managers",
    "farcall_login_managers",
    LoginManagerType,
    known={"native": "farcall-auth-native", "client-credentials": "farcall-auth-client-creds"},
)
RESULT_CACHES = PluginKind(
    "result cache", "result caches", "farcall_result_caches", ResultCacheType,
    known={"sqlite": "farcall-cache-sqlite"},
)
TRANSPORTS = PluginKind("transport", "transports", "farcall_transports", TransportType)
COMMANDS = PluginKind(
    "command", "commands", "farcall_cli_commands", CliCommandType,
    known={"server": "farcall-service", "endpoint": "farcall-endpoint", "dev": "farcall-dev"},
)

#: In the order ``farcall plugins`` lists them.
CORE_KINDS: tuple[PluginKind[Any], ...] = (
    SERIALIZATION_STRATEGIES, LOGIN_MANAGERS, RESULT_CACHES, TRANSPORTS, COMMANDS,
)
