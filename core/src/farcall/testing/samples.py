"""Functions with real source files, for code-strategy contract tests."""

from __future__ import annotations


def add(a, b=2, *, c=3):
    """Return a + b + c."""
    return a + b + c


def platform_name():
    import platform

    return platform.platform()


def greet(firstname, lastname):
    return f"Hello {firstname} {lastname}"
