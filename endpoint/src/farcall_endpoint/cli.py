"""``farcall endpoint``: configure, start, stop, restart, delete, list and inspect endpoints.

Only click is imported here; the runner, engines and HTTP stack load inside the
commands that need them.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from None


@click.group("endpoint")
def endpoint() -> None:
    """Run farcall endpoints: serve a service's tasks on this machine or cluster."""


@endpoint.command("configure")
@click.argument("name")
@click.option("--engine", "engine_type", default="process", show_default=True,
              help="Execution engine plugin (process, thread, parsl, dask, ...).")
@click.option("--workers", type=int, default=None, help="Workers of the engine.")
@click.option("--base-url", default=None,
              help="Service URL [default: FARCALL_BASE_URL or the dev profile].")
@click.option("--endpoint-id", default=None, help="Serve an endpoint id registered elsewhere.")
@click.option("--display-name", default=None)
@click.option("--force", is_flag=True, help="Overwrite an existing configuration.")
def configure(name: str, engine_type: str, workers: int | None, base_url: str | None,
              endpoint_id: str | None, display_name: str | None, force: bool) -> None:
    """Write a documented config file for endpoint NAME and give it a stable id."""
    from farcall_endpoint.configure import configure_endpoint, ensure_endpoint_id

    engine: dict[str, Any] = {"type": engine_type}
    if workers is not None:
        engine["workers"] = workers
    settings: dict[str, Any] = {"engine": engine}
    if base_url:
        settings["base_url"] = base_url
    if display_name:
        settings["display_name"] = display_name
    try:
        config = configure_endpoint(name, endpoint_id=endpoint_id, overwrite=force, **settings)
    except Exception as exc:
        _fail(exc)
    click.echo(f"endpoint {name}: {ensure_endpoint_id(config)}")
    click.echo(f"configuration: {config.config_path}")


@endpoint.command("start")
@click.argument("name")
@click.option("--detach", is_flag=True,
              help="Run in the background (pid and log file in the endpoint's directory).")
@click.option("--log-level", default="INFO", show_default=True)
def start(name: str, detach: bool, log_level: str) -> None:
    """Start endpoint NAME (in the foreground unless --detach)."""
    from farcall_endpoint.config import load_config
    from farcall_endpoint.daemon import LOG_FILE, read_pid_file, start_detached

    try:
        config = load_config(name)
    except Exception as exc:
        _fail(exc)
    if read_pid_file(config.directory):
        _fail(RuntimeError(f"endpoint {name!r} is already running"))
    if detach:
        try:
            pid = start_detached(name)
        except Exception as exc:
            _fail(exc)
        click.echo(f"endpoint {name} started (pid {pid}); log: {config.directory / LOG_FILE}")
        return
    _run_foreground(config, log_level)


def _run_foreground(config: Any, log_level: str) -> None:
    import logging
    import os
    import signal

    from farcall_endpoint.daemon import kill_descendants, remove_pid_file, write_pid_file
    from farcall_endpoint.runner import EndpointRunner

    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner = EndpointRunner(config)
    write_pid_file(config.directory, runner.endpoint_id, "starting")

    def on_signal(signum: int, _frame: Any) -> None:
        if runner.stopped and signum == signal.SIGINT:  # a second Ctrl-C: stop waiting
            click.echo("stopping at once; tasks in hand go back to the queue when the "
                       "service notices", err=True)
            remove_pid_file(config.directory)
            kill_descendants(os.getpid())  # the engine's own processes
            os._exit(130)
        name = signal.Signals(signum).name
        logging.getLogger("farcall_endpoint").info(
            "%s: stopping (%s)", name,
            "Ctrl-C again to stop at once" if signum == signal.SIGINT else "finishing up")
        runner.stop(timeout=0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = runner.start()
    try:
        while not runner.ready.wait(0.2):
            if not thread.is_alive():
                break
        if runner.error is None and not runner.stopped:
            write_pid_file(config.directory, runner.endpoint_id, "serving")
        while thread.is_alive():
            thread.join(0.5)
    finally:
        remove_pid_file(config.directory)
    if runner.error is not None:
        _fail(runner.error if isinstance(runner.error, Exception) else RuntimeError(runner.error))


def _configured(name: str) -> None:
    """Fail unless endpoint NAME has a config: a misspelt name is an error, not a no-op."""
    from farcall_endpoint.config import check_name, configured_names

    try:
        check_name(name)
    except Exception as exc:
        _fail(exc)
    if name not in configured_names():
        known = ", ".join(configured_names()) or "none"
        _fail(RuntimeError(f"endpoint {name!r} is not configured (configured: {known})"))


stop_timeout = click.option("--timeout", type=float, default=30.0, show_default=True,
                            help="Seconds to wait before killing it.")


@endpoint.command("stop")
@click.argument("name")
@stop_timeout
def stop(name: str, timeout: float) -> None:
    """Stop endpoint NAME."""
    from farcall_endpoint.daemon import stop_endpoint

    _configured(name)
    try:
        stopped = stop_endpoint(name, timeout=timeout)
    except Exception as exc:
        _fail(exc)
    click.echo(f"endpoint {name} stopped" if stopped else f"endpoint {name} is not running")


@endpoint.command("restart")
@click.argument("name")
@stop_timeout
def restart(name: str, timeout: float) -> None:
    """Stop endpoint NAME if it runs, then start it in the background."""
    from farcall_endpoint.config import load_config
    from farcall_endpoint.daemon import LOG_FILE, start_detached, stop_endpoint

    _configured(name)
    try:
        config = load_config(name)
        if stop_endpoint(name, timeout=timeout):
            click.echo(f"endpoint {name} stopped")
        pid = start_detached(name)
    except Exception as exc:
        _fail(exc)
    click.echo(f"endpoint {name} started (pid {pid}); log: {config.directory / LOG_FILE}")


@endpoint.command("delete")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True,
              help="Stop the endpoint if it runs, and delete it here even when the service "
              "cannot be reached or no longer knows it.")
def delete(name: str, yes: bool, force: bool) -> None:
    """Delete endpoint NAME: at the service (its unfinished tasks fail) and here."""
    import shutil

    from farcall_endpoint.at_service import client_for, end_own_login
    from farcall_endpoint.config import load_config
    from farcall_endpoint.configure import read_endpoint_id
    from farcall_endpoint.daemon import read_pid_file, stop_endpoint

    _configured(name)
    config = load_config(name)
    running = read_pid_file(config.directory) is not None
    if running and not force:
        _fail(RuntimeError(f"endpoint {name!r} is running: stop it first, or use --force"))
    endpoint_id = read_endpoint_id(config.directory)
    if not yes:
        click.confirm(f"Delete endpoint {name} ({endpoint_id}) and its directory "
                      f"{config.directory}?", abort=True)
    if running:
        stop_endpoint(name)
    if endpoint_id:
        try:
            client_for(config).delete_endpoint(endpoint_id)
        except Exception as exc:
            if getattr(exc, "http_status", None) == 404:  # never registered, or deleted
                click.echo(f"the service does not know endpoint {name} ({endpoint_id})")
            elif not force:
                _fail(RuntimeError(f"the service could not delete endpoint {name} "
                                   f"({endpoint_id}): {exc} (--force deletes it here anyway)"))
            else:
                click.echo(f"the service did not delete it ({exc}); deleting it here",
                           err=True)
    problem = end_own_login(config)
    if problem:
        click.echo(f"the endpoint's own login was not revoked ({problem})", err=True)
    shutil.rmtree(config.directory)
    click.echo(f"endpoint {name} deleted")


def _describe(name: str) -> dict[str, Any]:
    from farcall_endpoint.config import endpoint_dir, load_config
    from farcall_endpoint.configure import read_endpoint_id
    from farcall_endpoint.daemon import LOG_FILE, read_pid_file
    from farcall_endpoint.spool import spooled_count

    directory = endpoint_dir(name)
    info = read_pid_file(directory)
    entry: dict[str, Any] = {
        "name": name,
        "id": read_endpoint_id(directory),
        "state": str(info.get("state", "running")) if info else "stopped",
        "pid": info.get("pid") if info else None,
        "directory": str(directory),
        "log": str(directory / LOG_FILE),
        "unsent_results": spooled_count(directory),
    }
    try:
        config = load_config(name)
        entry["engine"] = config.engine_type
        entry["config"] = str(config.config_path)
    except Exception as exc:
        entry["config_error"] = str(exc)
    return entry


@endpoint.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--local", is_flag=True, help="Do not ask the service for each status.")
def list_endpoints(as_json: bool, local: bool) -> None:
    """List configured endpoints: name, id, engine, local state and the service's status."""
    from farcall_endpoint.config import configured_names

    entries = [_describe(name) for name in configured_names()]
    if not local:
        from farcall_endpoint.at_service import add_service_status

        add_service_status(entries)
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        click.echo("no endpoints configured; run `farcall endpoint configure NAME`")
        return
    rows = [("NAME", "ID", "ENGINE", "STATE", "STATUS")] + [
        (e["name"], e["id"] or "-", e.get("engine", "?"), e["state"], e.get("status", "-"))
        for e in entries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [f"{cell:<{width}}" for cell, width in zip(row[:4], widths, strict=True)]
        click.echo("  ".join([*cells, row[4]]))
    errors = {e["status_error"] for e in entries if e.get("status_error")}
    for error in sorted(errors):
        click.echo(f"status unknown: {error}", err=True)


@endpoint.command("status")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def status(name: str, as_json: bool) -> None:
    """Show endpoint NAME's id, state, pid, engine and unsent results."""
    _configured(name)
    entry = _describe(name)
    if as_json:
        click.echo(json.dumps(entry, indent=2))
        return
    for key, value in entry.items():
        click.echo(f"{key}: {value if value is not None else '-'}")


def main() -> None:
    """``python -m farcall_endpoint``: the same commands without the ``farcall`` prefix."""
    endpoint(prog_name="farcall endpoint")
