"""Functions with real source files, for code-strategy contract tests."""

from __future__ import annotations


def add(a: int, b: int = 2, *, c: int = 3) -> int:
    """Return a + b + c."""
    return a + b + c


def platform_name() -> str:
    import platform

    return platform.platform()


def greet(firstname: str, lastname: str) -> str:
    return f"Hello {firstname} {lastname}"
