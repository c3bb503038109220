"""``farcall login``, ``farcall logout`` and ``farcall whoami``."""

from __future__ import annotations

from typing import Any

import click

url_option = click.option(
    "--base-url",
    default=None,
    help="The farcall service [default: FARCALL_BASE_URL or the farcall dev profile]; its "
    "login page is <base-url>/auth/. FARCALL_AUTH_URL picks another provider.",
)


def _manager(base_url: str | None) -> Any:
    from farcall_auth_native.manager import NativeLoginManager

    return NativeLoginManager({"base_url": base_url} if base_url else {})


@click.command("login")
@url_option
@click.option("--force", is_flag=True, help="Log in again even when tokens are stored.")
@click.option("--no-browser", is_flag=True,
              help="Do not open a browser here: print the sign-in URL, open it in any "
              "browser, and paste back the code the page shows after you sign in.")
@click.option("--device", is_flag=True,
              help="Log in from a machine with no browser (RFC 8628 device flow): print a "
              "URL and a short code, approve the code in a browser on any device, and "
              "this command finishes by itself; nothing is pasted back.")
def login(base_url: str | None, force: bool, no_browser: bool, device: bool) -> None:
    """Log in. By default, sign in in the browser this opens, which brings the code back
    to a loopback port here. With --no-browser (or where no browser opens), open the
    printed URL anywhere and paste the code shown. With --device, approve a short code
    on any device while this waits."""
    if device and no_browser:
        raise click.UsageError("choose one of --device (approve a code on another device) "
                               "and --no-browser (paste the code the page shows)")
    manager = _manager(base_url)
    if manager.has_tokens() and not force:
        click.echo(f"Already logged in to {manager.auth_url} (use --force to log in again).")
        return
    if device:
        manager.login_with_device_code(
            echo=click.echo, progress=lambda text: click.echo(text, nl=False, err=True)
        )
    else:
        manager.login_interactively(
            echo=click.echo,
            read_code=lambda text: click.prompt(text.rstrip(": "), prompt_suffix=": "),
            browser=not no_browser,
        )
    click.echo(f"Logged in to {manager.auth_url}.")


@click.command("logout")
@url_option
def logout(base_url: str | None) -> None:
    """Revoke the stored tokens and forget them."""
    manager = _manager(base_url)
    if manager.logout():
        click.echo(f"Logged out of {manager.auth_url}.")
    else:
        click.echo(f"Not logged in to {manager.auth_url}.")


@click.command("whoami")
@url_option
def whoami(base_url: str | None) -> None:
    """Show the identity the stored tokens belong to."""
    info = _manager(base_url).userinfo()
    name = info.get("preferred_username") or info.get("name") or "?"
    click.echo(f"{name} ({info.get('sub')})")
