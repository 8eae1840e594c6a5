"""The daemon's API for LLM work: multi-cost intents, the cost × workload rule,
per-model refilling pools learned from headers, and reconciliation (real ratelord-d)."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.e2e.test_cli import ratelord
from tests.support.daemon import RunningDaemon, events, pool, register

MODEL = "gpt-4o-mini"
TOKENS = f"openai:tokens@{MODEL}:org-acme"
REQUESTS = f"openai:requests@{MODEL}:org-acme"


def openai_headers(tokens_left: int, requests_left: int) -> dict[str, str]:
    """OpenAI's headers: TPM 4,000 and RPM 60, refilling continuously over a minute."""
    return {
        "x-ratelimit-limit-tokens": "4000",
        "x-ratelimit-remaining-tokens": str(tokens_left),
        "x-ratelimit-reset-tokens": f"{(4000 - tokens_left) * 60 / 4000:.3f}s",
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": str(requests_left),
        "x-ratelimit-reset-requests": f"{(60 - requests_left) * 1000}ms",
    }


def test_one_intent_charges_requests_and_tokens_per_model(
    daemon_factory: Callable[..., RunningDaemon],
) -> None:
    workloads = {"chat": {f"requests@{MODEL}": 1, f"tokens@{MODEL}": 100}}
    daemon = daemon_factory(config={"workloads": workloads})
    with daemon.client() as http:
        register(http, "key:a", "org-acme", provider_id="openai")
        usage = {"identity_id": "key:a", "model": MODEL, "headers": openai_headers(3870, 59)}
        accepted = http.post("/v1/usage", json=usage)
        assert accepted.status_code == 200, accepted.text
        assert set(accepted.json()["pools"]) == {TOKENS, REQUESTS}
        tokens = pool(http, TOKENS)
        assert tokens is not None
        assert (tokens["window"], tokens["limit"], tokens["unit"]) == ("refill", 4000, "tokens")

        costs = {f"requests@{MODEL}": 1, f"tokens@{MODEL}": 130}
        decision = http.post(
            "/v1/intent", json={"agent_id": "a", "identity_id": "key:a", "costs": costs}
        ).json()
        assert decision["decision"] == "approve", decision
        charged = {p["pool_id"]: p["cost"] for p in decision["evaluation"]["pools"]}
        assert charged == {REQUESTS: 1.0, TOKENS: 130.0}

        # The response said 112 tokens: the reservation is corrected by -18.
        report = {
            "identity_id": "key:a",
            "intent_id": decision["intent_id"],
            "model": MODEL,
            "costs": {f"tokens@{MODEL}": 112},
        }
        assert http.post("/v1/usage", json=report).status_code == 200
        reported = events(http, type="usage_reported")[-1]
        assert reported["payload"]["corrections"] == {TOKENS: -18.0}

        # cost counts units of a workload
        units = http.post(
            "/v1/intent",
            json={"agent_id": "a", "identity_id": "key:a", "workload_id": "chat", "cost": 2},
        ).json()
        charged = {p["pool_id"]: p["cost"] for p in units["evaluation"]["pools"]}
        assert charged == {REQUESTS: 2.0, TOKENS: 200.0}

        # The CLI asks the same way.
        cli = ratelord(
            daemon.url, "intent", "--agent", "me", "--identity", "key:a", "--json",
            "--charge", f"requests@{MODEL}=1", "--charge", f"tokens@{MODEL}=50",
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        charged = {p["pool_id"]: p["cost"] for p in json.loads(cli.stdout)["evaluation"]["pools"]}
        assert charged == {REQUESTS: 1.0, TOKENS: 50.0}
        typo = ratelord(
            daemon.url, "intent", "--agent", "me", "--identity", "key:a", "--charge", "x"
        )
        assert typo.returncode == 2 and "RESOURCE=AMOUNT" in typo.stderr

        # More headers: the bucket refills, it never "resets".
        for left in (3700, 3650, 3900):
            usage["headers"] = openai_headers(left, 58)
            assert http.post("/v1/usage", json=usage).status_code == 200
        assert events(http, type="reset_observed") == []


def test_unknown_workloads_and_ambiguous_costs_get_400_and_nothing_is_logged(
    daemon_factory: Callable[..., RunningDaemon],
) -> None:
    daemon = daemon_factory(config={"workloads": {"chat": {"tokens": 100}, "embed": {"tokens": 5}}})
    with daemon.client() as http:
        register(http, "key:a", "org-acme", provider_id="openai")
        before = len(events(http))
        unknown = http.post(
            "/v1/intent", json={"agent_id": "a", "identity_id": "key:a", "workload_id": "chta"}
        )
        assert unknown.status_code == 400, unknown.text
        error = unknown.json()["error"]
        assert error["code"] == "unknown_workload"
        assert "'chta'" in error["message"] and "chat, embed" in error["message"]
        both = http.post(
            "/v1/intent",
            json={"agent_id": "a", "identity_id": "key:a", "costs": {"tokens": 1}, "cost": 3},
        )
        assert both.status_code == 400 and both.json()["error"]["code"] == "ambiguous_cost"
        bad = http.post(
            "/v1/intent",
            json={"agent_id": "a", "identity_id": "key:a", "costs": {"tokens": -1}},
        )
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"
        assert len(events(http)) == before
