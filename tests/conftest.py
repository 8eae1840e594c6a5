"""Test-suite-wide plugins."""

pytest_plugins = ["tests.acceptance_plugin"]
