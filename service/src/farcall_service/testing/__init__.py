"""Contract suites for the plugin kinds farcall-service owns: every implementation,
first-party or third-party, runs them (see docs/plugins.md)."""

import pytest

# The suites' asserts explain their failures as a test module's do.
pytest.register_assert_rewrite(*(
    f"farcall_service.testing.{name}"
    for name in ("store_contract", "store_fixtures", "store_identity_contract",
                 "store_catalogue_contract", "store_task_contract", "store_handoff_contract")
))
