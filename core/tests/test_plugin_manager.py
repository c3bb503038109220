"""The plugin manager: entry-point loading, selection by name, and its error messages.

Third-party plugins are installed the way pip would leave them, as a ``*.dist-info``
directory with an ``entry_points.txt`` in the ``farcall`` group, written next to a
small plugin module in a temporary directory that is put on ``sys.path``.
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import farcall
import pytest
from click.testing import CliRunner
from farcall.cli import cli, main
from farcall.errors import (
    DeserializationError,
    PluginConflictError,
    PluginError,
    UnknownPluginError,
)
from farcall.plugins import (
    PROJECT_NAME,
    FarcallPluginManager,
    SerializationStrategyType,
    get_plugin_manager,
    hookimpl,
)
from farcall.plugins.manager import DEFAULT_PLUGINS, ENV_BLOCK_PLUGINS, ENV_DISABLE_AUTOLOAD
from farcall.serialize import SerializationStrategy, Serializer
from farcall.serialize.json_data import JSONData
from farcall.serialize.registry import StrategyRegistry

# The strategies the core provides by itself, with no plugin installed.
CORE_STRATEGIES = {"11", "12", "13"}

# A third-party data strategy: JSON written backwards, so a round trip proves it was used.
REVERSED_JSON = """
    import json

    from farcall.plugins import hookimpl
    from farcall.plugins.types import SerializationStrategyType
    from farcall.serialize.base import SerializationStrategy


    class ReversedJSON(SerializationStrategy):
        identifier = "{ident}"
        for_code = False

        def dumps(self, obj):
            return json.dumps(obj)[::-1]

        def loads(self, body):
            return json.loads(body[::-1])


    @hookimpl
    def farcall_serialization_strategies():
        return [
            SerializationStrategyType(
                "{ident}", "{name}", False, lambda _registry: ReversedJSON()
            )
        ]
"""

InstallPlugin = Callable[..., Path]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set the plugin variables they need; none leak in from the caller's shell."""
    monkeypatch.delenv(ENV_BLOCK_PLUGINS, raising=False)
    monkeypatch.delenv(ENV_DISABLE_AUTOLOAD, raising=False)


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InstallPlugin]:
    """Install a fake distribution: ``install_plugin(dist, {ep_name: module}, {module: src})``.

    Each distribution gets its own directory on ``sys.path``, so the metadata caches
    of importlib never see a directory change after it was first read.
    """
    modules: list[str] = []

    def install(dist: str, entry_points: dict[str, str], sources: dict[str, str]) -> Path:
        site = tmp_path / f"site-{dist}"
        info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n", encoding="utf-8"
        )
        lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
        (info / "entry_points.txt").write_text(f"[{PROJECT_NAME}]\n{lines}", encoding="utf-8")
        for module, source in sources.items():
            (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
            modules.append(module)
        monkeypatch.syspath_prepend(str(site))
        importlib.invalidate_caches()
        return site

    yield install
    for module in modules:
        sys.modules.pop(module, None)


def reversed_json_plugin(
    install_plugin: InstallPlugin,
    dist: str = "farcall-reversed-json",
    ep_name: str = "reversed_json",
    ident: str = "t1",
    name: str = "ReversedJSON",
) -> None:
    module = f"{ep_name}_plugin"
    install_plugin(
        dist, {ep_name: module}, {module: REVERSED_JSON.format(ident=ident, name=name)}
    )


# -- discovery -------------------------------------------------------------------------


def test_third_party_plugin_is_discovered_and_selectable(install_plugin: InstallPlugin) -> None:
    reversed_json_plugin(install_plugin)
    pm = get_plugin_manager()

    assert pm.has_plugin("reversed_json")
    assert pm.distribution_of("reversed_json") == "farcall-reversed-json"
    record = pm.get_serialization_strategy("t1")
    assert record.name == "ReversedJSON"

    registry = StrategyRegistry(pm)
    for spec in ("t1", "ReversedJSON"):
        serializer = Serializer(data_strategy=spec, registry=registry)
        wire = serializer.serialize({"a": [1, 2]})
        assert wire == "t1\n" + '{"a": [1, 2]}'[::-1]
        assert serializer.deserialize(wire) == {"a": [1, 2]}


def test_without_entrypoints_only_the_core_defaults_load(install_plugin: InstallPlugin) -> None:
    reversed_json_plugin(install_plugin)
    pm = get_plugin_manager(load_entrypoints=False)

    names = {name for name, _plugin in pm.list_name_plugin()}
    assert names == set(DEFAULT_PLUGINS)
    assert {pm.distribution_of(name) for name in names} == {"farcall"}
    assert set(pm.serialization_strategies()) == CORE_STRATEGIES
    assert set(pm.cli_commands()) == {"plugins"}


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_autoload_can_be_disabled_by_environment(
    install_plugin: InstallPlugin, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    reversed_json_plugin(install_plugin)
    assert "t1" in get_plugin_manager().serialization_strategies()

    monkeypatch.setenv(ENV_DISABLE_AUTOLOAD, value)
    pm = get_plugin_manager()
    assert not pm.has_plugin("reversed_json")
    assert set(pm.serialization_strategies()) == CORE_STRATEGIES


def test_named_plugins_can_be_blocked(
    install_plugin: InstallPlugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    reversed_json_plugin(install_plugin, dist="farcall-one", ep_name="one", ident="t1")
    reversed_json_plugin(install_plugin, dist="farcall-two", ep_name="two", ident="t2")
    reversed_json_plugin(install_plugin, dist="farcall-three", ep_name="three", ident="t3")

    monkeypatch.setenv(ENV_BLOCK_PLUGINS, "one, three")
    pm = get_plugin_manager()
    assert pm.is_blocked("one") and pm.is_blocked("three")
    assert pm.has_plugin("two")
    strategies = pm.serialization_strategies()
    assert "t2" in strategies
    assert "t1" not in strategies and "t3" not in strategies
    listed = {name for name, _plugin in pm.list_name_plugin()}
    assert "two" in listed and not listed & {"one", "three"}


def test_a_core_default_can_be_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_BLOCK_PLUGINS, "farcall.serialize.builtin_plugin")
    pm = get_plugin_manager(load_entrypoints=False)
    assert pm.serialization_strategies() == {}
    assert set(pm.cli_commands()) == {"plugins"}


# -- conflicts and overrides ------------------------------------------------------------


def test_two_plugins_with_the_same_strategy_conflict(install_plugin: InstallPlugin) -> None:
    reversed_json_plugin(install_plugin, dist="farcall-first", ep_name="first", ident="t1")
    reversed_json_plugin(install_plugin, dist="farcall-second", ep_name="second", ident="t1")
    pm = get_plugin_manager()

    with pytest.raises(PluginConflictError) as excinfo:
        pm.serialization_strategies()
    message = str(excinfo.value)
    assert "'t1'" in message
    assert "farcall-first" in message and "farcall-second" in message
    assert ENV_BLOCK_PLUGINS in message


def test_two_distributions_with_the_same_plugin_name_conflict(
    install_plugin: InstallPlugin,
) -> None:
    reversed_json_plugin(install_plugin, dist="farcall-first", ep_name="same", ident="t1")
    second = REVERSED_JSON.format(ident="t2", name="Second")
    install_plugin("farcall-second", {"same": "same_two"}, {"same_two": second})

    with pytest.raises(PluginConflictError) as excinfo:
        get_plugin_manager()
    message = str(excinfo.value)
    assert "'same'" in message
    assert "farcall-first" in message and "farcall-second" in message


def test_blocking_one_side_resolves_a_conflict(
    install_plugin: InstallPlugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    reversed_json_plugin(install_plugin, dist="farcall-first", ep_name="first", ident="t1")
    reversed_json_plugin(install_plugin, dist="farcall-second", ep_name="second", ident="t1")
    monkeypatch.setenv(ENV_BLOCK_PLUGINS, "first")
    assert get_plugin_manager().get_serialization_strategy("t1").name == "ReversedJSON"


def test_an_installed_plugin_overrides_a_core_default(install_plugin: InstallPlugin) -> None:
    reversed_json_plugin(install_plugin, ident="11", name="BackwardsJSON")
    pm = get_plugin_manager()

    assert pm.get_serialization_strategy("11").name == "BackwardsJSON"
    wire = Serializer(data_strategy="11", registry=StrategyRegistry(pm)).serialize([1, "x"])
    assert wire == "11\n" + '[1, "x"]'[::-1]
    # The core's record is still what a manager without the plugin uses.
    core = get_plugin_manager(load_entrypoints=False)
    assert core.get_serialization_strategy("11").name == "JSONData"


# -- unknown names ------------------------------------------------------------------------


def test_unknown_strategy_lists_the_installed_choices() -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    with pytest.raises(UnknownPluginError) as excinfo:
        pm.get_serialization_strategy("zz")
    message = str(excinfo.value)
    assert "'zz'" in message
    assert "installed: '11', '12', '13'" in message
    assert "provided by" not in message
    assert isinstance(excinfo.value, LookupError)


def test_unknown_first_party_strategy_names_its_distribution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_BLOCK_PLUGINS, "serializer_dill")
    pm = get_plugin_manager()
    with pytest.raises(UnknownPluginError) as excinfo:
        pm.get_serialization_strategy("00")
    message = str(excinfo.value)
    assert "'00'" in message
    assert "farcall-serializer-dill" in message
    for ident in pm.serialization_strategies():
        assert repr(ident) in message


def test_unknown_names_of_other_kinds() -> None:
    pm = get_plugin_manager(load_entrypoints=False)
    with pytest.raises(UnknownPluginError, match="farcall-cache-sqlite"):
        pm.get_result_cache("sqlite")
    with pytest.raises(UnknownPluginError, match=r"transport 'grpc' \(installed: 'http'\)"):
        pm.get_transport("grpc")
    with pytest.raises(UnknownPluginError, match="farcall-auth-native"):
        pm.get_login_manager("native")


# -- broken plugins -----------------------------------------------------------------------


def test_plugin_that_fails_to_import_is_named(install_plugin: InstallPlugin) -> None:
    install_plugin(
        "farcall-broken",
        {"broken": "broken_plugin"},
        {"broken_plugin": "raise RuntimeError('the plugin is broken on purpose')\n"},
    )
    with pytest.raises(PluginError) as excinfo:
        get_plugin_manager()
    message = str(excinfo.value)
    assert "'broken'" in message
    assert "farcall-broken" in message
    assert "the plugin is broken on purpose" in message
    assert f"{ENV_BLOCK_PLUGINS}=broken" in message
    assert isinstance(excinfo.value.__cause__, RuntimeError)


def test_blocking_a_plugin_that_fails_to_import_skips_it(
    install_plugin: InstallPlugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(
        "farcall-broken", {"broken": "broken_plugin"}, {"broken_plugin": "raise ImportError('x')\n"}
    )
    monkeypatch.setenv(ENV_BLOCK_PLUGINS, "broken")
    pm = get_plugin_manager()
    assert pm.is_blocked("broken")
    assert "broken_plugin" not in sys.modules


def test_misspelt_hook_is_reported_by_check_pending(install_plugin: InstallPlugin) -> None:
    install_plugin(
        "farcall-misspelt",
        {"misspelt": "misspelt_plugin"},
        {
            "misspelt_plugin": """
                from farcall.plugins import hookimpl

                @hookimpl
                def farcall_serialisation_strategies():
                    return []
            """
        },
    )
    with pytest.raises(PluginError) as excinfo:
        get_plugin_manager()
    message = str(excinfo.value)
    assert "farcall_serialisation_strategies" in message
    assert "'misspelt'" in message and "farcall-misspelt" in message


def test_hookimpl_with_arguments_the_spec_lacks_is_named(install_plugin: InstallPlugin) -> None:
    install_plugin(
        "farcall-bad-args",
        {"bad_args": "bad_args_plugin"},
        {
            "bad_args_plugin": """
                from farcall.plugins import hookimpl

                @hookimpl
                def farcall_serialization_strategies(config):
                    return []
            """
        },
    )
    with pytest.raises(PluginError) as excinfo:
        get_plugin_manager()
    message = str(excinfo.value)
    assert "'bad_args'" in message and "farcall-bad-args" in message
    assert "config" in message


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        ("[{'identifier': 't1'}]", "expected SerializationStrategyType records"),
        ("['t1']", "expected SerializationStrategyType records"),
        ("42", "TypeError"),
    ],
)
def test_hook_returning_the_wrong_records_is_an_error(
    install_plugin: InstallPlugin, returned: str, expected: str
) -> None:
    install_plugin(
        "farcall-wrong-type",
        {"wrong_type": "wrong_type_plugin"},
        {
            "wrong_type_plugin": f"""
                from farcall.plugins import hookimpl

                @hookimpl
                def farcall_serialization_strategies():
                    return {returned}
            """
        },
    )
    pm = get_plugin_manager()
    with pytest.raises(PluginError) as excinfo:
        pm.serialization_strategies()
    message = str(excinfo.value)
    assert "'wrong_type'" in message and "farcall-wrong-type" in message
    assert expected in message


def test_hook_that_raises_is_named(install_plugin: InstallPlugin) -> None:
    install_plugin(
        "farcall-raising",
        {"raising": "raising_plugin"},
        {
            "raising_plugin": """
                from farcall.plugins import hookimpl

                @hookimpl
                def farcall_serialization_strategies():
                    raise KeyError("lost")
            """
        },
    )
    with pytest.raises(PluginError, match=r"'raising' \(distribution farcall-raising\) failed"):
        get_plugin_manager().serialization_strategies()


def test_invalid_strategy_identifiers_are_refused() -> None:
    for ident in ("x", "xyz", "a:", "é1", "a\n"):
        with pytest.raises(ValueError, match="two printable ASCII"):
            SerializationStrategyType(ident, "Bad", False, lambda _r: JSONData())


# -- independence -------------------------------------------------------------------------


class _InCodePlugin:
    """A plugin registered in code, as an embedding application would."""

    @staticmethod
    @hookimpl
    def farcall_serialization_strategies() -> list[SerializationStrategyType]:
        return [SerializationStrategyType("t9", "InCode", False, lambda _r: JSONData())]


def test_each_manager_is_independent(install_plugin: InstallPlugin) -> None:
    before = get_plugin_manager()
    reversed_json_plugin(install_plugin)
    after = get_plugin_manager()

    assert before is not after
    assert "t1" not in before.serialization_strategies()
    assert "t1" in after.serialization_strategies()

    after.register(_InCodePlugin, name="in_code")
    assert "t9" in after.serialization_strategies()
    assert "t9" not in before.serialization_strategies()
    assert "t9" not in get_plugin_manager().serialization_strategies()
    assert after.distribution_of("in_code") == "registered in code"

    after.unregister(name="in_code")
    assert "t9" not in after.serialization_strategies()


def test_no_module_holds_a_plugin_manager() -> None:
    """Nor a strategy registry (which holds one), except the default that a bare
    ``Serializer()`` builds on first use; see the next test for who may use it."""
    get_plugin_manager()
    for name, module in list(sys.modules.items()):
        if name == "farcall" or name.startswith(("farcall.", "farcall_")):
            held = [k for k, v in vars(module).items()
                    if isinstance(v, (FarcallPluginManager, StrategyRegistry))]
            assert not held, f"{name} holds a plugin manager in {held}"


class _BackwardsJSON(SerializationStrategy):
    identifier = "11"
    for_code = False

    def dumps(self, obj: object) -> str:
        return json.dumps(obj)[::-1]

    def loads(self, body: str) -> object:
        return json.loads(body[::-1])


class _BackwardsJSONPlugin:
    """Registered in code: its ``11`` (over the core's) writes JSON backwards, and its
    ``t8`` is known to this manager alone."""

    @staticmethod
    @hookimpl
    def farcall_serialization_strategies() -> list[SerializationStrategyType]:
        return [SerializationStrategyType(ident, "BackwardsJSON", False,
                                          lambda _r: _BackwardsJSON())
                for ident in ("11", "t8")]


def test_a_client_serializes_through_its_own_plugin_manager() -> None:
    from farcall.sdk.client import Client
    from farcall.serialize import unpack_buffers
    from farcall.serialize.registry import default_registry

    default_registry.cache_clear()
    pm = get_plugin_manager(load_entrypoints=False)  # no dill: data goes as "11"
    pm.register(_BackwardsJSONPlugin, name="backwards_json")
    client = Client("http://127.0.0.1:9", token="fc_unused", plugin_manager=pm,
                    trusted_endpoints="*")  # reads t8, a strategy no endpoint is trusted with

    batch = client.create_batch()
    batch.add([1, 2], endpoint_id=str(uuid.uuid4()), function_id=str(uuid.uuid4()))
    args, _kwargs = unpack_buffers(batch.tasks[0][2])
    assert args == "11\n" + "[[1, 2]]"[::-1]
    pushed = {"status": "success", "result": "t8\n" + '{"a": 1}'[::-1]}
    assert client.result_entry(pushed)["result"] == {"a": 1}
    assert default_registry.cache_info().currsize == 0, "the Client used the global default"

    # The process-wide default (a bare Serializer()) knows neither.
    with pytest.raises(DeserializationError):
        Serializer().deserialize(args)
    with pytest.raises(DeserializationError, match="t8"):
        Serializer().deserialize(pushed["result"])


def test_importing_farcall_builds_no_manager() -> None:
    assert set(vars(farcall)) >= {"__version__"}
    assert not any(isinstance(v, FarcallPluginManager) for v in vars(farcall).values())


# -- the farcall command --------------------------------------------------------------------


def test_plugins_command_lists_plugins_and_strategies(install_plugin: InstallPlugin) -> None:
    reversed_json_plugin(install_plugin)
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    assert "reversed_json  (farcall-reversed-json)" in result.output
    assert "farcall.serialize.builtin_plugin  (farcall)" in result.output
    assert "  t1  ReversedJSON" in result.output


def test_plugins_command_json(install_plugin: InstallPlugin) -> None:
    reversed_json_plugin(install_plugin)
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"name": "reversed_json", "distribution": "farcall-reversed-json"} in data["plugins"]
    assert {"name": "farcall.cli_plugin", "distribution": "farcall"} in data["plugins"]
    assert "t1" in data["serialization strategies"]
    assert set(data["serialization strategies"]) >= CORE_STRATEGIES
    assert data["commands"] == sorted(data["commands"])
    assert "plugins" in data["commands"]


def test_plugins_command_leaves_out_blocked_plugins(
    install_plugin: InstallPlugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    reversed_json_plugin(install_plugin)
    monkeypatch.setenv(ENV_BLOCK_PLUGINS, "reversed_json")
    data = json.loads(CliRunner().invoke(cli, ["plugins", "--json"]).output)
    assert "reversed_json" not in {entry["name"] for entry in data["plugins"]}
    assert "t1" not in data["serialization strategies"]


def test_plugin_contributes_a_command(install_plugin: InstallPlugin) -> None:
    runner = CliRunner()
    assert "hello" not in runner.invoke(cli, ["--help"]).output

    install_plugin(
        "farcall-hello",
        {"hello": "hello_plugin"},
        {
            "hello_plugin": """
                import click

                from farcall.plugins import hookimpl
                from farcall.plugins.types import CliCommandType


                @click.command("hello")
                @click.argument("who")
                def hello(who):
                    \"\"\"Say hello from a plugin.\"\"\"
                    click.echo(f"hello, {who}, from a plugin")


                @hookimpl
                def farcall_cli_commands():
                    return [CliCommandType("hello", hello, "say hello")]
            """
        },
    )
    # The same ``cli`` object sees the newly installed plugin: commands are per invocation.
    help_result = runner.invoke(cli, ["--help"])
    assert help_result.exit_code == 0, help_result.output
    assert "hello" in help_result.output and "Say hello from a plugin." in help_result.output
    result = runner.invoke(cli, ["hello", "world"])
    assert result.exit_code == 0, result.output
    assert result.output == "hello, world, from a plugin\n"
    assert "hello" in json.loads(runner.invoke(cli, ["plugins", "--json"]).output)["commands"]


def test_command_reports_a_broken_plugin(
    install_plugin: InstallPlugin,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    install_plugin(
        "farcall-broken", {"broken": "broken_plugin"}, {"broken_plugin": "import no_such_mod\n"}
    )
    monkeypatch.setattr(sys, "argv", ["farcall", "plugins"])
    with pytest.raises(SystemExit) as excinfo:
        main()
    assert excinfo.value.code != 0
    err = capsys.readouterr().err
    assert err.startswith("Error: farcall plugin 'broken' from distribution farcall-broken")
    assert "no_such_mod" in err


# -- plugin kinds other distributions own ----------------------------------------------------

# A distribution that owns a kind of its own ("gadgets"), as farcall-endpoint owns engines:
# its hookspecs module, its PluginKind, and two gadgets of its own.
GADGET_HOOKSPECS = """
    from farcall.plugins import hookspec


    @hookspec
    def farcall_gadgets():
        \"\"\"Declare gadgets, selected by name.\"\"\"
"""
GADGET_KIND = """
    from dataclasses import dataclass

    from farcall.plugins import PluginKind


    @dataclass(frozen=True)
    class GadgetType:
        name: str
        size: int


    GADGETS = PluginKind("{kind}", "{kind}s", "{hook}", GadgetType,
                         known={{"spring": "farcall-gadgets-extra"}})
"""
GADGET_PLUGIN = """
    from farcall.plugins import hookimpl

    from {prefix}_kind import GADGETS, GadgetType


    @hookimpl
    def farcall_addhooks(pluginmanager):
        import {prefix}_hookspecs

        pluginmanager.add_hookspecs({prefix}_hookspecs)
        pluginmanager.add_kind(GADGETS)


    @hookimpl
    def {hook}():
        return [GadgetType("lever", 2), GadgetType("wheel", 5)]
"""


def gadgets_plugin(install_plugin: InstallPlugin, prefix: str = "gadgets",
                   hook: str = "farcall_gadgets", kind: str = "gadget") -> None:
    install_plugin(f"farcall-{prefix}", {prefix: f"{prefix}_plugin"}, {
        f"{prefix}_hookspecs": GADGET_HOOKSPECS.replace("farcall_gadgets", hook),
        f"{prefix}_kind": GADGET_KIND.format(kind=kind, hook=hook),
        f"{prefix}_plugin": GADGET_PLUGIN.format(prefix=prefix, hook=hook),
    })


def test_a_distribution_adds_a_plugin_kind_with_its_hookspecs(
    install_plugin: InstallPlugin,
) -> None:
    gadgets_plugin(install_plugin)
    pm = get_plugin_manager()
    kind = pm.kind("gadget")
    assert kind in pm.kinds() and pm.kinds().index(kind) >= 5  # after the core's
    assert {name: record.size for name, record in pm.records(kind).items()} == {
        "lever": 2, "wheel": 5}
    assert pm.select(kind, "wheel").size == 5
    with pytest.raises(UnknownPluginError) as unknown:
        pm.select(kind, "spring")
    message = str(unknown.value)
    assert "gadget 'spring'" in message and "'lever', 'wheel'" in message
    assert "is farcall-gadgets-extra installed?" in message
    with pytest.raises(UnknownPluginError, match="plugin kind 'doodad'"):
        pm.kind("doodad")


def test_without_its_owner_a_kind_is_unknown(install_plugin: InstallPlugin) -> None:
    gadgets_plugin(install_plugin)
    pm = get_plugin_manager(load_entrypoints=False)
    with pytest.raises(UnknownPluginError, match="no installed farcall distribution"):
        pm.kind("gadget")


def test_plugins_command_lists_an_added_kind(install_plugin: InstallPlugin) -> None:
    gadgets_plugin(install_plugin)
    runner = CliRunner()
    result = runner.invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    listed = result.output.split("Gadgets:\n", 1)[1].splitlines()
    assert listed[:2] == ["  lever", "  wheel"]
    data = json.loads(runner.invoke(cli, ["plugins", "--json"]).output)
    assert data["gadgets"] == ["lever", "wheel"]
    assert {"name": "gadgets", "distribution": "farcall-gadgets"} in data["plugins"]


def test_two_different_kinds_with_one_name_conflict(install_plugin: InstallPlugin) -> None:
    gadgets_plugin(install_plugin)
    gadgets_plugin(install_plugin, prefix="widgets", hook="farcall_widgets")
    with pytest.raises(PluginConflictError, match="two different plugin kinds are named 'gadget'"):
        get_plugin_manager()
