"""The HTML pages of the login flow: the sign-in form, the code to paste, errors.

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
