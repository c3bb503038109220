"""Connecting an endpoint to its service: log in, open the link, register.

The endpoint logs in exactly like an SDK user: the same login-manager chain, fed
from its config, ``FARCALL_TOKEN``/``FARCALL_BASE_URL`` and the ``farcall dev``
profile; a login stored by ``farcall login`` is exchanged, at the first start, for
a login of the endpoint's own (``tokens.json`` in its directory), so that logging out
does not stop running endpoints. It reaches the service through the transport
plugin its config names (``transport``, default ``http``). The link plugin is the
config's (``link``, default ``farcall``) until the service's answer to the
registration names another.
"""

from __future__ import annotations

import logging
import platform

from farcall.plugins.manager import FarcallPluginManager
from farcall.plugins.types import LoginManager, Transport
from farcall.sdk.login import FROM_ARGUMENT, FROM_ENVIRONMENT, authorizer_of, choose_login_manager
from farcall.sdk.profile import load_profile

from farcall_endpoint import __version__
from farcall_endpoint.backoff import Backoff
from farcall_endpoint.config import EndpointConfig
from farcall_endpoint.kinds import LINKS
from farcall_endpoint.ledger import Ledger
from farcall_endpoint.links.interface import EndpointRefused, Link, LinkContext, Registration

log = logging.getLogger(__name__)

#: The endpoint's own login, in its directory (owner-only), made at its first start.
OWN_LOGIN = "tokens.json"
#: Settings of every transport the endpoint opens: no retries, the runner backs off.
TRANSPORT_SETTINGS = {"retries": 0, "timeout": 60.0}


def login(config: EndpointConfig, pm: FarcallPluginManager) -> tuple[str, LoginManager]:
    """The service's URL and the login manager the endpoint's requests are signed by:
    the endpoint's own login (:data:`OWN_LOGIN`) once it has one."""
    profile = load_profile(config.base_url)
    base_url = profile.base_url
    settings = {
        "base_url": base_url,  # login managers find the service's /auth/ from it
        **config.login,
        "token": config.token or profile.token,
    }
    # As for the Client: a token in the endpoint's config is its explicit choice and
    # wins over stored logins; ``FARCALL_TOKEN`` wins over them too.
    if config.token:
        settings["token_source"] = FROM_ARGUMENT
    elif profile.source == FROM_ENVIRONMENT:
        settings["token_source"] = FROM_ENVIRONMENT
    own = config.directory / OWN_LOGIN
    if own.exists():
        settings.setdefault("token_file", str(own))
    if config.login_manager:
        settings["login_manager"] = config.login_manager
    return base_url, choose_login_manager(pm, settings)


def own_login(config: EndpointConfig, manager: LoginManager) -> LoginManager:
    """The endpoint's own login, made from the user's stored one when the login manager
    can (``fork_login``, the native manager): ``farcall logout`` then ends the user's
    login, not the endpoint's. Managers without it (static tokens, client credentials)
    are used as they are."""
    fork = getattr(manager, "fork_login", None)
    if fork is None:
        return manager
    forked: LoginManager = fork(config.directory / OWN_LOGIN)
    return forked


def forget_own_login(config: EndpointConfig) -> None:
    """Drop the endpoint's own login once the service refused it (revoked, expired):
    the next start makes a new one from the user's login, if there is one."""
    own = config.directory / OWN_LOGIN
    if own.exists():
        own.unlink()
        log.info("the endpoint's own login (%s) was refused and is forgotten; the next "
                 "start makes a new one from `farcall login`", own)


def link_context(config: EndpointConfig, pm: FarcallPluginManager,
                 endpoint_id: str) -> LinkContext:
    """Log in and choose the transport; no request is made yet."""
    base_url, manager = login(config, pm)
    authorizer = authorizer_of(own_login(config, manager), base_url)
    transport_type = pm.get_transport(config.transport)

    def open_transport() -> Transport:
        return transport_type.factory(base_url, authorizer, TRANSPORT_SETTINGS)

    def open_unsigned_transport() -> Transport:
        return transport_type.factory(base_url, None, TRANSPORT_SETTINGS)

    return LinkContext(base_url=base_url, endpoint_id=endpoint_id, open_transport=open_transport,
                       open_unsigned_transport=open_unsigned_transport)


def registration(config: EndpointConfig) -> Registration:
    return Registration(
        endpoint_name=config.name,
        display_name=config.display_name or config.name,
        metadata={
            "hostname": platform.node(),
            "endpoint_version": __version__,
            "python_version": platform.python_version(),
            "engine": config.engine_type,
        },
        allowed_functions=tuple(config.allowed_functions),
    )


def connect(config: EndpointConfig, pm: FarcallPluginManager, context: LinkContext,
            ledger: Ledger) -> Link | None:
    """Register through the configured link, retrying until the service answers; then
    the link to serve with: this one, or the one the answer names. None if the endpoint
    stopped first; raises :class:`EndpointRefused` when the service refuses it."""
    link = pm.select(LINKS, config.link).factory(context)
    backoff = Backoff(ledger.wait_stop, config.max_backoff)
    while not ledger.stopping:
        try:
            answer = link.register(registration(config))
            break
        except EndpointRefused:
            link.close()
            raise
        except Exception as exc:
            log.warning("registering with %s failed (%s); retrying", context.base_url, exc)
            backoff.wait()
    else:
        link.close()
        return None
    named = answer.get("link")
    if not isinstance(named, str) or named == config.link:
        return link
    log.info("the service asks for the %r endpoint link", named)
    chosen = pm.select(LINKS, named)  # an unknown name says what to install
    link.close()
    return chosen.factory(LinkContext(context.base_url, context.endpoint_id,
                                      context.open_transport, context.open_unsigned_transport,
                                      answer))
