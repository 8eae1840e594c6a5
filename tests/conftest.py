"""Test-suite-wide plugins: the acceptance matrix, and pytester to test that plugin."""

pytest_plugins = ["tests.acceptance_plugin", "tests.support.postgres", "pytester"]
