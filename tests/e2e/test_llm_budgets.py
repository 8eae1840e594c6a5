"""A daily money budget, through the REAL openai SDK and a real ratelord-d: calls are
refused before the spend passes the limit, each reservation is corrected to the real
cost, and the budget shows in GET /v1/budgets, /metrics and ``ratelord pools``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx2
import openai
import pytest

from ratelord.client import Client, RatelordTransport
from tests.fakes.llm import FakeLLM
from tests.support.daemon import RunningDaemon, events

pytestmark = pytest.mark.slow

KEY = "sk-test-fake-key-0000000000000000"
#: per million tokens: a call of 9 prompt and 120 output tokens costs $0.02490
PRICES = "currency: USD\nmodels:\n  gpt-4o-mini*: {input: 100.0, output: 200.0}\n"
INPUT, OUTPUT = 100.0 / 1e6, 200.0 / 1e6
MAX_TOKENS = 120


def test_a_daily_budget_of_one_dollar_stops_before_the_spend_passes_it(
    daemon_factory: Callable[..., RunningDaemon], tmp_path: Path
) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(PRICES)
    daemon = daemon_factory(
        config={
            "prices": str(prices),
            "budgets": [{"id": "writer-daily", "agent": "writer", "period": "day", "limit": 1.0}],
        }
    )
    with (
        FakeLLM("openai", rpm=6000, tpm=1_000_000, keys=[KEY]) as fake,
        Client(daemon.url) as ratelord,
    ):
        ratelord.register(identity_id="key:openai", provider_id="openai", principal="org")
        transport = RatelordTransport(
            client=ratelord,
            agent_id="writer",
            identity_id="key:openai",
            llm=True,
            refusal="response",
        )
        api = openai.OpenAI(
            api_key=KEY,
            base_url=f"{fake.url}/v1",
            max_retries=0,
            http_client=httpx2.Client(transport=transport),
        )
        spent, estimates = 0.0, []
        refusal: openai.RateLimitError | None = None
        for _ in range(60):
            try:
                answer = api.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": "Write a short poem about money."}],
                    max_tokens=MAX_TOKENS,
                )
            except openai.RateLimitError as error:
                refusal = error
                break
            assert answer.usage is not None
            spent += answer.usage.prompt_tokens * INPUT + answer.usage.completion_tokens * OUTPUT
        assert refusal is not None, "the budget never stopped the calls"
        assert fake.rejected == 0 and fake.calls > 30, refusal.body
        api.close()
        with daemon.client() as http:
            decided = events(http, type="intent_decided")
        estimates = [
            sum(e["payload"]["money"].values()) for e in decided if e["payload"].get("money")
        ]
        # never over; and stopped only because the next call's estimate would pass $1
        print(f"money: {fake.calls} calls, {spent:.4f} USD, estimates up to {max(estimates):.4f}")
        assert spent <= 1.0
        assert 1.0 - spent < max(estimates), (spent, max(estimates))
        assert "budget 'writer-daily' would pass its daily limit" in str(refusal.body)
        assert refusal.response.headers.get("x-should-retry") == "false"

        with daemon.client() as http:
            (budget,) = http.get("/v1/budgets").json()["budgets"]
            assert budget["spent"] == pytest.approx(spent, abs=1e-5)  # every call reconciled
            assert budget["unsettled"] == 0.0 and budget["calls"] == fake.calls
            assert budget["forecast_end"] >= budget["spent"]
            metrics = http.get("/metrics").text
            assert (
                'ratelord_budget_spent{budget_id="writer-daily",currency="USD",period="day"}'
                in (metrics)
            )

    env = {k: v for k, v in os.environ.items() if not k.startswith("RATELORD_")}
    shown = subprocess.run(
        [str(Path(sys.executable).with_name("ratelord")), "pools"],
        capture_output=True,
        text=True,
        env={**env, "RATELORD_URL": daemon.url, "COLUMNS": "100"},
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    row = next(r for r in shown.stdout.splitlines() if r.startswith("writer-daily"))
    assert "agent=writer" in row and "1.00 USD" in row
