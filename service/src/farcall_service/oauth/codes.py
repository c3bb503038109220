"""Authorization codes and PKCE (RFC 7636).

A code is shown to the user once and stored only as its hash. PKCE binds it to the
client process that started the login: only the holder of ``code_verifier`` can
redeem it, so a code copied from a screen or a log is useless to anyone else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

CODE_PREFIX = "fcc_"
#: RFC 7636: 43-128 characters from the unreserved set.
VERIFIER_RE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
CHALLENGE_RE = re.compile(r"^[A-Za-z0-9_-]{43,128}$")


def new_code() -> str:
    return CODE_PREFIX + secrets.token_urlsafe(32)


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def valid_challenge(challenge: str, method: str) -> str | None:
    """None when usable, else why not. Only S256: ``plain`` would defeat the purpose."""
    if method != "S256":
        return "code_challenge_method must be S256"
    if not CHALLENGE_RE.match(challenge):
        return "code_challenge must be 43-128 base64url characters"
    return None


def pkce_matches(verifier: str, challenge: str) -> bool:
    if not VERIFIER_RE.match(verifier or ""):
        return False
    return hmac.compare_digest(s256(verifier), challenge)
