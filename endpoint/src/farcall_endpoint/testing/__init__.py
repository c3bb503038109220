"""Contract suites for the plugin kinds farcall-endpoint owns: every implementation,
first-party or third-party, runs them (see docs/plugins.md)."""
