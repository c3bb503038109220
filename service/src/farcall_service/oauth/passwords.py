"""User passwords, hashed with scrypt from the standard library.

scrypt is memory-hard, so a stolen database does not give passwords away cheaply;
parameters are stored with each hash so they can be raised later without a migration:
an older hash still verifies, and :func:`needs_rehash` tells the sign-in to store a new
one. Each hash holds ``128 * R * N`` bytes (32 MiB) while it runs, which is why the
sign-in page runs only a few at once (``max_concurrent_hashes``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

N, R, P = 2**15, 8, 1
MAX_PASSWORD_CHARS = 1024
#: Stored hashes with a larger cost are refused rather than computed.
MAX_N = 2**17


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    if not 1 < n <= MAX_N or not 0 < r <= 32 or not 0 < p <= 4:
        raise ValueError("scrypt parameters out of range")
    return hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p, dklen=32,
        maxmem=2 * 128 * r * n + 1024 * 1024,
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


def needs_rehash(stored: str | None) -> bool:
    """Whether a hash that just verified was made with other parameters than today's."""
    if not stored:
        return False
    return stored.split("$")[1:4] != [str(N), str(R), str(P)]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
