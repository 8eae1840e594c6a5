"""The engine on a manual clock: arbitration, accounting, drift, and exact replay."""

from __future__ import annotations

from ratelord.engine.clock import ManualClock
from ratelord.engine.events import Event, IdFactory
from ratelord.engine.policy import default_policy, load_policy_text
from ratelord.engine.state import State
from ratelord.providers.mock import (
    MockPoolConfig,
    MockPrincipalConfig,
    MockProvider,
    MockProviderConfig,
)
from ratelord.schema import IdentityCreate, IdentityRotate, IntentRequest, UsageReport
from ratelord.service import CommandService, EngineSettings, build_engine, run_sync


class World:
    """The command service on a manual clock with an in-memory log, and a mock provider
    that is spent as the daemon spends it."""

    def __init__(self, policy=None, limit: float = 1000, window: float = 3600, **engine_cfg):
        self.clock = ManualClock()
        self.mock = MockProvider(
            MockProviderConfig(
                principals={
                    p: MockPrincipalConfig(
                        pools={"requests": MockPoolConfig(limit=limit, window_seconds=window)}
                    )
                    for p in ("acct-1", "acct-2")
                }
            ),
            start=self.clock.now(),
        )
        self.engine = build_engine(
            EngineSettings(**engine_cfg), policy or default_policy(), ids=IdFactory("t")
        )
        self.log: list[Event] = []
        self.commands = CommandService(self.engine, self._commit, self.clock.now)
        self.commands.charge_listeners.append(
            lambda charges, _: self.mock.spend_charges(
                self.engine.state.pools, charges, self.clock.now()
            )
        )

    async def _commit(self, events: list[Event]) -> list[Event]:
        self.log += events
        return events

    def register(self, identity_id: str, principal: str) -> None:
        run_sync(
            self.commands.register(
                IdentityCreate(identity_id=identity_id, provider_id="mock", principal=principal)
            )
        )
        self.poll(identity_id)

    def poll(self, identity_id: str) -> list[Event]:
        principal = self.engine.state.identities[identity_id].principal
        seen = len(self.log)
        result = self.mock.observe(principal, self.clock.now())
        run_sync(self.commands.observe_poll(identity_id, result))
        return self.log[seen:]

    def ask(self, identity_id: str = "id-a", **fields):
        request = IntentRequest(
            agent_id=fields.pop("agent_id", "agent"),
            identity_id=identity_id,
            resource=fields.pop("resource", "requests"),
            **fields,
        )
        return run_sync(self.commands.intent(request))

    def pool(self, principal: str = "acct-1"):
        return self.engine.state.pools[f"mock:requests:{principal}"]


def test_safe_intent_is_approved_and_reserved() -> None:
    w = World()
    w.register("id-a", "acct-1")
    d = w.ask(cost=10)
    assert d.decision == "approve"
    assert w.pool().remaining == 990
    assert [e.event_type for e in w.log[-3:]].count("intent_decided") == 1


def test_unknown_revoked_and_quarantined_identities_are_denied() -> None:
    w = World()
    assert "unknown identity" in w.ask("ghost").reason
    w.register("id-a", "acct-1")
    run_sync(w.commands.change_identity("id-a", "quarantine", IdentityRotate(reason="leak")))
    d = w.ask()
    assert d.decision == "deny_with_reason" and "quarantined (leak)" in d.reason


def test_physical_floor_defers_until_the_reset() -> None:
    w = World(limit=100)
    w.register("id-a", "acct-1")
    d = w.ask(cost=150 - 60)
    assert d.allowed
    d = w.ask(cost=20, urgency="high")
    assert d.decision == "approve_with_modifications"
    assert d.modifications.defer_until is not None
    assert "physical-floor" in " ".join(d.evaluation.rules_fired)


def test_two_identities_of_one_principal_share_the_pool() -> None:
    w = World()
    w.register("id-a", "acct-1")
    w.register("id-b", "acct-1")
    w.register("id-c", "acct-2")
    w.ask("id-a", cost=100)
    assert w.pool("acct-1").remaining == 900
    assert w.pool("acct-2").remaining == 1000
    assert w.engine.state.members(w.pool("acct-1")) == ["id-a", "id-b"]


def test_shape_rule_gives_a_wait() -> None:
    policy = load_policy_text("""
policies:
  - id: pace
    target: global
    kind: soft
    rules:
      - name: always
        when: 'true'
        action: shape
        params: {wait_seconds: 2.5}
""")
    w = World(policy=policy)
    w.register("id-a", "acct-1")
    d = w.ask()
    assert d.decision == "approve_with_modifications"
    assert d.modifications.wait_seconds == 2.5
    assert d.evaluation.rules_fired == ["pace/always"]


def test_switch_identity_proposes_a_safe_one() -> None:
    policy = load_policy_text("""
policies:
  - id: spill
    target: identity:id-a
    kind: soft
    rules:
      - name: move-when-low
        when: 'pool.remaining < 500.0'
        action: switch_identity
""")
    w = World(policy=policy)
    w.register("id-a", "acct-1")
    w.register("id-c", "acct-2")
    w.ask("id-a", cost=600)
    d = w.ask("id-a", cost=10)
    assert d.decision == "approve_with_modifications"
    assert d.modifications.identity_switch == "id-c"
    assert w.pool("acct-2").remaining == 990


def test_external_usage_is_drift_and_snaps_to_the_provider() -> None:
    w = World()
    w.register("id-a", "acct-1")
    w.ask(cost=10)
    w.mock.spend("acct-1", "requests", 300, w.clock.now())
    w.clock.advance(5)
    events = w.poll("id-a")
    drift = [e for e in events if e.event_type == "drift_detected"]
    assert len(drift) == 1 and drift[0].payload.difference == 300
    assert w.pool().remaining == 690
    assert w.pool().drift_count == 1


def test_reported_usage_corrects_the_reservation() -> None:
    w = World()
    w.register("id-a", "acct-1")
    d = w.ask(cost=10)
    run_sync(w.commands.usage(UsageReport(identity_id="id-a", intent_id=d.intent_id, cost=4)))
    assert w.pool().remaining == 996


def test_replaying_the_log_twice_gives_identical_bytes() -> None:
    w = World()
    w.register("id-a", "acct-1")
    w.register("id-b", "acct-2")
    for i in range(50):
        w.clock.advance(1.5)
        w.ask("id-a" if i % 2 else "id-b", cost=float(i % 7 + 1), agent_id=f"agent-{i % 4}")
        if i % 10 == 0:
            w.mock.spend("acct-1", "requests", 25, w.clock.now())
            w.poll("id-a")
    first, second = State(), State()
    first.apply_all(w.log)
    second.apply_all(w.log)
    assert first.encode() == second.encode() == w.engine.state.encode()
