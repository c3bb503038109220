"""Contract suites for the plugin kinds farcall-service owns: every implementation,
first-party or third-party, runs them (see docs/plugins.md)."""

import pkgutil

import pytest

# The suites' asserts explain their failures as a test module's do.
pytest.register_assert_rewrite(*(
    f"farcall_service.testing.{module.name}" for module in pkgutil.iter_modules(__path__)
))
