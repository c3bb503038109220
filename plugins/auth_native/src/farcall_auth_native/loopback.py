"""Catching the sign-in's redirect on a loopback port (RFC 8252, section 7.3).

``farcall login`` opens the authorize page in the user's browser with a redirect URI
``http://127.0.0.1:<port>`` served here, so the code reaches the CLI without being
copied by hand. Only a request that carries the ``state`` this login made is taken:
another local program cannot slip in a code of its choosing, and stray requests (a
favicon) are ignored. The code is still useless without this login's PKCE verifier.

When no graphical browser can be opened (none installed, a text-only one that would
take over the terminal, an SSH session) :class:`NoBrowser` says why, and the caller
falls back to pasting the code, as the official ``globus login`` does.
"""

from __future__ import annotations

import os
import queue
import secrets
import threading
import webbrowser
from html import escape
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from farcall.errors import FarcallError

__all__ = ["LoopbackRedirect", "NoBrowser", "open_browser"]

#: Browsers that run in the terminal: they cannot show the sign-in page usefully.
TEXT_BROWSERS = frozenset({"lynx", "www-browser", "links", "elinks", "w3m"})

_PAGE = (
    "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
    "</head><body style='font-family:sans-serif;max-width:32em;margin:4em auto'>"
    "<h1 id='login-result'>{title}</h1><p>{message}</p></body></html>"
)


class NoBrowser(FarcallError):
    """No browser can be opened here; the message says why."""


def open_browser(url: str) -> None:
    """Open ``url`` in the user's graphical browser, or raise :class:`NoBrowser`."""
    if os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY"):
        raise NoBrowser("this is an SSH session, so a browser here would not be yours")
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        raise NoBrowser("no web browser was found") from None
    name = str(getattr(browser, "name", "") or getattr(browser, "_name", ""))
    if os.path.basename(name.split()[0] if name.split() else name) in TEXT_BROWSERS:
        raise NoBrowser(f"the browser found, {name}, runs in the terminal")
    if not browser.open(url, new=1):
        raise NoBrowser(f"the browser {name or '(unnamed)'} could not be started")


class LoopbackRedirect:
    """A one-shot HTTP server on 127.0.0.1 that waits for the sign-in's redirect.

    Use as a context manager: ``redirect_uri`` and ``state`` go into the authorize URL,
    :meth:`wait` returns the code.
    """

    def __init__(self) -> None:
        self.state = secrets.token_urlsafe(24)
        self._answers: queue.Queue[tuple[str, str]] = queue.Queue()
        self._server = HTTPServer(("127.0.0.1", 0), _handler(self.state, self._answers))
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="farcall-login-redirect", daemon=True
        )

    @property
    def redirect_uri(self) -> str:
        # As globus-sdk forms it: Globus Auth lets native apps use any such port.
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LoopbackRedirect:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def wait(self, timeout: float) -> str:
        """The code the browser brought back; FarcallError if the sign-in was refused
        or did not come back within ``timeout`` seconds."""
        try:
            kind, value = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise FarcallError(
                f"no sign-in came back within {timeout:.0f} s: run `farcall login` again, "
                "or `farcall login --no-browser` to paste a code instead"
            ) from None
        if kind == "error":
            raise FarcallError(f"login failed: {value}")
        return value


def _handler(state: str, answers: queue.Queue[tuple[str, str]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path != "/" or query.get("state") != state:
                self._reply(404, "Not found", "This is not the sign-in this login waits for.")
                return
            if query.get("code"):
                answers.put(("code", query["code"]))
                self._reply(200, "Logged in", "You may close this window and return to farcall.")
                return
            reason = query.get("error_description") or query.get("error") or "no code came back"
            answers.put(("error", reason))
            self._reply(400, "Login failed", reason)

        def _reply(self, status: int, title: str, message: str) -> None:
            body = _PAGE.format(title=escape(title), message=escape(message)).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Referrer-Policy", "no-referrer")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Quiet: the request line holds the code."""

    return Handler
