"""Loading the endpoint plugin, listing engines, links and commands, and ``farcall --help``
import neither the HTTP stack, SQLite, the runner, the links, nor Parsl or Dask."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, sys
    from farcall.plugins import get_plugin_manager

    pm = get_plugin_manager()
    from farcall_endpoint.kinds import ENGINES, LINKS
    engines = sorted(pm.records(ENGINES))
    links = sorted(pm.records(LINKS))
    commands = sorted(pm.cli_commands())
    heavy = ("requests", "sqlite3", "parsl", "distributed", "dask", "farcall_endpoint.runner",
             "farcall_endpoint.engines.process", "farcall_endpoint.links.handoff",
             "farcall_service.app")
    print(json.dumps({"engines": engines, "links": links, "commands": commands,
                      "loaded": sorted(m for m in heavy if m in sys.modules)}))
    """
)


def test_listing_plugins_stays_light() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=60, check=True)
    out = json.loads(done.stdout)
    assert {"process", "thread"} <= set(out["engines"])
    assert "farcall" in out["links"]
    assert "endpoint" in out["commands"]
    assert out["loaded"] == []
