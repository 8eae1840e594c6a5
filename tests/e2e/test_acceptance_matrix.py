"""The acceptance-matrix plugin itself, run on small generated test files (no daemon)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.acceptance_plugin import CRITERIA

TESTS = """
import pytest

@pytest.mark.acceptance("D-01")
def test_passes():
    pass

@pytest.mark.acceptance("D-04", "A-01")
def test_fails():
    assert False

@pytest.mark.acceptance("A-01")
def test_also_passes():
    pass

@pytest.mark.acceptance("P-01")
def test_skipped():
    pytest.skip("not here")

@pytest.fixture
def broken():
    raise RuntimeError("setup failed")

@pytest.mark.acceptance("C-01")
def test_setup_error(broken):
    pass

def test_untagged():
    pass
"""


@pytest.fixture(autouse=True)
def _ini(pytester: pytest.Pytester) -> None:
    """The inner runs get the settings our own suite runs with."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def statuses(output: str) -> dict[str, str]:
    """``{id: result}`` from the table at the end of the run."""
    table = output.split("acceptance matrix (docs/acceptance.md)", 1)[1]
    found = {}
    for line in table.splitlines():
        match = re.match(r"^(\S+)\s+\|.*\|\s+(PASS|FAIL|NOT RUN)\s*$", line)
        if match:
            found[match[1]] = match[2]
    return found


def test_the_table_lists_every_id_with_pass_fail_or_not_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_inprocess("-p", "tests.acceptance_plugin")
    result.assert_outcomes(passed=3, failed=1, skipped=1, errors=1)
    found = statuses(result.stdout.str())
    assert list(found) == list(CRITERIA)
    assert found["D-01"] == "PASS"
    assert found["D-04"] == "FAIL"
    assert found["A-01"] == "FAIL"  # one passing test does not outweigh a failing one
    assert found["P-01"] == "NOT RUN"  # skipped
    assert found["C-01"] == "FAIL"  # an error in setup is a failure
    assert found["T-01"] == "NOT RUN"  # no test tagged


def test_dash_m_acceptance_runs_only_tagged_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_inprocess("-p", "tests.acceptance_plugin", "-m", "acceptance")
    result.assert_outcomes(passed=2, failed=1, skipped=1, errors=1)
    assert "1 deselected" in result.stdout.str()


def test_a_deselected_test_does_not_count(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_inprocess("-p", "tests.acceptance_plugin", "-k", "passes")
    found = statuses(result.stdout.str())
    assert found["A-01"] == "PASS"
    assert found["D-04"] == "NOT RUN"


def test_an_unknown_id_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.acceptance("D-99")
        def test_typo():
            pass
        """
    )
    result = pytester.runpytest_inprocess("-p", "tests.acceptance_plugin")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown acceptance id 'D-99'" in result.stderr.str()


def test_the_table_is_the_same_when_pytest_xdist_runs_the_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The suite runs under ``-n``: the controller prints the table from the workers' reports."""
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    # Only the two plugins at play: the others' imports (schemathesis, playwright...)
    # would cost each of the three processes seconds.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(TESTS)
    plugins = ("-p", "xdist.plugin", "-p", "tests.acceptance_plugin")
    result = pytester.runpytest_subprocess(*plugins, "-n", "2")
    result.assert_outcomes(passed=3, failed=1, skipped=1, errors=1)
    found = statuses(result.stdout.str())
    assert list(found) == list(CRITERIA)
    assert (found["D-01"], found["D-04"], found["A-01"]) == ("PASS", "FAIL", "FAIL")
    assert (found["P-01"], found["C-01"], found["T-01"]) == ("NOT RUN", "FAIL", "NOT RUN")
