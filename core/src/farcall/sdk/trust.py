"""Which endpoints' results the Client reads in strategies that can run code.

A result is whatever the endpoint's process wrote, and reading a dill or pickle payload
runs code its writer chose: whoever runs an endpoint could run code in the process that
reads its results. So the Client reads results and exception data in every installed
strategy only from endpoints it trusts: those its caller owns (the endpoint's document
says ``is_owner``; looked up once per Client) and those named in ``trusted_endpoints``
(``"*"``: every endpoint). To any other endpoint a submission asks for results in
strategies that run no code (``result_serializers``: msgpack, when
farcall-serializer-msgpack is installed, then JSON), and a result from it is read only
in the strategies of ``allowed_deserializer_types`` (default: the installed data-only
ones). Arguments and functions sent to endpoints are code by design: this is
about what comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from farcall.errors import FarcallError
from farcall.sdk.batch import canonical_id
from farcall.sdk.errors import FarcallAPIError, UntrustedResultError
from farcall.serialize import Serializer
from farcall.serialize.allowlist import (
    data_only_identifiers,
    expand_allowlist,
    official_spelling,
)

#: ``trusted_endpoints`` entry that trusts every endpoint (the behaviour before trust).
TRUST_ALL = "*"
#: JSONData, the data strategy every endpoint, official or farcall, can write.
JSON_DATA = "11"
#: Set by the Client on task documents it caches once it knows the caller owns their
#: endpoint; the service never sends it (its documents' keys are its own, not the
#: endpoint's), and only the Client writes its cache.
OWNED_MARK = "farcall_endpoint_owned"

Lookup = Callable[[str], Mapping[str, Any]]


class EndpointTrust:
    """The Client's trust in endpoints, and the readers that follow from it.

    ``lookup(endpoint_id)`` returns the endpoint's document (``GET /v2/endpoints/ID``);
    it is asked once per endpoint that is not named in ``trusted_endpoints``.
    ``remember(document)`` (the result cache's ``put``) keeps a task document marked
    with :data:`OWNED_MARK` once its endpoint is known to be the caller's, so that a
    cache on disk answers in a later process without asking the service again.
    """

    def __init__(
        self,
        serializer: Serializer,
        lookup: Lookup,
        trusted_endpoints: Iterable[Any] | str | None = None,
        allowed_deserializer_types: Iterable[Any] | None = None,
        remember: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.serializer = serializer
        self._lookup = lookup
        self._remember = remember
        self.trust_all, self.trusted = _parse_trusted(trusted_endpoints)
        registry = serializer.registry
        if allowed_deserializer_types is None:
            specs = data_only_identifiers(registry)
        else:
            specs = expand_allowlist([_spec(s) for s in allowed_deserializer_types], registry)
            if not specs:
                raise FarcallError(
                    "allowed_deserializer_types is empty: results from endpoints you do not "
                    "own could not be read at all. Leave it out to read them as JSON, or "
                    "pass trusted_endpoints=['*'] to read every strategy from every endpoint"
                )
        #: Reads results of untrusted endpoints: refuses every other strategy, nested
        #: payloads included, before reading anything.
        self.reader = Serializer(allowed=specs, registry=registry)
        allowed = self.reader.allowed or frozenset()
        if serializer.allowed is not None:
            allowed &= serializer.allowed
            self.reader.allowed = allowed
        self.allowed: frozenset[str] = allowed
        #: What submissions to untrusted endpoints ask for: writable data strategies,
        #: those that run no code first, and of these JSON last: it carries the least
        #: (``mp`` before it keeps tuples, bytes and big integers), but every endpoint
        #: has it. Official strategies are spelled as the official endpoint takes them.
        types = registry.types
        ordered = dict.fromkeys(self.reader.identifier(s) for s in specs)
        writable = [i for i in ordered
                    if i in allowed and i in types
                    and not types[i].for_code and not types[i].read_only]
        writable.sort(key=lambda i: (not types[i].data_only, i == JSON_DATA))
        self.requested: list[str] = [official_spelling(i) for i in writable]
        self._owned: dict[str, bool] = {}

    # -- trust ------------------------------------------------------------------------

    def trusts(self, endpoint_id: str | None) -> bool:
        """Whether results of ``endpoint_id`` are read in every strategy (None: unknown)."""
        if self.trust_all or endpoint_id in self.trusted:
            return True
        return endpoint_id is not None and self.owns(endpoint_id)

    def owns(self, endpoint_id: str) -> bool:
        """Whether the caller owns ``endpoint_id``, asked of the service once."""
        owned = self._owned.get(endpoint_id)
        if owned is None:
            try:
                owned = self._lookup(endpoint_id).get("is_owner") is True
            except FarcallAPIError as exc:
                if exc.http_status not in (403, 404):
                    raise
                owned = False  # not visible (deleted): not the caller's to trust
            self._owned[endpoint_id] = owned
        return owned

    def mark(self, document: dict[str, Any]) -> dict[str, Any]:
        """``document``, marked as from the caller's endpoint when that is known already
        (no lookup), so that kept in the result cache it reads offline and is not
        kept a second time when it is read."""
        if self._owned.get(document.get("endpoint_id", "")) is True:
            document[OWNED_MARK] = True
        return document

    def _trusts_document(self, document: Mapping[str, Any]) -> bool:
        """Trust in the endpoint of a task document; a document this Client cached
        after learning the caller owns that endpoint says so, for reading offline."""
        if document.get(OWNED_MARK) is True:
            return True
        endpoint_id = document.get("endpoint_id")
        if self.trust_all or endpoint_id in self.trusted:
            return True
        if not self.trusts(endpoint_id):
            return False
        if self._remember is not None:  # learnt only now: kept marked, for reading offline
            self._remember({**document, OWNED_MARK: True})
        return True

    def result_serializers(self, endpoint_id: str) -> list[str] | None:
        """What to ask ``endpoint_id`` for when the caller did not say: None if trusted."""
        if self.trusts(endpoint_id) or not self.requested:
            return None
        return self.requested

    # -- reading ----------------------------------------------------------------------

    def read_result(self, document: Mapping[str, Any]) -> Any:
        """The result of a task document, read as far as its endpoint is trusted.

        A result in a strategy that runs no code is read from anyone, without asking
        who owns the endpoint; any other only from a trusted endpoint.
        """
        payload = document["result"]
        ident = payload[:2] if isinstance(payload, str) else ""
        if ident in self.allowed:
            return self.reader.deserialize(payload)
        if self._trusts_document(document):
            return self.serializer.deserialize(payload)
        raise UntrustedResultError(
            self._refusal(document, ident), document.get("endpoint_id"), ident)

    def read_exception(self, document: Mapping[str, Any]) -> BaseException | None:
        """The remote exception rebuilt from ``exception_data``, if that is safe and works.

        From an untrusted endpoint only allowed strategies are read, so an exception
        (which JSON cannot carry) is left unread and the traceback text stands alone.
        """
        data = document.get("exception_data")
        if not data or not isinstance(data, str):
            return None
        try:
            if data[:2] in self.allowed:
                exc = self.reader.deserialize(data)
            elif self._trusts_document(document):
                exc = self.serializer.deserialize(data)
            else:
                return None
        except Exception:  # the service unreachable included: the text is enough
            return None
        return exc if isinstance(exc, BaseException) else None

    def _refusal(self, document: Mapping[str, Any], ident: str) -> str:
        types = self.serializer.registry.types
        what = f"{types[ident].name} ({ident})" if ident in types else repr(ident)
        endpoint_id = document.get("endpoint_id")
        source = (f"endpoint {endpoint_id}, which you do not own" if endpoint_id
                  else "an endpoint the service did not name")
        allowed = ", ".join(
            f"{types[i].name} ({i})" if i in types else i for i in sorted(self.allowed)
        ) or "none"
        how = (f'Client(trusted_endpoints=["{endpoint_id}"])' if endpoint_id
               else 'Client(trusted_endpoints=["*"])')
        return (
            f"task {document.get('task_id')}: its result came from {source}, in {what}, "
            f"a strategy that can run code when it is read, so it was not read. Results from "
            f"endpoints you do not trust are read only in: {allowed}. If you trust whoever "
            f"runs that endpoint, pass {how} (or widen allowed_deserializer_types)."
        )


def _parse_trusted(value: Iterable[Any] | str | None) -> tuple[bool, frozenset[str]]:
    if value is None:
        return False, frozenset()
    items = [value] if isinstance(value, str) else list(value)
    trust_all = any(item == TRUST_ALL for item in items)
    ids = frozenset(canonical_id(i, "trusted_endpoints entry") for i in items if i != TRUST_ALL)
    return trust_all, ids


def _spec(value: Any) -> str:
    """A strategy named by string, or given as a strategy class or instance."""
    if isinstance(value, str):
        return value
    ident = getattr(value, "identifier", None)
    if isinstance(ident, str):
        return ident.strip()
    raise FarcallError(f"allowed_deserializer_types: {value!r} does not name a strategy")
