"""User passwords, hashed with scrypt from the standard library.

scrypt is memory-hard, so a stolen database does not give passwords away cheaply;
parameters are stored with each hash so they can be raised later without a migration.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

N, R, P = 2**14, 8, 1
MAX_PASSWORD_CHARS = 1024


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p, dklen=32,
        maxmem=64 * 1024 * 1024,
    )


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64), for :func:`verify_password`."""
    if not password:
        raise ValueError("a password may not be empty")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"a password may not be longer than {MAX_PASSWORD_CHARS} characters")
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, N, R, P)
    return "$".join(
        ["scrypt", str(N), str(R), str(P), _b64(salt), _b64(digest)]
    )


def verify_password(password: str, stored: str | None) -> bool:
    """Constant-time check; a user without a password never matches."""
    if not stored or not password or len(password) > MAX_PASSWORD_CHARS:
        # Spend the same effort, so timing does not tell which users have passwords.
        _scrypt("x", b"0" * 16, N, R, P)
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, base64.b64decode(digest))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
