"""API tokens: high-entropy random strings, stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "fc_"


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form. A fast hash suffices: tokens carry 256 random bits."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
