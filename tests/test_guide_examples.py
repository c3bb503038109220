"""Every example of the Globus Compute SDK User Guide, run against ``farcall dev``.

The code blocks are read from the guide itself (``../shared/docs``) and run as
written, except that ``globus_compute_sdk`` imports become ``farcall`` ones, the
tutorial endpoint id becomes the dev endpoint's, and the guide's placeholders
(``func``, ``<globus_group_id>``, the tokens) are given values.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("farcall_dev")

from farcall_testkit.dev import running_dev  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
GUIDE = Path(os.environ.get(
    "FARCALL_GUIDE", REPO.parent / "shared" / "docs" / "globus-compute-sdk-user-guide.txt"
))
if not GUIDE.exists():
    pytest.skip(f"the User Guide is not at {GUIDE} (set FARCALL_GUIDE)", allow_module_level=True)
TUTORIAL_ENDPOINT = "4b116d3c-1703-4f8f-9f6f-39921e5864df"


def guide_blocks() -> list[str]:
    """The python code blocks of the guide, in order, prompts stripped."""
    lines = GUIDE.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if re.match(r"\.\. code(-block)?:: python", lines[i].strip()):
            body = []
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" ")):
                body.append(lines[i])
                i += 1
            code = textwrap.dedent("\n".join(body)).strip("\n")
            if ">>>" in code:  # an interactive session: keep the statements only
                code = "\n".join(ln[4:] for ln in code.splitlines() if ln.startswith(">>> "))
            blocks.append(code)
        else:
            i += 1
    return blocks


def as_farcall(code: str) -> str:
    code = code.replace("globus_compute_sdk", "farcall")
    return code.replace(TUTORIAL_ENDPOINT, "{ENDPOINT_ID}")


@contextlib.contextmanager
def farcall_dev(home: Path):
    """``farcall dev`` in ``home``, with a group the dev user belongs to, made before
    it starts; yields its profile and the group's id."""
    from farcall_service import admin
    from farcall_service.storage import open_store

    store = open_store(f"sqlite:///{home / 'dev' / 'farcall.db'}")
    admin.add_user(store, "dev")
    group = admin.add_group(store, "guide-lab")
    admin.add_member(store, "guide-lab", "dev")
    store.close()
    with running_dev(home, ["--workers", "2"]) as profile:
        yield profile, group.id


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    """``farcall dev`` for the official guide's examples."""
    home = tmp_path_factory.mktemp("guide-home")
    with farcall_dev(home) as (profile, group_id):
        yield home, profile, group_id


@pytest.fixture(scope="module")
def docs_dev(tmp_path_factory):
    """``farcall dev`` of its own for farcall's guide, whose functions would otherwise
    show in the official guide's searches."""
    home = tmp_path_factory.mktemp("docs-home")
    with farcall_dev(home) as (profile, group_id):
        yield home, profile, group_id


def run_block(code: str, namespace: dict) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<guide>", "exec"), namespace)
    return out.getvalue()


def test_the_guide_runs_as_written(dev, monkeypatch):
    home, profile, group_id = dev
    monkeypatch.setenv("FARCALL_HOME", str(home))
    monkeypatch.delenv("FARCALL_BASE_URL", raising=False)
    monkeypatch.delenv("FARCALL_TOKEN", raising=False)
    blocks = [as_farcall(b).replace("{ENDPOINT_ID}", profile["endpoint_id"])
              for b in guide_blocks()]
    login_block = next(b for b in blocks if "class LoginManager" in b)
    blocks.remove(login_block)
    ns: dict = {"__name__": "__guide__"}

    def run(fragment: str, **placeholders: object) -> str:
        block = next(b for b in blocks if fragment in b)
        for name, value in placeholders.items():
            block = block.replace(name, value) if isinstance(value, str) else block
        return run_block(block, ns)

    run("from farcall import Client")
    assert type(ns["gcc"]).__module__ == "farcall.sdk.client"
    run("func_uuid = gcc.register_function(platform_func)")
    run("task_id = gcc.run(endpoint_id=tutorial_endpoint")
    printed = run("print(gcc.get_result(task_id))")  # right away: pending, or done already
    ns["gcc"].wait([ns["task_id"]], timeout=60, progress=False)
    printed_later = run("print(gcc.get_result(task_id))")
    import platform

    assert printed.strip() == platform.platform() or printed.startswith(
        "Exception: task pending: ")
    assert printed_later.strip() == platform.platform()

    run('task_id = gcc.run("Bob", "Smith"')  # defines hello, registers it, runs, prints
    ns["gcc"].wait([ns["task_id"]], timeout=60, progress=False)
    printed = run('task_id = gcc.run("Bob", "Smith"')  # a new task: done, or not yet
    assert printed.strip() == "Hello Bob Smith" or printed.startswith("Exception: task pending: ")

    ns["func"] = ns["hello"]
    run("group=<globus_group_id>", **{"<globus_group_id>": repr(group_id)})
    run("public=True")
    found = run('search_results = gcc.search_function("my function"')
    assert found.count("'function_name': 'hello'") == 2 and "'total': 2" in found

    run("batch = gcc.create_batch()")
    assert len(ns["batch_res"]) == 5
    ns["gcc"].wait(ns["batch_res"], timeout=60, progress=False)
    printed = run("results = gcc.get_batch_result(batch_res)")
    results = ns["results"]
    assert list(results) == ns["batch_res"]
    # As written, the batch calls the guide's last registered function, hello(firstname,
    # lastname), with one argument: every task fails, and each is reported, not dropped.
    for entry in results.values():
        assert entry["pending"] is False and entry["status"] == "failed"
        assert "missing 1 required positional argument" in str(
            getattr(entry["exception"], "remote_traceback", entry["exception"]))
    assert "'pending': False" in printed and "'status': 'failed'" in printed


def test_the_guides_custom_login_manager(dev, monkeypatch):
    pytest.importorskip("globus_sdk")
    home, profile, _group = dev
    monkeypatch.setenv("FARCALL_HOME", str(home))
    block = as_farcall(next(b for b in guide_blocks() if "class LoginManager" in b))
    ns = {"__name__": "__guide__", "compute_token": profile["token"], "search_token": "unused",
          "openid_token": "unused", "log": None}
    run_block(block, ns)
    fx = ns["fx"]
    assert any(ep["uuid"] == profile["endpoint_id"] for ep in fx.get_endpoints())


# -- farcall's own guide and quickstart ---------------------------------------------------

DOCS = REPO / "docs"


def markdown_blocks(path: Path) -> list[str]:
    """The ```python blocks of a Markdown file, in order; an interactive example
    (``>>>`` prompts) keeps its statements only, as a reader would type them."""
    blocks = re.findall(r"^```python\n(.*?)^```$", path.read_text(), flags=re.S | re.M)
    return [
        "\n".join(ln[4:] for ln in block.splitlines() if ln.startswith((">>> ", "... ")))
        if ">>>" in block else block
        for block in blocks
    ]


def test_the_user_guide_runs_as_written(docs_dev, monkeypatch):
    """Every python block of docs/user-guide.md, in order, in one namespace, unchanged;
    the only name the reader brings is ``group_id``, which the guide says comes from
    ``farcall server group add``."""
    home, profile, group_id = docs_dev
    monkeypatch.setenv("FARCALL_HOME", str(home))
    monkeypatch.delenv("FARCALL_BASE_URL", raising=False)
    monkeypatch.delenv("FARCALL_TOKEN", raising=False)
    blocks = markdown_blocks(DOCS / "user-guide.md")
    mpi = shutil.which("mpiexec") is not None or os.environ.get("FARCALL_REQUIRE_MPI") == "1"
    if not mpi:  # the MPI example needs an MPI launcher on the endpoint's host
        blocks = [block for block in blocks if "MPIFunction" not in block]
    ns: dict = {"__name__": "__guide__", "group_id": group_id}
    printed = []
    for block in blocks:
        try:
            printed.append(run_block(block, ns))
        except Exception as exc:
            raise AssertionError(f"this block of docs/user-guide.md failed:\n{block}") from exc
    out = "\n".join(printed)
    import platform

    assert ns["local_endpoint"] == profile["endpoint_id"]
    assert platform.platform() in out or "task pending" in out
    assert "Hello Bob Smith" in out or "task pending" in out
    assert "['Hello Ada 0', 'Hello Ada 1', 'Hello Ada 2']\n[1, 2]\n" in out
    assert re.search(r"not sent: .*generator.*\n9\n", out), out
    assert re.search(r"^16 25 [0-9a-f-]{36}$", out, flags=re.M), out
    assert "\n36\n" in out and "\n[0, 1, 4]\n" in out
    assert re.search(r"^(cancelled|already finished)$", out, flags=re.M), out
    assert f"\n{sum(n * n for n in range(50))}\n" in out
    assert "\nTrue\n\n0 hello\n" in out, "the custom login manager's Client works"
    if mpi:
        assert "rank 0 of 2" in out and "rank 1 of 2" in out, out

    gcc = ns["gcc"]
    batch_res = ns["batch_res"]
    gcc.wait(batch_res, timeout=60, progress=False)
    results = gcc.get_batch_result(batch_res)
    assert [results[t]["result"] for t in batch_res] == [0, 1, 4, 9, 16], (
        "the batching example succeeds: its function takes one argument")


def test_the_quickstart_runs_as_written(docs_dev, monkeypatch):
    home, _profile, _group = docs_dev
    monkeypatch.setenv("FARCALL_HOME", str(home))
    monkeypatch.delenv("FARCALL_BASE_URL", raising=False)
    monkeypatch.delenv("FARCALL_TOKEN", raising=False)
    (block,) = markdown_blocks(DOCS / "quickstart.md")
    assert run_block(block, {"__name__": "__quickstart__"}) == "Hello World\n"
