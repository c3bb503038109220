"""The pluggy markers, apart from everything else so that hookspec modules of any
distribution can import them without importing the manager (no import cycle)."""

from __future__ import annotations

import pluggy

PROJECT_NAME = "farcall"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
