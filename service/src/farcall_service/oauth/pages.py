"""The HTML pages of the login flow: the sign-in form, the code to paste, errors, and
the device flow's code entry and approval.

Plain server-rendered HTML with every value escaped, no scripts, and headers that
forbid framing (clickjacking) and caching (the code page shows a secret).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from fastapi.responses import HTMLResponse

#: The OAuth parameters the form carries from the authorize URL to its POST.
FLOW_FIELDS = (
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "response_type",
    "code_challenge",
    "code_challenge_method",
    "access_type",
)

#: A signed-in form redirects to the client's redirect URI, which browsers check against
#: ``form-action`` too: this service's code page, or a native app's loopback port.
HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self' http://127.0.0.1:* http://localhost:*; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}

STYLE = (
    "body{font-family:sans-serif;max-width:32em;margin:4em auto;padding:0 1em}"
    "label,input,button{display:block;margin:.4em 0}input{width:100%;padding:.4em}"
    ".error{color:#a00;font-weight:bold}code{font-size:1.2em;word-break:break-all}"
)


def _page(title: str, body: str, status: int = 200,
          headers: Mapping[str, str] | None = None) -> HTMLResponse:
    html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers={**HEADERS, **(headers or {})})


def login_page(
    flow: Mapping[str, str], csrf: str, *, error: str | None = None, username: str = "",
    status: int = 200, client: str = "",
) -> HTMLResponse:
    """The form; ``client`` names the application that asks (``describe_client``)."""
    hidden = "".join(
        f"<input type='hidden' name='{name}' value='{escape(flow.get(name, ''))}'>"
        for name in FLOW_FIELDS
    )
    message = f"<p class='error' id='error' role='alert'>{escape(error)}</p>" if error else ""
    body = (
        "<p>Sign in with your farcall account to let this application act for you:</p>"
        f"<p><strong id='client'>{escape(client or flow.get('client_id', ''))}</strong></p>"
        f"{message}<form method='post' autocomplete='off'>"
        f"<input type='hidden' name='csrf_token' value='{escape(csrf)}'>{hidden}"
        "<label for='username'>User name</label>"
        f"<input id='username' name='username' value='{escape(username)}' required>"
        "<label for='password'>Password</label>"
        "<input id='password' name='password' type='password' required>"
        "<button id='sign-in' type='submit'>Sign in</button></form>"
    )
    return _page("Sign in to farcall", body, status)


def error_page(message: str, status: int = 400,
               headers: Mapping[str, str] | None = None) -> HTMLResponse:
    body = f"<p class='error' id='error' role='alert'>{escape(message)}</p>"
    return _page("farcall login failed", body, status, headers)


def code_page(code: str) -> HTMLResponse:
    body = (
        "<p>Copy this code and paste it where the application asks for it. "
        "It works once, for a few minutes.</p>"
        f"<p><code id='auth-code'>{escape(code)}</code></p>"
    )
    return _page("Your farcall authorization code", body)


# -- the device flow (RFC 8628) -------------------------------------------------------------


def device_code_page(csrf: str, *, error: str | None = None, typed: str = "",
                     status: int = 200) -> HTMLResponse:
    """Where a person types the code their device shows."""
    message = f"<p class='error' id='error' role='alert'>{escape(error)}</p>" if error else ""
    body = (
        "<p>Enter the code shown on the device or terminal you are logging in from.</p>"
        f"{message}<form method='post' autocomplete='off'>"
        f"<input type='hidden' name='csrf_token' value='{escape(csrf)}'>"
        "<input type='hidden' name='action' value='lookup'>"
        "<label for='user-code'>Code</label>"
        f"<input id='user-code' name='user_code' value='{escape(typed)}' required "
        "placeholder='XXXX-XXXX' autocapitalize='characters' spellcheck='false'>"
        "<button id='continue' type='submit'>Continue</button></form>"
    )
    return _page("Log in a device to farcall", body, status)


def device_confirm_page(
    csrf: str, user_code: str, client: str, scopes: list[tuple[str, str]], *,
    error: str | None = None, username: str = "", status: int = 200,
) -> HTMLResponse:
    """Who asks for what, and the sign-in that approves it (or the denial)."""
    message = f"<p class='error' id='error' role='alert'>{escape(error)}</p>" if error else ""
    items = "".join(f"<li><code>{escape(name)}</code>: {escape(words)}</li>"
                    for name, words in scopes)
    body = (
        f"<p>The code <strong id='user-code'>{escape(user_code)}</strong> asks to log in"
        f" <strong id='client'>{escape(client)}</strong>, which may then:</p>"
        f"<ul id='scopes'>{items}</ul>"
        "<p>Approve only if this code is the one your device shows and you started this "
        "login yourself.</p>"
        f"{message}<form method='post' autocomplete='off'>"
        f"<input type='hidden' name='csrf_token' value='{escape(csrf)}'>"
        f"<input type='hidden' name='user_code' value='{escape(user_code)}'>"
        "<label for='username'>User name</label>"
        f"<input id='username' name='username' value='{escape(username)}' required>"
        "<label for='password'>Password</label>"
        "<input id='password' name='password' type='password' required>"
        "<button id='approve' type='submit' name='action' value='approve'>"
        "Sign in and approve</button>"
        "<button id='deny' type='submit' name='action' value='deny' formnovalidate>"
        "Deny</button></form>"
    )
    return _page("Approve a device login", body, status)


def device_done_page(approved: bool) -> HTMLResponse:
    if approved:
        title = "Device login approved"
        words = "The device finishes logging in within a few seconds. You may close this window."
    else:
        title = "Device login denied"
        words = "The device is told that you refused. You may close this window."
    return _page(title, f"<p id='device-result'>{escape(words)}</p>")
