"""API errors and the handlers that turn every failure into ``{"code", "message"}``.

The official SDK reads ``code`` and ``message`` from every 4xx/5xx answer, so no
framework default (``{"detail": ...}``) and no traceback may ever reach a client.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy.exc as sa_exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer other than success, with a stable UPPER_SNAKE code."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def not_found(kind: str, ident: object) -> ApiError:
    """The same answer for "does not exist" and "exists but you may not see it"."""
    return ApiError(404, f"{kind.upper()}_NOT_FOUND", f"{kind} {ident} not found")


def forbidden(message: str, code: str = "FORBIDDEN") -> ApiError:
    return ApiError(403, code, message)


def bad_request(code: str, message: str) -> ApiError:
    return ApiError(400, code, message)


def too_deep_to_parse() -> ApiError:
    """The answer to a body or channel message nested too deeply to parse at all (the
    parser ran out of stack); free-form fields have tighter limits (``json_limits``)."""
    return ApiError(400, "JSON_TOO_DEEP", "the JSON is nested too deeply to parse")


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def describe_validation(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(err.get("type") == "json_invalid" for err in errors):
        return error_response(400, "MALFORMED_JSON", "the request body is not valid JSON")
    if errors and all(err.get("loc", ("",))[0] == "path" for err in errors):
        return error_response(400, "INVALID_ID", describe_validation(errors))
    return error_response(422, "INVALID_REQUEST", describe_validation(errors))


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):
        return await _api_error(_request, too_deep_to_parse())  # FastAPI's body parser
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").lower()
    return error_response(exc.status_code, code, message, getattr(exc, "headers", None))


async def _unstorable(request: Request, exc: Exception) -> JSONResponse:
    """The database refused a value (PostgreSQL: a NUL character in text, a number
    out of range): the transaction rolled back, nothing is lost, the caller can fix
    the request. The driver's first line says what; the statement is not echoed."""
    assert isinstance(exc, sa_exc.DataError)
    reason = str(exc.orig).strip().splitlines()[0][:200] if exc.orig else "invalid value"
    log.info("%s %s: the database refused a value: %s", request.method, request.url.path,
             reason)
    return error_response(422, "UNSTORABLE_VALUE",
                          f"a value in the request cannot be stored: {reason}")


async def _database_away(request: Request, exc: Exception) -> JSONResponse:
    """The connection to the database broke (a restart, a terminated backend): the
    transaction did not commit, and the pool replaces the connection; a retry works."""
    assert isinstance(exc, sa_exc.DBAPIError)
    if not exc.connection_invalidated:
        return await _unexpected(request, exc)
    log.warning("%s %s: the database connection was lost: %s", request.method,
                request.url.path, type(exc.orig).__name__)
    return error_response(503, "DATABASE_UNAVAILABLE",
                          "the service lost its database connection; try again",
                          {"Retry-After": "1"})


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error in %s %s", request.method, request.url.path)
    return error_response(500, "INTERNAL_ERROR", "internal error; the service log has details")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(sa_exc.DataError, _unstorable)
    app.add_exception_handler(sa_exc.DBAPIError, _database_away)
    app.add_exception_handler(Exception, _unexpected)
