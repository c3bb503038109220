"""Building the plugin manager and choosing plugins by configured name.

The manager is built by :func:`get_plugin_manager`, never at import time, so tests
and embedding applications can build as many independent managers as they like.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import pluggy

from farcall.errors import PluginConflictError, PluginError, UnknownPluginError
from farcall.plugins import hookspecs
from farcall.plugins.kinds import (
    COMMANDS,
    CORE_KINDS,
    LOGIN_MANAGERS,
    RESULT_CACHES,
    SERIALIZATION_STRATEGIES,
    TRANSPORTS,
)
from farcall.plugins.markers import PROJECT_NAME
from farcall.plugins.types import (
    CliCommandType,
    LoginManager,
    LoginManagerType,
    PluginKind,
    ResultCacheType,
    SerializationStrategyType,
    TransportType,
)

log = logging.getLogger(__name__)

#: The core's own plugins, registered in code. Their hooks are ``trylast`` so that an
#: installed plugin providing the same name takes precedence (all but
#: ``FARCALL_TOKEN``'s link of the login chain, which comes before stored logins).
DEFAULT_PLUGINS: tuple[str, ...] = (
    "farcall.serialize.builtin_plugin",
    "farcall.sdk.builtin_plugin",
    "farcall.sdk.environment_plugin",
    "farcall.cli_plugin",
)
CORE_DISTRIBUTION = "farcall"
ENV_DISABLE_AUTOLOAD = "FARCALL_DISABLE_PLUGIN_AUTOLOAD"
ENV_BLOCK_PLUGINS = "FARCALL_BLOCK_PLUGINS"

R = TypeVar("R")


class FarcallPluginManager(pluggy.PluginManager):
    """A pluggy manager with typed, cached selection of each plugin kind."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self._distributions: dict[str, str] = {}
        self._tables: dict[str, dict[str, Any]] = {}
        self._kinds: dict[str, PluginKind[Any]] = {}
        for kind in CORE_KINDS:
            self.add_kind(kind)
        # Every plugin registered from now on adds its hookspecs and kinds first.
        self.hook.farcall_addhooks.call_historic(kwargs={"pluginmanager": self})

    # -- plugin kinds -----------------------------------------------------------------

    def add_kind(self, kind: PluginKind[Any]) -> None:
        """Make ``kind`` selectable by name and listed by ``farcall plugins``."""
        known = self._kinds.get(kind.name)
        if known is not None and known != kind:
            raise PluginConflictError(
                f"two different plugin kinds are named {kind.name!r} "
                f"(hooks {known.hook} and {kind.hook})"
            )
        self._kinds[kind.name] = kind

    def kinds(self) -> list[PluginKind[Any]]:
        """Every kind known to this manager, the core's first."""
        return list(self._kinds.values())

    def kind(self, name: str) -> PluginKind[Any]:
        """The kind called ``name``; its owner must be installed."""
        try:
            return self._kinds[name]
        except KeyError:
            raise UnknownPluginError(
                f"no installed farcall distribution defines the plugin kind {name!r} "
                f"(known: {', '.join(sorted(self._kinds))})"
            ) from None

    def records(self, kind: PluginKind[R]) -> dict[str, R]:
        """Every installed record of ``kind``, by the name it is selected by."""
        return self._table(kind.hook, kind.name, kind.record_type, kind.key)

    def select(self, kind: PluginKind[R], name: str) -> R:
        """The record of ``kind`` called ``name``; an unknown name lists the choices
        and says which distribution provides it, where that is known."""
        table = self.records(kind)
        try:
            return table[name]
        except KeyError:
            choices = ", ".join(repr(n) for n in sorted(table)) or "none"
            dist = kind.known.get(name)
            hint = f" It is provided by {dist}: is {dist} installed?" if dist else ""
            raise UnknownPluginError(
                f"no installed farcall plugin provides the {kind.name} {name!r} "
                f"(installed: {choices}).{hint}"
            ) from None

    # -- registration ---------------------------------------------------------------

    def register(self, plugin: object, name: str | None = None) -> str | None:
        self._tables.clear()
        try:
            return super().register(plugin, name)
        except pluggy.PluginValidationError as exc:
            label = str(name or getattr(plugin, "__name__", None) or repr(plugin))
            raise PluginError(
                f"farcall plugin {label!r} "
                f"({self._distributions.get(label, 'unknown distribution')}) is not valid: {exc}"
            ) from exc

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any:
        self._tables.clear()
        return super().unregister(plugin, name)

    def list_name_plugin(self) -> list[tuple[str, Any]]:
        """Registered plugins only: pluggy also lists blocked names, paired with None."""
        return [(name, plugin) for name, plugin in super().list_name_plugin() if plugin is not None]

    def register_defaults(self) -> None:
        """Register the core's built-in plugins, skipping blocked ones."""
        for module_name in DEFAULT_PLUGINS:
            if self.is_blocked(module_name) or self.has_plugin(module_name):
                continue
            self._distributions[module_name] = CORE_DISTRIBUTION
            self.register(importlib.import_module(module_name), name=module_name)

    def load_farcall_entrypoints(self) -> int:
        """Load every plugin in the ``farcall`` entry-point group.

        Unlike pluggy's ``load_setuptools_entrypoints``, a plugin that fails to
        import is reported with its entry-point name and distribution.
        """
        # Imported here: the metadata machinery is a fifth of `import farcall`'s time,
        # and a Client looks up its plugins when it is made, not when it is imported.
        if sys.version_info >= (3, 12):
            from importlib.metadata import entry_points
        else:  # the backport has the selectable entry_points() API on every Python we support
            from importlib_metadata import entry_points

        count = 0
        for ep in entry_points(group=PROJECT_NAME):
            if self.is_blocked(ep.name):
                continue
            dist = ep.dist.name if ep.dist is not None else "an unknown distribution"
            if self.has_plugin(ep.name):
                if self.distribution_of(ep.name) == dist:
                    continue  # loaded already
                raise PluginConflictError(
                    f"two farcall plugins are named {ep.name!r}: {self.describe(ep.name)} and "
                    f"{ep.name!r} (distribution {dist}). Uninstall one of them, or set "
                    f"{ENV_BLOCK_PLUGINS}={ep.name} to skip both."
                )
            self._distributions[ep.name] = dist
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"farcall plugin {ep.name!r} from distribution {dist} failed to import "
                    f"({ep.value}): {type(exc).__name__}: {exc}. Reinstall or uninstall {dist}, "
                    f"or set {ENV_BLOCK_PLUGINS}={ep.name} to skip it."
                ) from exc
            self.register(plugin, name=ep.name)
            count += 1
        return count

    def check_pending(self) -> None:
        try:
            super().check_pending()
        except pluggy.PluginValidationError as exc:
            name = self.get_name(exc.plugin) or repr(exc.plugin)
            raise PluginError(
                f"farcall plugin {name!r} ({self.distribution_of(name)}) implements a hook "
                f"farcall does not define: {exc}"
            ) from exc

    def distribution_of(self, plugin_name: str) -> str:
        """The distribution that installed a plugin, for error messages."""
        return self._distributions.get(plugin_name, "registered in code")

    def describe(self, plugin_name: str) -> str:
        return f"{plugin_name!r} (distribution {self.distribution_of(plugin_name)})"

    # -- collection -------------------------------------------------------------------

    def _collect(self, hook_name: str) -> Iterable[tuple[str, Any]]:
        """Yield (plugin name, record) in pluggy's call order, attributing each record."""
        hook = getattr(self.hook, hook_name, None)
        if hook is None:  # no plugin implements it, and its owner declared no spec
            return
        for impl in reversed(hook.get_hookimpls()):
            try:
                records = impl.function() or ()
                records = list(records)
            except Exception as exc:
                raise PluginError(
                    f"farcall plugin {self.describe(impl.plugin_name)} failed in {hook_name}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            for record in records:
                yield impl.plugin_name, record

    def _table(
        self, hook_name: str, kind: str, record_type: type[R], key: Callable[[R], str]
    ) -> dict[str, R]:
        """All records of one kind keyed by name, checking types and conflicts once."""
        if hook_name in self._tables:
            return self._tables[hook_name]
        table: dict[str, R] = {}
        owners: dict[str, str] = {}
        for plugin_name, record in self._collect(hook_name):
            if not isinstance(record, record_type):
                raise PluginError(
                    f"farcall plugin {self.describe(plugin_name)} returned {record!r} from "
                    f"{hook_name}; expected {record_type.__name__} records"
                )
            name = key(record)
            if name in table:
                previous = owners[name]
                if self.distribution_of(plugin_name) == CORE_DISTRIBUTION:
                    log.debug("%s %r of the core is overridden by %s", kind, name, previous)
                    continue
                if self.distribution_of(previous) != CORE_DISTRIBUTION:
                    raise PluginConflictError(
                        f"two farcall plugins provide the {kind} {name!r}: "
                        f"{self.describe(previous)} and {self.describe(plugin_name)}. "
                        f"Uninstall one of them, or set {ENV_BLOCK_PLUGINS} to skip one."
                    )
            table[name] = record
            owners[name] = plugin_name
        self._tables[hook_name] = table
        return table

    # -- the core's kinds, typed ------------------------------------------------------

    def serialization_strategies(self) -> dict[str, SerializationStrategyType]:
        """Every installed strategy, keyed by its two-character identifier."""
        return self.records(SERIALIZATION_STRATEGIES)

    def get_serialization_strategy(self, identifier: str) -> SerializationStrategyType:
        return self.select(SERIALIZATION_STRATEGIES, identifier)

    def login_managers(self) -> dict[str, LoginManagerType]:
        """Login managers by name, for ``login_manager="NAME"`` (the chain is
        :meth:`login_manager_for`)."""
        return self.records(LOGIN_MANAGERS)

    def get_login_manager(self, name: str) -> LoginManagerType:
        return self.select(LOGIN_MANAGERS, name)

    def login_manager_for(self, settings: Mapping[str, Any]) -> LoginManager | None:
        """The first manager of the ``farcall_login_manager`` chain that applies."""
        manager: LoginManager | None = self.hook.farcall_login_manager(settings=settings)
        return manager

    def login_manager_chain(self) -> list[str]:
        """Plugin names of the ``farcall_login_manager`` chain, in the order asked."""
        impls = self.hook.farcall_login_manager.get_hookimpls()
        return [impl.plugin_name for impl in reversed(impls)]

    def result_caches(self) -> dict[str, ResultCacheType]:
        return self.records(RESULT_CACHES)

    def get_result_cache(self, name: str) -> ResultCacheType:
        return self.select(RESULT_CACHES, name)

    def transports(self) -> dict[str, TransportType]:
        return self.records(TRANSPORTS)

    def get_transport(self, name: str) -> TransportType:
        return self.select(TRANSPORTS, name)

    def cli_commands(self) -> dict[str, CliCommandType]:
        return self.records(COMMANDS)


def blocked_plugin_names(environ: os._Environ[str] | dict[str, str] = os.environ) -> list[str]:
    raw = environ.get(ENV_BLOCK_PLUGINS, "")
    return [name.strip() for name in raw.split(",") if name.strip()]


def get_plugin_manager(load_entrypoints: bool = True) -> FarcallPluginManager:
    """Build a new, fully loaded and checked plugin manager.

    ``FARCALL_DISABLE_PLUGIN_AUTOLOAD=1`` skips entry points (only the core's
    defaults load); ``FARCALL_BLOCK_PLUGINS=a,b`` skips the named plugins.
    """
    pm = FarcallPluginManager()
    for name in blocked_plugin_names():
        pm.set_blocked(name)
    pm.register_defaults()
    autoload_disabled = os.environ.get(ENV_DISABLE_AUTOLOAD, "").strip().lower() in {
        "1",
        "true",
        "yes",
    }
    if load_entrypoints and not autoload_disabled:
        pm.load_farcall_entrypoints()
    pm.check_pending()
    return pm
