"""Test helpers farcall ships for plugin authors (and uses on its own plugins)."""
