"""Money budgets: at most so much money per day or month, per agent, workload, team or key.

A budget (``budgets:`` in the daemon's config) caps the money of the LLM calls
it matches::

    budgets:
      - id: writer-daily
        agent: writer          # any of agent, workload, identity, labels (all must match);
        period: day            # none of them: every priced call
        limit: 1.00            # in the price table's currency
      - id: research-monthly
        labels: {team: research}
        period: month
        limit: 200

A call's money comes from the price table (``ratelord.llm``, per million
tokens) and its tokens: the intent's ``tokens`` (model, input, output, the
SDK sends the estimate), else its per-model charges (``tokens@gpt-4o-mini``
priced at the dearer of the input and output price, ``input-tokens@…`` and
``output-tokens@…`` at theirs).  An intent is refused when a matching budget's
money already committed plus this call's most would pass the limit, so spend
never passes it by more than what the calls under way really cost beyond
their estimates (none: an estimate counts ``max_tokens`` written).  The usage
report corrects the reservation to the real cost.

``spent`` is committed money: reconciled calls at their real cost, calls
not reported yet at their estimate (``unsettled``).  Periods are UTC days and
months, each with its own ledger; a new period starts from nothing.
``forecast_end`` carries the period's run rate (spent ÷ time since the period
began, at least :data:`MIN_SPAN_SECONDS`) to the period's end.

No clock and no I/O: every time comes from an event or the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec

from ratelord.engine.clock import iso
from ratelord.llm import Price, PriceTable, Usage, split_model_resource
from ratelord.schema import MoneyBudget, Tokens

__all__ = [
    "Assessment",
    "Budget",
    "BudgetLedger",
    "Period",
    "PriceTable",
    "apply_money",
    "assess",
    "budget_view",
    "call_money",
    "ledger_key",
    "matching",
    "period_bounds",
    "settle",
]

Period = Literal["day", "month"]
Money = Annotated[float, msgspec.Meta(gt=0, le=1e12)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\s]+$")]

#: The run rate is measured over at least this long (a first call alone is not a rate).
MIN_SPAN_SECONDS = 3600.0
#: Ledgers kept (the newest; a budget has one per period).
LEDGERS_MEMORY = 1_000


class Budget(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One cap: ``limit`` money per ``period`` on the calls it matches."""

    id: Name
    limit: Money
    period: Period = "day"
    agent: Name | None = None
    workload: Name | None = None
    #: the key: an identity id
    identity: Name | None = None
    #: a team, or any label: every one must be on the intent (or its identity)
    labels: dict[str, str] = {}

    def matches(
        self,
        agent_id: str,
        workload_id: str,
        identity_id: str,
        labels: Mapping[str, str],
        identity_labels: Mapping[str, str],
    ) -> bool:
        return (
            (self.agent is None or self.agent == agent_id)
            and (self.workload is None or self.workload == workload_id)
            and (self.identity is None or self.identity == identity_id)
            and all(
                labels.get(key, identity_labels.get(key)) == value
                for key, value in self.labels.items()
            )
        )


class BudgetLedger(msgspec.Struct, kw_only=True):
    """One budget's money in one period (a projection, rebuilt from events)."""

    spent: float = 0.0
    #: of ``spent``, estimates of calls whose real cost is not reported yet
    unsettled: float = 0.0
    calls: int = 0


def period_bounds(period: str, ts: float) -> tuple[float, float]:
    """The UTC day or month that holds ``ts``: (start, end) in epoch seconds."""
    when = datetime.fromtimestamp(ts, UTC)
    if period == "day":
        start = when.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.timestamp(), start.timestamp() + 86_400.0
    start = when.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start.timestamp(), end.timestamp()


def matching(
    budgets: Iterable[Budget],
    agent_id: str,
    workload_id: str,
    identity_id: str,
    labels: Mapping[str, str],
    identity_labels: Mapping[str, str],
) -> list[Budget]:
    return [
        b for b in budgets if b.matches(agent_id, workload_id, identity_id, labels, identity_labels)
    ]


def call_money(
    prices: PriceTable, tokens: Tokens | None, costs: Mapping[str, float]
) -> tuple[float, list[str]]:
    """Money of one call, from its ``tokens`` or else its per-model ``costs``
    (resource → amount), and the models the table has no price for."""
    if tokens is None:
        return _charges_money(prices, costs)
    price = prices.price(tokens.model)
    if price is None:
        return 0.0, [tokens.model]
    usage = Usage(
        model=tokens.model,
        input_tokens=tokens.input,
        output_tokens=tokens.output,
        cached_input_tokens=tokens.cached_input,
    )
    return price.cost(usage), []


def _charges_money(prices: PriceTable, costs: Mapping[str, float]) -> tuple[float, list[str]]:
    """Money of per-model charges (``tokens@model`` …) and the models that have no price.

    A ``tokens`` bucket mixes input and output, so it is priced at the dearer of the two.
    """
    total, unpriced = 0.0, []
    for resource, amount in costs.items():
        bucket, model = split_model_resource(resource)
        if model is None or bucket == "requests":
            continue
        price = prices.price(model)
        if price is None:
            unpriced.append(model)
            continue
        total += amount * _per_token(price, bucket)
    return total, unpriced


def _per_token(price: Price, bucket: str) -> float:
    if bucket == "input-tokens":
        return price.input / 1e6
    if bucket == "output-tokens":
        return price.output / 1e6
    return max(price.input, price.output) / 1e6


def ledger_key(budget: Budget, ts: float) -> str:
    """The ledger of ``budget``'s period that holds ``ts``: ``writer-daily@2026-11-28``.

    Events carry these keys, so a call reported after its period ended settles the
    period it was charged to, and replay needs no configuration.
    """
    when = datetime.fromtimestamp(ts, UTC)
    return f"{budget.id}@{when:%Y-%m-%d}" if budget.period == "day" else f"{budget.id}@{when:%Y-%m}"


def apply_money(
    ledgers: dict[str, BudgetLedger], money: Mapping[str, float], *, settles: bool
) -> None:
    """Fold one event's money (ledger key → amount) into the ledgers.

    A new call's estimate is committed and unsettled; a report (``settles``) moves
    the committed money by the difference to the real cost, and settles the call.
    """
    for key, amount in money.items():
        ledger = ledgers.get(key)
        if ledger is None:
            ledger = ledgers[key] = BudgetLedger()
            if len(ledgers) > 2 * LEDGERS_MEMORY:
                for old in list(ledgers)[: len(ledgers) - LEDGERS_MEMORY]:
                    del ledgers[old]
        ledger.spent = max(0.0, ledger.spent + amount)
        if not settles:
            ledger.unsettled += amount
            ledger.calls += 1


def settle(ledgers: dict[str, BudgetLedger], reserved: Mapping[str, float]) -> None:
    """The calls reserved ``reserved`` (ledger key → estimate) are reported: settled."""
    for key, amount in reserved.items():
        ledger = ledgers.get(key)
        if ledger is not None:
            ledger.unsettled = max(0.0, ledger.unsettled - amount)


def budget_view(
    budget: Budget, ledgers: Mapping[str, BudgetLedger], now: float, currency: str
) -> MoneyBudget:
    ledger = ledgers.get(ledger_key(budget, now)) or BudgetLedger()
    start, end = period_bounds(budget.period, now)
    rate = ledger.spent / max(now - start, MIN_SPAN_SECONDS)
    return MoneyBudget(
        budget_id=budget.id,
        period=budget.period,
        limit=budget.limit,
        spent=round(ledger.spent, 6),
        unsettled=round(ledger.unsettled, 6),
        remaining=round(max(0.0, budget.limit - ledger.spent), 6),
        forecast_end=round(ledger.spent + rate * max(0.0, end - now), 6),
        period_end=iso(end) or "",
        seconds_to_end=round(end - now, 3),
        calls=ledger.calls,
        currency=currency,
        agent=budget.agent,
        workload=budget.workload,
        identity=budget.identity,
        labels=budget.labels,
    )


class Assessment(msgspec.Struct, kw_only=True):
    """What the budgets an intent matches make of it."""

    #: this call's money at most (its estimate)
    cost: float
    #: ledger key → the money to commit if the call is approved
    money: dict[str, float]
    #: the matching budgets as they stand, the one nearest its limit first
    views: list[MoneyBudget]
    #: why the call must not be approved, or None
    refusal: str | None = None


def assess(
    prices: PriceTable,
    ledgers: Mapping[str, BudgetLedger],
    matched: list[Budget],
    tokens: Tokens | None,
    costs: Mapping[str, float],
    now: float,
) -> Assessment:
    """Check one call against the budgets it matches (``matched``, non-empty)."""
    cost, unpriced = call_money(prices, tokens, costs)
    views = sorted(
        (budget_view(b, ledgers, now, prices.currency) for b in matched),
        key=lambda v: (v.spent + cost) / v.limit,
        reverse=True,
    )
    assessment = Assessment(
        cost=cost, money={ledger_key(b, now): cost for b in matched if cost > 0}, views=views
    )
    if unpriced:
        assessment.refusal = (
            f"budget {views[0].budget_id!r} cannot price model {unpriced[0]!r}: the price "
            f"table ({prices.source or 'built-in'}) has no entry for it; add one (input, "
            "output, cached_input per million tokens) and restart the daemon"
        )
    elif views[0].spent + cost > views[0].limit:
        view, unit = views[0], prices.currency
        assessment.refusal = (
            f"budget {view.budget_id!r} would pass its {_PERIOD_WORD[view.period]} limit: "
            f"{view.spent:,.4f} of {view.limit:,.2f} {unit} committed, this call may cost "
            f"{cost:,.4f}; the budget starts again at {view.period_end}"
        )
    return assessment


_PERIOD_WORD = {"day": "daily", "month": "monthly"}
