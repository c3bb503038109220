"""The web dashboard: endpoints, functions and tasks as pages, under ``/dashboard/``.

People sign in through the service's own OAuth login page, as the farcall CLI does;
the access token that comes back is kept in an HttpOnly cookie and checked on every
request by the same code that checks a bearer token (``auth.identify``), and every
page asks ``access`` what its viewer may see, so a page never shows what the API
would not. Modules: ``session`` (sign-in, cookie, CSRF), ``views`` (what a page
shows, read from the store), ``render`` (Jinja2 templates and headers), ``live``
(server-sent events), ``routes``.
"""

from __future__ import annotations

#: Where the dashboard's pages live.
PREFIX = "/dashboard"
