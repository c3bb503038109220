"""Contract suites for the plugin kinds farcall-service owns: every implementation,
first-party or third-party, runs them (see docs/plugins.md)."""
