"""The command service and the poller without a daemon: manual clock, in-memory commit."""

from __future__ import annotations

import random

import pytest

from ratelord.engine.clock import ManualClock
from ratelord.engine.events import Event
from ratelord.engine.observations import PollResult
from ratelord.engine.policy import default_policy
from ratelord.engine.state import PoolState
from ratelord.providers.base import ProviderFailure, ProviderIdentity
from ratelord.providers.mock import (
    MockPoolConfig,
    MockPrincipalConfig,
    MockProvider,
    MockProviderConfig,
)
from ratelord.schema import IdentityCreate, IntentRequest
from ratelord.service import (
    CommandService,
    EngineSettings,
    PollCadence,
    Unavailable,
    build_engine,
    run_sync,
)
from ratelord.service.poller import Poller

NOW = 1_767_225_600.0


def make(guard=None):
    clock, log = ManualClock(), []

    async def commit(events: list[Event]) -> list[Event]:
        log.extend(events)
        return events

    engine = build_engine(EngineSettings(quarantine_after_auth_failures=2), default_policy())
    kwargs = {"guard": guard} if guard else {}
    return CommandService(engine, commit, clock.now, **kwargs), clock, log


def test_build_engine_keeps_every_setting() -> None:
    settings = EngineSettings(
        drift_threshold=0.2, stale_after_seconds=9.0, quarantine_after_auth_failures=7
    )
    config = build_engine(settings, default_policy(), workloads={"w": {"r": 2.0}}).config
    assert (config.drift_threshold, config.stale_after_seconds) == (0.2, 9.0)
    assert config.quarantine_after_auth_failures == 7
    assert config.workloads == {"w": {"r": 2.0}}


def test_commands_commit_what_the_engine_applied_and_tell_listeners() -> None:
    service, _, log = make()
    changed: list[str] = []
    service.identity_listeners.append(changed.append)
    run_sync(service.register(IdentityCreate(identity_id="a", provider_id="mock", principal="p")))
    decision = run_sync(service.intent(IntentRequest(agent_id="x", identity_id="a")))
    assert changed == ["a"]
    assert log[0].event_type == "identity_registered"
    assert log[-1].event_type == "intent_decided" and decision.intent_id


def test_a_closed_guard_refuses_before_the_engine_changes() -> None:
    def closed() -> None:
        raise Unavailable("not now")

    service, _, log = make(guard=closed)
    with pytest.raises(Unavailable):
        run_sync(service.register(IdentityCreate(identity_id="a", provider_id="mock")))
    assert log == [] and service.engine.state.identities == {}


def test_run_sync_refuses_a_command_that_suspends() -> None:
    class Suspends:
        def __await__(self):
            yield None

    async def suspending() -> None:
        await Suspends()

    with pytest.raises(RuntimeError, match="suspended"):
        run_sync(suspending())


def test_cadence_backs_off_with_jitter_and_resets_after_success() -> None:
    cadence = PollCadence(10.0, random.Random(1))
    delays = [cadence.failed(None) for _ in range(4)]
    assert 0.8 <= delays[0] <= 1.2 and 6.4 <= delays[3] <= 9.6
    assert cadence.failed(120.0) >= 120.0
    pools = [pool(posture="OK"), pool(posture="CRIT")]
    assert cadence.succeeded(pools, NOW) == 2.5 and cadence.failures == 0


def test_cadence_confirms_a_reset_just_after_it_and_again_while_it_is_overdue() -> None:
    cadence = PollCadence(120.0, random.Random(1))
    fixed = {"window": "fixed", "window_seconds": 60.0}
    assert cadence.succeeded([pool(reset_at=NOW + 30, **fixed)], NOW) == 31.0
    late = pool(reset_at=NOW + 30, reset_lateness=4.0, **fixed)
    assert cadence.succeeded([late], NOW) == 35.0
    # The provider still announced a reset that is due: look again in a second...
    assert cadence.succeeded([pool(reset_at=NOW - 0.5, **fixed)], NOW) == 1.0
    # ... but not for ever: past the reset's grace, the usual cadence.
    assert cadence.succeeded([pool(reset_at=NOW - 30, **fixed)], NOW) == 120.0
    assert cadence.succeeded([pool(reset_at=NOW + 30)], NOW) == 120.0  # not a fixed window


def pool(**fields: object) -> PoolState:
    return PoolState(
        pool_id="mock:requests:acct",
        provider_id="mock",
        resource="requests",
        principal="acct",
        **fields,  # type: ignore[arg-type]
    )


class Failing:
    provider_id = "mock"

    async def poll(self, identity: ProviderIdentity, now: float) -> PollResult:
        raise ProviderFailure("auth", "bad credential", status_code=401)

    def default_window_seconds(self, resource: str) -> float | None:
        return None

    async def aclose(self) -> None:
        return None


def test_poller_steps_without_an_event_loop() -> None:
    service, clock, log = make()
    mock = MockProvider(
        MockProviderConfig(
            principals={"p": MockPrincipalConfig(pools={"r": MockPoolConfig(limit=100)})}
        ),
        start=clock.now(),
    )
    run_sync(service.register(IdentityCreate(identity_id="a", provider_id="mock", principal="p")))
    delay = run_sync(Poller(service, mock, "a", 5.0, timeout=None).poll_once())
    assert delay == 5.0 and service.engine.state.pools["mock:r:p"].remaining == 100

    failing = Poller(service, Failing(), "a", 5.0, timeout=None, rng=random.Random(0))
    run_sync(failing.poll_once())
    run_sync(failing.poll_once())
    assert service.engine.state.identities["a"].status == "quarantined"
    assert "provider_error" in {e.event_type for e in log}
