"""``farcall dev``: run a local service and endpoint until Ctrl-C."""

from __future__ import annotations

import signal

import click


@click.command("dev")
@click.option("--port", type=int, default=5000, show_default=True, help="The service's port.")
@click.option("--engine", default="process", show_default=True,
              help="The endpoint's engine (process, thread, or an installed plugin's).")
@click.option("--workers", type=int, default=None, help="Workers of the endpoint's engine.")
@click.option("--broker", default=None, metavar="URL",
              help="The service's message broker (amqp://...): the official Executor reads "
              "its results over AMQP.")
@click.option("--max-result-size", type=int, default=None, metavar="BYTES",
              help="The service's largest result or payload (at most 1 GiB) [default: 1 GiB].")
def dev(port: int, engine: str, workers: int | None, broker: str | None,
        max_result_size: int | None) -> None:
    """Start a local service and an endpoint named 'local'; Client() finds both."""
    from farcall_dev.stack import DevError, DevStack

    stack = DevStack(port=port, engine=engine, workers=workers, broker=broker,
                     max_result_size=max_result_size)
    stopping = stack.stopping

    def on_signal(_signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        click.echo(f"farcall dev: state in {stack.directory}")
        token = stack.token()
        click.echo(f"starting the service on {stack.base_url} ...")
        stack.start_service(token)
        click.echo(f"starting endpoint 'local' ({engine} engine) ...")
        endpoint_id = stack.start_endpoint(token)
        stack.write_profile(token, endpoint_id)
        click.echo(
            f"\nready: service {stack.base_url}, endpoint {endpoint_id}\n"
            f"profile written to {stack.profile_path}: farcall.Client() uses it.\n"
            "Press Ctrl-C to stop."
        )
        while not stopping.wait(0.5):
            if not stack.alive():
                raise DevError("a child process exited; see the logs in " + str(stack.directory))
    except DevError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        click.echo("stopping ...")
        stack.stop()
        click.echo("stopped.")
