"""The error hierarchy shared by the core and every plugin."""

from __future__ import annotations


class FarcallError(Exception):
    """Base class of every error farcall raises on purpose."""


class LoginRequired(FarcallError):
    """The stored credentials are gone, revoked or expired: retrying cannot help, only
    logging in again. Login managers raise it (or a subclass) from their authorizers."""


class PluginError(FarcallError):
    """A plugin could not be loaded, registered or selected."""


class PluginConflictError(PluginError):
    """Two plugins claim the same name or strategy identifier."""


class UnknownPluginError(PluginError, LookupError):
    """A configured name or identifier is not provided by any installed plugin."""


class SerializationError(FarcallError):
    """An object could not be turned into its wire form."""


class DeserializationError(FarcallError, ValueError):
    """A wire string could not be turned back into an object.

    Raised for malformed packed buffers, unknown or disallowed strategy identifiers,
    and payloads that a strategy cannot read.
    """
