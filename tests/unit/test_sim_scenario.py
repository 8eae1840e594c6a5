"""Scenario files: strict decoding, precise errors, invariants, and the ``ratelord sim`` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from ratelord.cli.main import app
from ratelord.sim import ScenarioError, load_scenario, parse_scenario, run_scenario
from ratelord.sim.behaviour import PhaseGate
from ratelord.sim.invariants import InvariantError, parse_check
from ratelord.sim.report import percentile
from ratelord.sim.scenario import Phase

SMALL = """
name: small
duration_seconds: 1800
pools:
  acct-a:
    pools:
      requests: {limit: 100, window_seconds: 600}
identities:
  - {id: tok-a, principal: acct-a}
agents:
  - name: worker
    count: 2
    identities: [tok-a]
    resource: requests
    behaviour: {kind: periodic, every_seconds: 30}
"""


def small(**changes: object) -> str:
    data = yaml.safe_load(SMALL)
    data.update(changes)
    return yaml.safe_dump(data)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"colour": "blue"}, "unknown field `colour`"),
        ({"duration_seconds": -5}, "duration_seconds"),
        (
            {"pools": {"acct-a": {"pools": {"requests": {"limit": -1}}}}},
            "limit",
        ),
        ({"identities": [{"id": "tok-a", "principal": "acct-zzz"}]}, "'acct-zzz' has no pools"),
        ({"invariants": ["nonsense >= 1"]}, "unknown metric 'nonsense'"),
        ({"invariants": ["honest_429s is zero"]}, "expected 'METRIC[SELECTOR] OP NUMBER'"),
        ({"failures": [{"start": 0, "end": 10, "principals": ["nope"]}]}, "unknown principal"),
    ],
)
def test_a_bad_scenario_names_what_is_wrong(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError, match=r"^small\.yaml: ") as caught:
        parse_scenario(small(**changes), "small.yaml")
    assert message in str(caught.value)


def test_an_agent_on_an_unknown_identity_is_refused() -> None:
    data = yaml.safe_load(SMALL)
    data["agents"][0]["identities"] = ["ghost"]
    with pytest.raises(ScenarioError, match="unknown identity 'ghost'"):
        parse_scenario(yaml.safe_dump(data))


def test_a_broken_policy_is_refused_when_the_run_starts() -> None:
    scenario = parse_scenario(small(policy="policies: [{id: x}]"))
    with pytest.raises(ScenarioError, match="policy rejected"):
        run_scenario(scenario)


def test_policy_file_is_read_relative_to_the_scenario(tmp_path: Path) -> None:
    rule = {"name": "no", "when": "true", "action": "deny"}
    doc = {"policies": [{"id": "p", "target": "global", "kind": "soft", "rules": [rule]}]}
    (tmp_path / "deny.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "s.yaml").write_text(small(policy_file="deny.yaml"))
    report = run_scenario(load_scenario(tmp_path / "s.yaml"))
    assert report.overall.denials == report.overall.intents > 0


# --------------------------------------------------------------------------- invariants


def test_invariants_are_judged_on_the_report() -> None:
    checks = ["honest_429s == 0", "completed[worker] >= 1", "denials > 0", "utilisation_min < 0"]
    report = run_scenario(parse_scenario(small(invariants=checks)))
    verdicts = {v.check: v.passed for v in report.invariants}
    assert verdicts == {
        "honest_429s == 0": True,
        "completed[worker] >= 1": True,
        "denials > 0": False,
        "utilisation_min < 0": False,
    }
    assert report.passed is False


def test_a_metric_without_a_value_fails_its_check() -> None:
    report = run_scenario(parse_scenario(small(invariants=["high_urgency_success >= 0.5"])))
    assert report.invariants[0].value is None
    assert not report.passed


def test_a_selector_on_a_global_metric_is_refused() -> None:
    with pytest.raises(InvariantError, match="takes no"):
        parse_check("honest_429s[worker] == 0")


# --------------------------------------------------------------------------- properties


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1), st.floats(0, 100))
def test_percentile_is_one_of_the_values_and_monotonic(values: list[float], q: float) -> None:
    assert percentile(values, q) in values
    assert percentile(values, q) <= percentile(values, 100) == max(values)


@given(st.lists(st.tuples(st.floats(0, 1000), st.floats(1, 1000)), max_size=5), st.floats(0, 3000))
def test_phase_gate_never_opens_outside_a_phase(
    spans: list[tuple[float, float]], at: float
) -> None:
    phases = [Phase(name=f"p{i}", start=s, end=s + d) for i, (s, d) in enumerate(spans)]
    gate = PhaseGate(phases, [p.name for p in phases] or ["none"])
    active = gate.next_active(at)
    if active is not None:
        assert active >= at
        assert any(p.start <= active < p.end for p in phases)


# --------------------------------------------------------------------------- command


def run_cli(*args: str) -> Result:
    return CliRunner().invoke(app, ["sim", *args], env={"COLUMNS": "200"})


def test_cli_json_is_deterministic_and_exit_zero(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(small(invariants=["honest_429s == 0"]))
    first, second = run_cli(str(path), "--json"), run_cli(str(path), "--json", "--seed", "0")
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout
    assert json.loads(first.stdout)["passed"] is True


def test_cli_exits_1_when_an_invariant_fails(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(small(invariants=["completed == 0"]))
    result = run_cli(str(path))
    assert result.exit_code == 1
    assert "FAIL" in result.stdout
    assert "completed == 0" in result.stdout


def test_cli_exits_2_on_an_invalid_scenario(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(small(colour="blue"))
    result = run_cli(str(path))
    assert result.exit_code == 2
    assert "unknown field `colour`" in result.output


def test_cli_compares_strategies_side_by_side(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(small())
    result = run_cli(str(path), "--compare")
    assert result.exit_code == 0, result.output
    for name in ("ratelord", "none", "token-bucket", "leases"):
        assert name in result.stdout
    as_json = json.loads(run_cli(str(path), "--compare", "--json").stdout)
    assert [r["strategy"] for r in as_json] == ["ratelord", "none", "token-bucket", "leases"]
