"""Money budgets in the engine: priced from the table, refused before the limit, corrected
by the real cost, per period, replayed from the log, and read by policies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ratelord.engine import budgets
from ratelord.engine.budgets import Budget
from ratelord.engine.leases import decide_lease
from ratelord.engine.policy import load_policy_text
from ratelord.engine.state import State
from ratelord.llm import Price, PriceTable
from ratelord.schema import LeaseRequest, Tokens
from tests.unit.test_llm_engine import MODEL, OpenAIWorld

#: $1 per 1,000 input tokens and $2 per 1,000 output tokens: round numbers to check.
PRICES = PriceTable(models={"gpt-4o-mini*": Price(input=1000.0, output=2000.0)}, source="t.yaml")
CHARGES = {f"requests@{MODEL}": 1, f"tokens@{MODEL}": 130}


def world(*rules: Budget, **config) -> OpenAIWorld:
    w = OpenAIWorld(budgets=rules, prices=PRICES, **config)
    w.report(None)  # the headers make the pools known
    return w


def ask(w: OpenAIWorld, inp: int = 30, out: int = 100, **fields):
    tokens = Tokens(model=MODEL, input=inp, output=out)
    return w.ask(costs=CHARGES, tokens=tokens, **fields)


def spent(w: OpenAIWorld, budget: Budget) -> float:
    return budgets.budget_view(budget, w.engine.state.budgets, w.now, "USD").spent


def test_a_daily_budget_stops_before_the_limit_and_never_passes_it() -> None:
    daily = Budget(id="daily", limit=1.0)
    w = world(daily)
    approved = 0
    while True:
        decision = ask(w)  # 0.03 + 0.20 = $0.23 at most
        if decision.decision == "deny_with_reason":
            break
        approved += 1
        w.report(decision.intent_id, tokens=Tokens(model=MODEL, input=30, output=100))
        w.now += 1
    assert approved == 4  # 4 × 0.23 = 0.92; a fifth would reach 1.15
    assert spent(w, daily) == pytest.approx(0.92)
    assert "budget 'daily' would pass its daily limit" in (decision.reason or "")
    assert "0.9200 of 1.00 USD committed" in (decision.reason or "")


def test_the_real_cost_corrects_the_estimate_once() -> None:
    daily = Budget(id="daily", limit=1.0)
    w = world(daily)
    decision = ask(w)
    assert spent(w, daily) == pytest.approx(0.23)
    real = Tokens(model=MODEL, input=30, output=10)  # 0.03 + 0.02
    w.report(decision.intent_id, tokens=real)
    assert spent(w, daily) == pytest.approx(0.05)
    w.report(decision.intent_id, tokens=real)  # a repeated report corrects nothing
    assert spent(w, daily) == pytest.approx(0.05)
    ledger = w.engine.state.budgets[budgets.ledger_key(daily, w.now)]
    assert ledger.unsettled == 0.0 and ledger.calls == 1


def test_budgets_match_agent_identity_and_labels() -> None:
    mine = Budget(id="mine", limit=5.0, agent="agent")
    other = Budget(id="other", limit=5.0, agent="someone-else")
    team = Budget(id="team", limit=5.0, labels={"team": "research"})
    key = Budget(id="key", limit=5.0, identity="key:a", period="month")
    w = world(mine, other, team, key)
    ask(w, labels={"team": "research"})
    ask(w, labels={"team": "infra"})
    assert spent(w, mine) == pytest.approx(0.46)
    assert spent(w, other) == 0.0
    assert spent(w, team) == pytest.approx(0.23)
    assert spent(w, key) == pytest.approx(0.46)


def test_without_tokens_the_charges_are_priced_at_the_dearer_price() -> None:
    daily = Budget(id="daily", limit=1.0)
    w = world(daily)
    w.ask(costs=CHARGES)  # 130 tokens, input or output unknown: $2 per 1,000
    assert spent(w, daily) == pytest.approx(0.26)


def test_a_model_without_a_price_is_refused_with_what_to_do() -> None:
    w = world(Budget(id="daily", limit=1.0))
    decision = w.ask(costs=CHARGES, tokens=Tokens(model="mystery-1", input=1, output=1))
    assert decision.decision == "deny_with_reason"
    assert "cannot price model 'mystery-1'" in (decision.reason or "")
    assert "t.yaml" in (decision.reason or "")


def test_a_new_period_starts_from_nothing() -> None:
    daily = Budget(id="daily", limit=0.5)
    w = world(daily)
    assert ask(w).decision == "approve"
    assert ask(w).decision == "approve"
    assert ask(w).decision == "deny_with_reason"
    _, end = budgets.period_bounds("day", w.now)
    w.now = end + 1
    w.report(None)
    assert spent(w, daily) == 0.0
    assert ask(w).decision == "approve"


def test_the_ledgers_replay_from_the_log() -> None:
    daily = Budget(id="daily", limit=1.0)
    w = world(daily)
    decision = ask(w)
    w.report(decision.intent_id, tokens=Tokens(model=MODEL, input=30, output=40))
    ask(w)
    replayed = State()
    replayed.apply_all(w.log)
    assert replayed.encode() == w.engine.state.encode()
    assert replayed.budgets == w.engine.state.budgets


def test_period_bounds_are_utc_days_and_months() -> None:
    ts = datetime(2026, 12, 31, 23, 0, tzinfo=UTC).timestamp()
    start, end = budgets.period_bounds("month", ts)
    assert datetime.fromtimestamp(start, UTC) == datetime(2026, 12, 1, tzinfo=UTC)
    assert datetime.fromtimestamp(end, UTC) == datetime(2027, 1, 1, tzinfo=UTC)
    start, end = budgets.period_bounds("day", ts)
    assert end - start == 86_400


def test_the_forecast_carries_the_run_rate_to_the_period_end() -> None:
    daily = Budget(id="daily", limit=100.0)
    ledgers = {budgets.ledger_key(daily, 0.0): budgets.BudgetLedger(spent=6.0)}
    noon = 12 * 3600.0
    view = budgets.budget_view(daily, ledgers, noon, "USD")
    assert view.forecast_end == pytest.approx(12.0)  # $6 in 12 h: $12 by midnight
    assert view.remaining == 94.0


def test_policies_read_the_budget_variables() -> None:
    policy = load_policy_text(
        """
policies:
  - id: money
    rules:
      - name: save-for-urgent-work
        when: budget.forecast_end > budget.limit && intent.urgency != "high"
        action: deny
        reason: "budget {budget.id} would reach {budget.forecast_end:.2f} by the end of the day"
"""
    )
    w = world(Budget(id="daily", limit=1.0))
    w.engine.policy = policy
    w.now = budgets.period_bounds("day", w.now)[1] + 10  # a new day begins
    w.report(None)
    assert ask(w).decision == "approve"  # nothing spent yet: nothing forecast
    w.now += 3600
    assert ask(w, urgency="high").decision == "approve"
    refused = ask(w)
    assert refused.decision == "deny_with_reason"
    assert "budget daily would reach" in (refused.reason or "")


def test_a_lease_on_a_pool_that_costs_money_is_refused_so_calls_ask_each_time() -> None:
    w = world(Budget(id="daily", limit=100.0))
    request = LeaseRequest(
        agent_id="agent", identity_id="key:a", resource=f"tokens@{MODEL}", units=1000
    )
    lease, _ = decide_lease(w.engine, request, w.now)
    assert lease.status == "refused" and lease.granted == 0
    assert "counts in money budget 'daily', which a lease cannot charge" in (lease.reason or "")
    free = LeaseRequest(
        agent_id="agent", identity_id="key:a", resource=f"requests@{MODEL}", units=5
    )
    assert decide_lease(w.engine, free, w.now)[0].granted > 0  # requests cost no money
