"""The acceptance matrix (docs/acceptance.md) as a pytest marker and an end-of-run table.

Tag a test with the criteria it proves::

    @pytest.mark.acceptance("D-01")
    @pytest.mark.acceptance("C-01", "C-02")

``pytest -m acceptance`` runs only tagged tests.  Every run ends with a table
``ID | criterion | PASS/FAIL/NOT RUN`` over all ids of the matrix: an id passes
when at least one of its tests passed and none failed, fails when any of its
tests failed (which fails the run anyway), and is NOT RUN otherwise (no tagged
test, or all deselected or skipped).  A tag naming an unknown id is a usage
error, so a typo cannot silently leave a criterion unproven.
"""

from __future__ import annotations

import pytest

#: The criteria, in the order docs/acceptance.md lists them.
CRITERIA: dict[str, str] = {
    "D-01": "clean start creates the DB (WAL files present) and logs system_started",
    "D-02": "after kill -9 and restart, projections and forecasts equal those before the kill; "
    "no acknowledged decision is missing",
    "D-03": "SIGINT/SIGTERM: stops taking intents, flushes, exits 0",
    "D-04": "events is append-only; UPDATE/DELETE refused by the database",
    "D-05": "wiping snapshots and rebuilding yields state equal to full replay",
    "D-06": "identity registration emits identity_registered; no secret in DB, logs or "
    "responses; identity listed by CLI and TUI",
    "D-07": "a registered provider identity is polled within 5 s; observations logged",
    "A-01": "a safe intent gets 200 + approve, decision logged",
    "A-02": "intent round-trip p99 < 10 ms under light load (benchmark)",
    "A-03": "a shaping policy yields approve_with_modifications with wait_seconds > 0",
    "A-04": "a hard rule yields 200 + deny_with_reason naming the rule",
    "P-01": "rising usage emits forecast_computed with falling P50 TTE",
    "P-02": "crossing a reset makes TTE jump back up",
    "P-03": "usage that bypassed ratelord is detected on the next poll (drift_detected) and "
    "state snaps to the provider",
    "P-04": "repeated drift widens uncertainty: P99 TTE becomes shorter than P50 by more",
    "Pol-01": '"deny if remaining < 100" with remaining 90 -> denied, reason cites the rule',
    "Pol-02": "under high risk, background is denied while high urgency is approved",
    "Pol-03": "editing policy.yaml + SIGHUP -> policy_updated; next intent uses the new rules; "
    "no restart",
    "T-01": "TUI activity stream shows decisions < 1 s after they happen",
    "T-02": "TUI header and pool status change colour on WARN/CRIT",
    "T-03": "TUI lists identities with scope, remaining quota and reset time",
    "C-01": "two agents on one identity share a budget: A's use reduces B's remaining",
    "C-02": "two agents on identities with different principals are isolated: A's use leaves "
    "B's budget untouched",
}

MARKER = "acceptance"
PASS, FAIL, NOT_RUN = "PASS", "FAIL", "NOT RUN"
#: The table stays readable in a 100-column terminal; the full text is in CRITERIA.
TEXT_WIDTH = 76


class Matrix:
    """Which tests prove which ids and how each went; registered as a plugin object.

    Under pytest-xdist the workers collect and run the tests while the controller
    prints the summary and never sees an item: each item carries its ids in
    ``user_properties``, which travel with every report to the controller.
    """

    def __init__(self) -> None:
        self.tests_of: dict[str, list[str]] = {}  # id -> node ids
        self.outcome: dict[str, str] = {}  # node id -> PASS/FAIL

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Runs after ``-m``/``-k`` deselection: only the tests that will run count."""
        for item in items:
            criteria = ids_of(item)
            if criteria:
                item.user_properties.append((MARKER, tuple(criteria)))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for name, criteria in report.user_properties:
            if name != MARKER:
                continue
            for criterion in criteria:
                nodes = self.tests_of.setdefault(criterion, [])
                if report.nodeid not in nodes:
                    nodes.append(report.nodeid)
        if report.failed:
            self.outcome[report.nodeid] = FAIL
        elif report.when == "call" and report.passed:
            self.outcome.setdefault(report.nodeid, PASS)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        terminalreporter.section("acceptance matrix (docs/acceptance.md)")
        for line in self.table():
            terminalreporter.write_line(line)

    def status(self, criterion: str) -> str:
        results = {self.outcome.get(node) for node in self.tests_of.get(criterion, [])}
        if FAIL in results:
            return FAIL
        return PASS if PASS in results else NOT_RUN

    def table(self) -> list[str]:
        lines = [f"{'ID':<6} | {'criterion':<{TEXT_WIDTH}} | result"]
        for criterion, text in CRITERIA.items():
            shown = text if len(text) <= TEXT_WIDTH else text[: TEXT_WIDTH - 1] + "…"
            lines.append(f"{criterion:<6} | {shown:<{TEXT_WIDTH}} | {self.status(criterion)}")
        return lines


def ids_of(item: pytest.Item) -> list[str]:
    """The acceptance ids an item is tagged with; an unknown id is a usage error."""
    found: list[str] = []
    for mark in item.iter_markers(MARKER):
        if not mark.args:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.acceptance needs an id")
        for criterion in mark.args:
            if criterion not in CRITERIA:
                raise pytest.UsageError(
                    f"{item.nodeid}: unknown acceptance id {criterion!r}; "
                    f"use one of {', '.join(CRITERIA)}"
                )
            found.append(criterion)
    return found


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "acceptance(id): proves a criterion of the acceptance matrix (docs/acceptance.md)",
    )
    config.pluginmanager.register(Matrix(), "acceptance-matrix")
