"""The command service: every write to ratelord goes through here.

A command asks the engine (which applies its events to the projections at
once) and hands the events to ``commit`` before it answers, so the log always
holds what the projections saw.  The service knows nothing of HTTP, the store
or the event loop's background work, so the daemon, the simulator and the
tests all run the very same code:

* the daemon passes the group-commit writer's ``append`` as ``commit``, the wall
  clock, and a ``guard`` that refuses writes while it is booting or stopping;
* the simulator and unit tests pass a :class:`~ratelord.engine.clock.ManualClock`'s
  ``now`` and an in-memory commit, and drive the coroutines without an event
  loop through :func:`run_sync` (a synchronous commit never suspends)::

      clock, log = ManualClock(), []

      async def commit(events):
          log.extend(events)
          return events

      service = CommandService(build_engine(EngineSettings(), policy), commit, clock.now)
      decision = run_sync(service.intent(IntentRequest(...)))

Between a command's engine call and its hand-over to ``commit`` there is no
``await``: the writer queues events in the order the engine made them, which
is what makes the log replay into the same state.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from msgspec import UNSET

from ratelord.engine import approvals
from ratelord.engine.arbitration import Decided, decide
from ratelord.engine.core import IDENTITY_CHANGES, Engine, EngineError
from ratelord.engine.events import Event, IdentityChangedPayload, IdentityRotatedPayload
from ratelord.engine.observations import PollResult
from ratelord.engine.observe import observe_error, observe_poll, observe_usage
from ratelord.engine.policy import CompiledPolicy, PolicyError, default_policy, load_policy_file
from ratelord.headers import pool_observations
from ratelord.providers.secrets import SecretError, fingerprint, resolve
from ratelord.schema import (
    ApprovalCheck,
    Decision,
    Identity,
    IdentityCreate,
    IdentityRotate,
    IntentRequest,
    UsageAccepted,
    UsageReport,
)

log = logging.getLogger("ratelord.service")

T = TypeVar("T")
#: Append events durably; returns them as stored (with ``seq``).
Commit = Callable[[list[Event]], Awaitable[Sequence[Event]]]
#: Told what reached the provider: (pool id → cost, seconds until it is spent there).
ChargeListener = Callable[[dict[str, float], float], None]
#: Called after an identity was registered or changed.
IdentityListener = Callable[[str], None]


class Unavailable(Exception):
    """Writes are refused now (booting, stopping, or the log failed); try again later."""

    def __init__(self, reason: str, retry_after: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class PolicyRejected(EngineError):
    """A policy file that does not load; the previous policy stays in force."""


def _always_open() -> None:
    return None


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command to completion without an event loop (commit must not suspend)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("run_sync: the command suspended; its commit must be synchronous")


class CommandService:
    def __init__(
        self,
        engine: Engine,
        commit: Commit,
        clock: Callable[[], float],
        *,
        policy_file: str | None = None,
        guard: Callable[[], None] = _always_open,
    ) -> None:
        self.engine = engine
        self.now = clock
        self.policy_file = policy_file
        self._commit = commit
        #: raises :class:`Unavailable` when writes are refused
        self.guard = guard
        self.charge_listeners: list[ChargeListener] = []
        self.identity_listeners: list[IdentityListener] = []

    async def commit(self, events: list[Event]) -> Sequence[Event]:
        return await self._commit(events) if events else events

    # ------------------------------------------------------------------ agents

    async def intent(self, request: IntentRequest) -> Decision:
        self.guard()
        decided = decide(self.engine, request, self.now())
        await self.commit(decided.events)
        self.decided(decided)
        return decided.decision

    def decided(self, decided: Decided) -> None:
        """After an intent's events are durable: report rule errors, pass the charges on."""
        if decided.policy_errors:
            log.warning(
                "policy rules failed at run time for intent %s: %s",
                decided.decision.intent_id,
                "; ".join(decided.policy_errors),
            )
        if decided.charges:
            self.charged(decided.charges, decided.decision.modifications.wait_seconds)

    def charged(self, charges: dict[str, float], wait_seconds: float) -> None:
        """Tell the listeners that ``charges`` reach the provider in ``wait_seconds``."""
        for listener in self.charge_listeners:
            listener(charges, wait_seconds)

    async def usage(self, report: UsageReport) -> UsageAccepted:
        self.guard()
        now = self.now()
        observations = (
            pool_observations(report.headers, now=now, path=report.path, model=report.model)
            if report.headers
            else []
        )
        accepted, events = observe_usage(self.engine, report, observations, now)
        await self.commit(events)
        return accepted

    async def check_approval(self, intent_id: str) -> ApprovalCheck:
        """Before spending an approval that waited: does it still hold?  Revoked if not."""
        self.guard()
        holds, reason, events = approvals.check(self.engine, intent_id, self.now())
        await self.commit(events)
        return ApprovalCheck(intent_id=intent_id, holds=holds, reason=reason)

    # ------------------------------------------------------------------ identities

    async def register(self, request: IdentityCreate) -> Identity:
        self.guard()
        events = self.engine.register_identity(
            request, self.now(), token_fingerprint=_fingerprint(request.secret_ref)
        )
        await self.commit(events)
        self._identity_changed(request.identity_id)
        return self.engine.identity_view(self.engine.identity(request.identity_id))

    async def change_identity(
        self, identity_id: str, action: str, body: IdentityRotate
    ) -> Identity:
        """Rotate (a new ``secret_ref``, or the same one re-checked), revoke or quarantine."""
        self.guard()
        reason = UNSET if body.reason is None else body.reason
        if action == "rotate":
            secret_ref = body.secret_ref or self.engine.identity(identity_id).secret_ref
            payload: IdentityChangedPayload = IdentityRotatedPayload(
                secret_ref=secret_ref, reason=reason, token_fingerprint=_fingerprint(secret_ref)
            )
        else:
            payload = IDENTITY_CHANGES[action](reason=reason)
        events = self.engine.change_identity(identity_id, self.now(), payload)
        await self.commit(events)
        self._identity_changed(identity_id)
        return self.engine.identity_view(self.engine.identity(identity_id))

    def _identity_changed(self, identity_id: str) -> None:
        for listener in self.identity_listeners:
            listener(identity_id)

    # ------------------------------------------------------------------ providers

    async def observe_poll(self, identity_id: str, result: PollResult) -> None:
        self.guard()
        await self.commit(observe_poll(self.engine, identity_id, result))

    async def observe_failure(
        self,
        identity_id: str,
        *,
        kind: str,
        message: str,
        retry_after: float | None = None,
        status_code: int | None = None,
    ) -> None:
        self.guard()
        await self.commit(
            observe_error(
                self.engine,
                identity_id,
                kind=kind,
                message=message,
                now=self.now(),
                retry_after=retry_after,
                status_code=status_code,
            )
        )

    async def refresh_forecasts(self) -> None:
        """Forecasts decay with silence: let idle pools' forecasts catch up."""
        self.guard()
        await self.commit(self.engine.refresh_forecasts(list(self.engine.state.pools), self.now()))

    # ------------------------------------------------------------------ policy

    async def reload_policy(self, origin: str) -> CompiledPolicy:
        """Reload the policy file; a bad file is rejected and the old policy stays."""
        self.guard()
        source = self.policy_file
        now = self.now()
        try:
            policy = load_policy_file(source) if source else default_policy()
        except PolicyError as exc:
            kept = self.engine.policy.version
            log.error("policy rejected (%s), keeping %s: %s", origin, kept, exc)
            await self.commit(self.engine.reject_policy(exc, source or "built-in", now))
            raise PolicyRejected(
                "policy_rejected", f"{exc} (the previous policy {kept} stays in force)"
            ) from None
        await self.commit(self.engine.set_policy(policy, now))
        log.info("policy %s loaded from %s (%s)", policy.version, policy.source, origin)
        return policy


def _fingerprint(secret_ref: str | None) -> str | None:
    if secret_ref is None:
        return None
    try:
        return fingerprint(resolve(secret_ref))
    except SecretError as exc:  # registered anyway; polling will report it
        log.warning("secret reference not resolvable yet: %s", exc)
        return None
