"""Test helpers for farcall's distributions (see the README)."""
