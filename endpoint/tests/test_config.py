"""The config file: documented template, round trip, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from farcall_endpoint.config import ConfigError, configured_names, load_config
from farcall_endpoint.configure import configure_endpoint, ensure_endpoint_id, read_endpoint_id
from farcall_endpoint.tasks import task_timeout


def test_round_trip_and_stable_id(tmp_path: Path) -> None:
    config = configure_endpoint(
        "alpha", home=tmp_path, engine={"type": "parsl", "provider": {"type": "LocalProvider"}},
        allowed_functions=["f1"], task_timeout=5, login={"client_id": "x"},
        container_commands={"docker": "docker run -i {location} {worker}"},
        link="courier", transport="plain-http",
    )
    assert load_config("alpha", tmp_path) == config
    assert (config.link, config.transport) == ("courier", "plain-http")
    defaults = configure_endpoint("plain", home=tmp_path / "other")
    assert (load_config("plain", tmp_path / "other").link, defaults.transport) == (
        "farcall", "http")
    text = config.config_path.read_text()
    assert "docs/endpoint.md" in text and "[engine]" in text
    first = ensure_endpoint_id(config)
    assert ensure_endpoint_id(load_config("alpha", tmp_path)) == first
    assert read_endpoint_id(config.directory) == first
    assert configured_names(tmp_path) == ["alpha"]
    assert config.container_commands["podman"].startswith("podman run")


def test_adopting_an_id(tmp_path: Path) -> None:
    wanted = "0b9f5a43-2c43-4f35-9d1e-2a3ac6f7c2a1"
    config = configure_endpoint("beta", home=tmp_path, endpoint_id=wanted.upper())
    assert ensure_endpoint_id(config) == wanted
    with pytest.raises(ConfigError, match="not a UUID"):
        configure_endpoint("gamma", home=tmp_path, endpoint_id="nope")


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown key.*hartbeat"):
        configure_endpoint("a", home=tmp_path, hartbeat=3)
    with pytest.raises(ConfigError, match="link must name a plugin"):
        configure_endpoint("a", home=tmp_path, link="")
    with pytest.raises(ConfigError, match="endpoint name"):
        configure_endpoint("a/b", home=tmp_path)
    with pytest.raises(ConfigError, match="farcall endpoint configure nobody"):
        load_config("nobody", tmp_path)
    bad = tmp_path / "endpoints" / "broken"
    bad.mkdir(parents=True)
    (bad / "config.toml").write_text("engine = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config("broken", tmp_path)
    with pytest.raises(ConfigError, match="max_batch"):
        configure_endpoint("big", home=tmp_path, max_batch=5000)


def test_task_timeout_sources() -> None:
    assert task_timeout(None, 0) is None
    assert task_timeout(None, 7) == 7
    assert task_timeout({"timeout": 2}, 7) == 2
    assert task_timeout({"timeout": "x"}, 0) is None
