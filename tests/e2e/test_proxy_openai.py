"""``ratelord proxy`` in front of an OpenAI-shaped server, driven by the official SDK."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from ratelord.engine.clock import parse_iso
from tests.fakes.llm import FakeLLM
from tests.support.daemon import RunningDaemon, events, register, wait_for
from tests.support.proxy import RunningProxy, start_proxy

KEY = "sk-test-fake-key-0000000000000000"
IDENTITY = "openai:acme"
TOKENS_POOL = "openai:tokens@gpt-4o-mini:org-acme"
REQUESTS_POOL = "openai:requests@gpt-4o-mini:org-acme"


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    with FakeLLM("openai", rpm=60, tpm=4000, keys=[KEY], chunks=4, chunk_delay=0.25) as fake:
        yield fake


@pytest.fixture
def governed(
    daemon_factory: Callable[..., RunningDaemon], llm: FakeLLM, tmp_path: Path
) -> Iterator[tuple[RunningDaemon, RunningProxy]]:
    """A daemon that knows the key by reference, and a proxy in front of ``llm``."""
    daemon = daemon_factory(env={"OPENAI_API_KEY": KEY})
    with daemon.client() as http:
        register(http, IDENTITY, "org-acme", "openai", secret_ref="env:OPENAI_API_KEY")
    proxy = start_proxy(daemon, {"openai": {"kind": "openai", "url": llm.url}}, tmp_path)
    yield daemon, proxy
    proxy.stop()
    assert KEY not in proxy.logs() and KEY not in daemon.logs()


SDK = Callable[..., openai.OpenAI]


@pytest.fixture
def sdk() -> Iterator[SDK]:
    """``sdk(proxy, key=KEY)``: the official client with its base URL on the proxy."""
    made: list[openai.OpenAI] = []

    def make(proxy: RunningProxy, key: str = KEY) -> openai.OpenAI:
        made.append(openai.OpenAI(base_url=f"{proxy.url}/openai/v1", api_key=key, max_retries=0))
        return made[-1]

    yield make
    for client in made:
        client.close()


def chat(client: openai.OpenAI, **extra: Any) -> Any:
    return client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Say ok. " * 14}],
        max_tokens=100,
        **extra,
    )


def test_a_call_is_asked_for_forwarded_and_reconciled(
    governed: tuple[RunningDaemon, RunningProxy], llm: FakeLLM, sdk: SDK
) -> None:
    daemon, proxy = governed
    answer = chat(sdk(proxy))
    assert answer.usage is not None and answer.usage.total_tokens == 128
    assert llm.calls == 1
    with daemon.client() as http:
        decided = events(http, type="intent_decided", identity_id=IDENTITY)
        assert len(decided) == 1 and decided[0]["payload"]["decision"] == "approve"
        # one ask charges a request and the token estimate, on the model's pools
        assert set(decided[0]["payload"]["charges"]) == {TOKENS_POOL, REQUESTS_POOL}
        reported = wait_for(
            lambda: events(http, type="usage_reported", identity_id=IDENTITY), what="usage"
        )
        # the body's usage, not the estimate
        assert reported[0]["payload"]["costs"] == {"tokens@gpt-4o-mini": 128}
        observed = {e["pool_id"] for e in events(http, type="usage_observed")}
        assert TOKENS_POOL in observed  # learnt from the headers


def test_a_stream_arrives_chunk_by_chunk_and_is_reconciled(
    governed: tuple[RunningDaemon, RunningProxy], llm: FakeLLM, sdk: SDK
) -> None:
    daemon, proxy = governed
    started = time.monotonic()
    arrivals = []
    usage = None
    for chunk in chat(sdk(proxy), stream=True, stream_options={"include_usage": True}):
        arrivals.append(time.monotonic() - started)
        usage = chunk.usage or usage
    # 4 text chunks and a usage chunk, 0.25 s apart upstream: the first is not held back.
    assert len(arrivals) == 5
    assert arrivals[-1] - arrivals[0] > 0.8, arrivals
    assert usage is not None and usage.total_tokens == 128
    with daemon.client() as http:
        reported = wait_for(
            lambda: events(http, type="usage_reported", identity_id=IDENTITY), what="usage"
        )
        assert reported[0]["payload"]["costs"] == {"tokens@gpt-4o-mini": 128}


def test_a_refusal_is_a_429_in_openais_shape(
    governed: tuple[RunningDaemon, RunningProxy], llm: FakeLLM, sdk: SDK
) -> None:
    daemon, proxy = governed
    client = sdk(proxy)
    chat(client)  # the daemon learns the pools from this answer's headers
    with daemon.client() as http:
        wait_for(lambda: events(http, type="usage_observed"), what="the pools")
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=50_000
        )
    response = refused.value.response
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    error = response.json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert error["message"].startswith("ratelord: ")
    assert llm.calls == 1  # the refused call never reached the server


def test_unknown_and_missing_credentials_are_refused_before_the_server(
    governed: tuple[RunningDaemon, RunningProxy], llm: FakeLLM, sdk: SDK
) -> None:
    _, proxy = governed
    with pytest.raises(openai.PermissionDeniedError, match="not registered"):
        chat(sdk(proxy, key="sk-not-registered-with-ratelord-00000"))
    answer = httpx.post(f"{proxy.url}/openai/v1/chat/completions", json={"model": "m"})
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "ratelord_no_credential"
    missing = httpx.get(f"{proxy.url}/nowhere/v1")
    assert missing.status_code == 404 and "/openai" in missing.json()["error"]["message"]
    assert llm.calls == 0


def test_without_the_daemon_the_proxy_fails_safe(
    governed: tuple[RunningDaemon, RunningProxy], llm: FakeLLM, sdk: SDK
) -> None:
    daemon, proxy = governed
    daemon.kill()
    with pytest.raises(openai.InternalServerError) as refused:
        chat(sdk(proxy))
    assert refused.value.response.status_code == 503
    assert refused.value.response.json()["error"]["code"] == "ratelord_unavailable"
    assert llm.calls == 0


#: The issue's setup: RPM 60, TPM 4,000, 60 calls of 128 tokens, but in a 15 s "minute"
#: (the fake refills 4× faster), so the run is 4× shorter with the same shape.
MINUTE = 15.0
CALLS = 60


def prescribed_wait(decided: dict[str, Any]) -> float:
    """The seconds an ``intent_decided`` event told its caller to wait before sending."""
    modifications = decided["payload"]["modifications"]
    wait = modifications["wait_seconds"] or 0.0
    if modifications["defer_until"] is not None:
        wait += max(0.0, parse_iso(modifications["defer_until"]) - decided["ts_event"])
    return float(wait)


@pytest.mark.slow
def test_sixty_calls_get_no_429_and_wait_at_most_1_2x_the_ideal_time(
    daemon_factory: Callable[..., RunningDaemon], tmp_path: Path, sdk: SDK
) -> None:
    with FakeLLM("openai", rpm=60, tpm=4000, keys=[KEY], minute=MINUTE) as llm:
        daemon = daemon_factory(env={"OPENAI_API_KEY": KEY})
        with daemon.client() as http:
            register(http, IDENTITY, "org-acme", "openai", secret_ref="env:OPENAI_API_KEY")
        proxy = start_proxy(
            daemon, {"openai": {"kind": "openai", "url": llm.url}}, tmp_path, max_wait_seconds=60
        )
        client = sdk(proxy)
        failures = []
        for _ in range(CALLS):
            try:
                chat(client)
            except openai.RateLimitError as error:
                failures.append(error.response.json()["error"]["message"])
        proxy.stop()
        with daemon.client() as http:
            decided = events(http, type="intent_decided", identity_id=IDENTITY)
    # The server charges 128 per call at admission; a full bucket holds 4,000.
    ideal = (CALLS * 128 - 4000) / (4000 / MINUTE)
    assert llm.rejected == 0, f"{llm.rejected} server 429s"
    assert not failures, failures[:3]
    # Ratelord's share of the run is the waits it asked for; the rest is the calls
    # themselves, which the other test workers on these cores stretch at will (and
    # while they do, the bucket refills, so the waits ratelord needs only get shorter).
    waits = [prescribed_wait(e) for e in decided]
    assert sum(waits) <= 1.2 * ideal, f"{sum(waits):.1f} s of waits against an ideal {ideal:.1f} s"
