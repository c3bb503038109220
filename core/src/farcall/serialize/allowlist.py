"""Strategy lists as people and the official SDK write them, and which strategies run no code.

The endpoint's ``allowed_serializers``, a submission's ``result_serializers`` and the
Client's ``allowed_deserializer_types`` name strategies by identifier (``"11"``), by
name (``"JSONData"``) or by the official import path
(``"globus_compute_sdk.serialize.JSONData"``), and may use the official wildcards
``globus_compute_sdk.*Code`` and ``globus_compute_sdk.*Data``.
"""

from __future__ import annotations

from collections.abc import Iterable

from farcall.serialize.registry import StrategyRegistry

#: The official SDK's data strategies. Its endpoint takes ``result_serializers`` only as
#: import paths, skipping those it cannot import, so a list meant for any endpoint
#: spells these as import paths and farcall's own (``mp``) as identifiers.
OFFICIAL_DATA_STRATEGIES = {"00": "DillDataBase64", "11": "JSONData", "13": "AllDataStrategies"}


def strategy_spec(spec: str) -> str:
    """An identifier or strategy name from any spelling the official SDK uses.

    ``"globus_compute_sdk.serialize.concretes.DillDataBase64"`` and ``"DillDataBase64"``
    both name strategy ``00``; identifiers pass through.
    """
    spec = str(spec).strip()
    return spec.rsplit(".", 1)[-1] if "." in spec and len(spec) != 2 else spec


def official_spelling(identifier: str) -> str:
    """``"11"`` as ``"globus_compute_sdk.serialize.JSONData"``; identifiers the official
    SDK does not have pass through (the official endpoint skips them)."""
    name = OFFICIAL_DATA_STRATEGIES.get(identifier)
    return identifier if name is None else f"globus_compute_sdk.serialize.{name}"


def expand_allowlist(specs: Iterable[str], registry: StrategyRegistry) -> list[str]:
    """Identifiers and names, with the official ``*Code``/``*Data`` wildcards expanded."""
    out: list[str] = []
    for spec in specs:
        text = str(spec)
        if text.endswith("*Code") or text.endswith("*Data"):
            out.extend(registry.identifiers(for_code=text.endswith("*Code")))
        else:
            out.append(strategy_spec(text))
    return out


def data_only_identifiers(registry: StrategyRegistry) -> list[str]:
    """Installed strategies whose reading builds plain data and can run no code."""
    return [ident for ident, record in registry.types.items() if record.data_only]
