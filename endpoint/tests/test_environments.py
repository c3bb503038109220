"""Execution environments: a real second venv, the container command template, and
real container runtimes where one is usable."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from farcall.serialize import Serializer

REPO = Path(__file__).resolve().parents[2]


def where_am_i():
    import os
    import sys

    return {"prefix": sys.prefix, "executable": sys.executable,
            "image": os.environ.get("FARCALL_FAKE_IMAGE")}


#: Functions travel as source text: the venv has no pytest to import this module from.
AS_SOURCE = Serializer(code_strategy="sd")


def add_container(api, kind: str, location: str) -> str:
    body = {"name": f"{kind}-env", "type": kind, "location": location}
    return api.call("POST", "/farcall/v1/containers", json=body)["container_id"]


@pytest.fixture(scope="module")
def second_venv(tmp_path_factory) -> Path:
    """A fresh venv with the local core, dill plugin and endpoint installed by pip."""
    root = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=120)
    python = root / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         str(REPO / "core"), str(REPO / "plugins" / "serializer_dill"), str(REPO / "endpoint")],
        capture_output=True, text=True, timeout=600,
    )
    if done.returncode != 0:
        pytest.fail(f"installing into the test venv failed:\n{done.stderr[-3000:]}")
    return python


def test_venv_environment(api, make_endpoint, second_venv: Path) -> None:
    fn_plain = api.register_function(where_am_i)
    container = add_container(api, "venv", str(second_venv))
    fn_venv = api.register_function(where_am_i, AS_SOURCE, container_uuid=container)
    endpoint = make_endpoint("venvy", engine={"type": "process", "workers": 1})
    endpoint.start()
    t_plain, t_venv = (api.submit(endpoint.endpoint_id, f, [()])[0] for f in (fn_plain, fn_venv))
    docs = api.wait([t_plain, t_venv])
    venv_root = str(second_venv.parent.parent)
    assert api.result(docs[t_venv])["prefix"] == venv_root
    assert api.result(docs[t_venv])["executable"] == str(second_venv)
    assert api.result(docs[t_plain])["prefix"] == sys.prefix


def test_container_command_template(api, make_endpoint) -> None:
    """The docker template is applied as configured; here it starts a local worker."""
    container = add_container(api, "docker", "example.org/tools:1.0")
    fn = api.register_function(where_am_i, AS_SOURCE, container_uuid=container)
    endpoint = make_endpoint(
        "templated",
        engine={"type": "process", "workers": 1},
        container_commands={"docker": "env FARCALL_FAKE_IMAGE={location} {worker}"},
        container_worker=f"{sys.executable} -m farcall_endpoint.engines.worker",
    )
    endpoint.start()
    [task] = api.submit(endpoint.endpoint_id, fn, [()])
    assert api.result(api.wait([task])[task])["image"] == "example.org/tools:1.0"


def test_missing_environment_fails_clearly(api, make_endpoint, tmp_path: Path) -> None:
    container = add_container(api, "venv", str(tmp_path / "no-such-python"))
    fn = api.register_function(where_am_i, AS_SOURCE, container_uuid=container)
    endpoint = make_endpoint("lost", engine={"type": "process", "workers": 1})
    endpoint.start()
    [task] = api.submit(endpoint.endpoint_id, fn, [()])
    doc = api.wait([task])[task]
    assert doc["status"] == "failed"
    assert "cannot start a worker for venv environment" in doc["exception"]


def _usable(runtime: str) -> str | None:
    """None when ``runtime`` can run containers here, else why not."""
    if shutil.which(runtime) is None:
        return f"{runtime} is not installed"
    probe = ["version"] if runtime == "apptainer" else ["info"]
    try:
        ok = subprocess.run([runtime, *probe], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        return f"{runtime} is installed but cannot run containers here (no engine running)"
    if not os.environ.get("FARCALL_TEST_IMAGE"):
        return "FARCALL_TEST_IMAGE (an image with farcall-endpoint installed) is not set"
    return None


@pytest.mark.parametrize("runtime", ["docker", "podman", "apptainer"])
def test_container_runtime(api, make_endpoint, runtime: str) -> None:
    reason = _usable(runtime)
    if reason:
        pytest.skip(reason)
    container = add_container(api, runtime, os.environ["FARCALL_TEST_IMAGE"])
    fn = api.register_function(where_am_i, AS_SOURCE, container_uuid=container)
    endpoint = make_endpoint(f"in-{runtime}", engine={"type": "process", "workers": 1})
    endpoint.start()
    [task] = api.submit(endpoint.endpoint_id, fn, [()])
    doc = api.wait([task], timeout=300)[task]
    assert doc["status"] == "success", doc.get("exception")


@pytest.mark.parametrize("location", ["--privileged", "-v/:/host", "image --privileged",
                                      "image\n"])
def test_locations_that_would_be_options_are_refused(location: str) -> None:
    """Defence in depth: the service refuses these, but an older one stored them."""
    from farcall_endpoint.environments import UnsupportedEnvironment, worker_command

    templates = {"docker": "docker run --rm -i {location} {worker}"}
    with pytest.raises(UnsupportedEnvironment, match="location"):
        worker_command(("docker", location), templates, "python -m worker")
    assert worker_command(("docker", "ubuntu:22.04"), templates, "w")[-2:] == ["ubuntu:22.04", "w"]

