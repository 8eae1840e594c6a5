"""``client.guard(...)``: ask, wait as told, run the body, report usage on exit.

::

    with client.guard(identity="pat:alice", workload="repo_scan", report_cost=1) as g:
        if g.allowed:
            call_the_api()

The wait happens *before* the body runs.  A deferral (``defer_until``) is not a
reservation: after sleeping until the reset the guard asks again, so the work is
charged to the new window.  An approval told to wait is checked again after the
wait (``Client.approval_holds``): expired or revoked, the guard asks again too (at
most :data:`MAX_DEFERRALS` times in all).  A denied guard
still runs the body (check ``g.allowed``) unless ``raise_on_deny=True``, which raises
:class:`RatelordDenied` instead.  Usage is reported only for an allowed body,
best-effort: a failed report is logged, never raised over the body's outcome.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Required, Self, TypedDict

import msgspec

from ratelord.client._admission import MAX_DEFERRALS, admit, is_deferral
from ratelord.client._base import is_local, report_failed
from ratelord.client._exceptions import RatelordDenied, RatelordError
from ratelord.client._lease import HeldLease, labels_key
from ratelord.schema import SENTINEL_UNKNOWN, Decision, Urgency, UsageReport

if TYPE_CHECKING:
    from ratelord.client._client import AsyncClient, Client


class GuardArgs(TypedDict, total=False):
    """Keyword arguments of ``Client.guard`` / ``AsyncClient.guard``."""

    identity: Required[str]
    workload: str
    scope: str
    urgency: Urgency
    agent: str
    cost: float
    resource: str
    labels: dict[str, str]
    can_wait: bool
    max_wait: float | None
    report_cost: float | None
    raise_on_deny: bool
    lease: bool | None


class GuardOptions(msgspec.Struct, frozen=True, kw_only=True):
    """A guard's options (a Struct: made once per guarded call, so it must be cheap)."""

    identity: str
    workload: str | None = None
    scope: str | None = None
    urgency: Urgency | None = None
    agent: str | None = None
    cost: float | None = None
    resource: str | None = None
    labels: dict[str, str] = {}
    can_wait: bool = True
    max_wait: float | None = None
    report_cost: float | None = None
    raise_on_deny: bool = False
    #: Spend from a lease: True always, False never, None when the call rate is high.
    lease: bool | None = None

    def lease_key(self) -> tuple[object, ...]:
        return (
            self.agent,
            self.identity,
            self.workload,
            self.scope,
            self.resource,
            self.urgency,
            labels_key(self.labels),
        )

    def intent_fields(self) -> dict[str, Any]:
        """The intent's fields; unset ones are left to the schema's defaults (sentinels)."""
        fields = {
            "agent_id": self.agent,
            "identity_id": self.identity,
            "workload_id": self.workload,
            "scope_id": self.scope,
            "urgency": self.urgency,
            "resource": self.resource,
            "cost": self.cost,
        }
        fields = {name: value for name, value in fields.items() if value is not None}
        fields.setdefault("agent_id", SENTINEL_UNKNOWN)
        return fields | ({"labels": self.labels} if self.labels else {})


class _GuardState:
    """The non-I/O half shared by :class:`Guard` and :class:`AsyncGuard`."""

    def __init__(self, options: GuardOptions) -> None:
        self.options = options
        self.decision: Decision | None = None
        self.allowed = False
        self.reason: str | None = None
        self.waited = 0.0
        self._cost = options.report_cost
        self._held: HeldLease | None = None

    @property
    def identity(self) -> str:
        """The identity to use: the daemon's ``identity_switch`` if it proposed one."""
        switch = self.decision.modifications.identity_switch if self.decision else None
        return switch or self.options.identity

    def report(self, cost: float) -> None:
        """Report ``cost`` (what the body actually spent) when the guard exits."""
        self._cost = cost

    def _admit(self, decision: Decision) -> float:
        """Record the decision; the seconds to sleep before the body, or raise if asked to."""
        options = self.options
        admission = admit(
            decision, now=time.time(), can_wait=options.can_wait, max_wait=options.max_wait
        )
        self.decision = decision
        self.allowed = admission.allowed
        self.reason = admission.reason
        if not admission.allowed and options.raise_on_deny:
            raise RatelordDenied(admission.reason or "denied", decision)
        self.waited += admission.wait_seconds
        return admission.wait_seconds

    def _must_ask_again(self, attempt: int, holds: bool = True) -> bool:
        """After sleeping out a deferral, or a wait whose approval no longer ``holds``
        (revoked or expired), ask again; give up after MAX_DEFERRALS."""
        again = self.allowed and (
            not holds or (self.decision is not None and is_deferral(self.decision))
        )
        if again and attempt >= MAX_DEFERRALS:
            self.allowed = False
            what = "deferred" if holds else "told to wait on an approval that no longer held"
            self.reason = f"{what} {attempt + 1} times in a row by ratelord-d; giving up"
            if self.options.raise_on_deny:
                assert self.decision is not None
                raise RatelordDenied(self.reason, self.decision)
            return False
        return again

    def _leased(self, held: HeldLease | None) -> bool:
        """Enter on a lease's local decision, if the call was spent from one."""
        if held is None:
            return False
        self._held, self.decision, self.allowed = held, held.decision, True
        return True

    def _leased_exit(self) -> bool:
        """A leased call reports in its lease's batch; correct what it took if told.

        False: the call was not spent from a lease (it reports on its own).
        """
        held = self._held
        if held is None:
            return False
        if self._cost is not None:
            held.adjust(self._cost - self._taken())
        return True

    def _taken(self) -> float:
        """What the call took from its lease: its cost, else one unit."""
        return self.options.cost or 1.0

    def _usage(self) -> UsageReport | None:
        if not self.allowed or self._cost is None or self.decision is None:
            return None
        fields = self.options.intent_fields()
        same = {
            k: fields[k] for k in ("agent_id", "workload_id", "scope_id", "resource") if k in fields
        }
        return UsageReport(
            **same,
            identity_id=self.identity,
            intent_id=None if is_local(self.decision) else self.decision.intent_id,
            cost=self._cost,
        )


class Guard(_GuardState):
    """Synchronous guard; made by :meth:`Client.guard`."""

    def __init__(self, client: Client, options: GuardOptions) -> None:
        super().__init__(options)
        self._client = client

    def __enter__(self) -> Self:
        options, leases = self.options, self._client._leases
        local = leases.spend(
            options.lease_key(), options.cost or 1.0, options.lease, options.intent_fields
        )
        if self._leased(local):
            return self
        for attempt in range(MAX_DEFERRALS + 1):
            wait = self._admit(self._client.ask(**self.options.intent_fields()))
            holds = True
            if wait > 0:
                self._client.sleep(wait)
                assert self.decision is not None
                holds = self._client.approval_holds(self.decision, self.identity)
            if not self._must_ask_again(attempt, holds):
                break
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._leased_exit():
            return
        usage = self._usage()
        if usage is not None:
            try:
                self._client.report_usage(usage)
            except RatelordError as error:
                report_failed(error)


class AsyncGuard(_GuardState):
    """Asynchronous guard; made by :meth:`AsyncClient.guard`."""

    def __init__(self, client: AsyncClient, options: GuardOptions) -> None:
        super().__init__(options)
        self._client = client

    async def __aenter__(self) -> Self:
        options, leases = self.options, self._client._leases
        local = await leases.spend(
            options.lease_key(), options.cost or 1.0, options.lease, options.intent_fields
        )
        if self._leased(local):
            return self
        for attempt in range(MAX_DEFERRALS + 1):
            wait = self._admit(await self._client.ask(**self.options.intent_fields()))
            holds = True
            if wait > 0:
                await self._client.sleep(wait)
                assert self.decision is not None
                holds = await self._client.approval_holds(self.decision, self.identity)
            if not self._must_ask_again(attempt, holds):
                break
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._leased_exit():
            return
        usage = self._usage()
        if usage is not None:
            try:
                await self._client.report_usage(usage)
            except RatelordError as error:
                report_failed(error)
