"""Ask-before-request and report-after-response, shared by the httpx transports
and the requests adapter.

A gate asks ratelord-d with the agent's fixed dimensions plus whatever the
``route`` callback says about this request (``cost``, ``resource``,
``costs``, ``identity_id`` or any other intent field), sleeps as told (and asks
again when an approval that waited no longer holds), raises
:class:`RatelordDenied` on a denial, and afterwards reports the response's
rate-limit headers — under the identity the request was really asked for
(the route's, or the one the daemon switched it to), with the LLM model and
the real usage when the transport read them.  Reporting is best-effort: a
failure is logged and the agent's response is returned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Required, TypedDict, TypeVar, Unpack

from ratelord.client._admission import MAX_DEFERRALS, admit, is_deferral
from ratelord.client._base import is_local, report_failed
from ratelord.client._client import AsyncClient, Client
from ratelord.client._exceptions import RatelordDenied, RatelordError
from ratelord.client._lease import REPORT_EVERY, Keeper, is_leased
from ratelord.schema import SENTINEL_GLOBAL, SENTINEL_UNKNOWN, Decision, Urgency, UsageReport

RequestT = TypeVar("RequestT")
#: ``route(request) -> {"cost": 1, "resource": "search", ...}``: this request's intent fields.
Route = Callable[[RequestT], dict[str, Any]]

_REPORTED_PREFIXES = ("x-ratelimit-", "ratelimit", "anthropic-ratelimit-", "anthropic-priority-")
_REPORTED_NAMES = frozenset({"retry-after", "retry-after-ms", "date"})
# UsageReport's bounds; a longer header would get the whole report refused.
_MAX_NAME, _MAX_VALUE = 200, 4000


def rate_limit_headers(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The response headers ratelord-d parses, lower-cased; repeated ones joined by ``, ``."""
    kept: dict[str, str] = {}
    for raw_name, value in items:
        name = raw_name.lower()
        if not (name.startswith(_REPORTED_PREFIXES) or name in _REPORTED_NAMES):
            continue
        kept[name] = f"{kept[name]}, {value}" if name in kept else value
    return {n: v for n, v in kept.items() if len(n) <= _MAX_NAME and len(v) <= _MAX_VALUE}


@dataclass(frozen=True, slots=True)
class Ticket:
    """One asked request: the decision and the intent fields it was asked with."""

    decision: Decision
    fields: Mapping[str, Any]

    @property
    def identity_id(self) -> str:
        """Whose pools the request spent: the daemon's switch, else the one asked for."""
        return self.decision.modifications.identity_switch or str(self.fields["identity_id"])


class GateArgs(TypedDict, Generic[RequestT], total=False):
    """Who asks, and how: the options every transport and adapter passes to its gate."""

    agent_id: Required[str]
    identity_id: Required[str]
    workload_id: str  # default: sentinel:unknown
    scope_id: str  # default: sentinel:global
    urgency: Urgency  # default: normal
    #: this request's intent fields (``cost``, ``resource``, ...)
    route: Route[RequestT] | None
    #: the longest wait taken here; a longer one is refused
    max_wait: float | None
    #: spend from a lease (True), per call (False), or leases once the rate calls for them
    lease: bool | None


class _GateBase(Generic[RequestT]):
    def __init__(self, **args: Unpack[GateArgs[RequestT]]) -> None:
        self._fields: dict[str, Any] = {
            "agent_id": args["agent_id"],
            "identity_id": args["identity_id"],
            "workload_id": args.get("workload_id", SENTINEL_UNKNOWN),
            "scope_id": args.get("scope_id", SENTINEL_GLOBAL),
            "urgency": args.get("urgency", "normal"),
        }
        self._route = args.get("route")
        self._max_wait = args.get("max_wait")
        self._lease = args.get("lease")
        #: When the rate-limit headers of a leased call were last reported.
        self._headers_at = 0.0

    def _intent_fields(
        self, request: RequestT, extra: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Fixed fields, then ``extra`` (the transport's own, e.g. LLM costs), then the route's."""
        return self._fields | dict(extra or {}) | (self._route(request) if self._route else {})

    def _admit(self, decision: Decision) -> float:
        admission = admit(decision, now=time.time(), max_wait=self._max_wait)
        if not admission.allowed:
            raise RatelordDenied(admission.reason or "denied", decision)
        return admission.wait_seconds

    def _headers_due(self, decision: Decision) -> bool:
        """Every call's headers are reported, a leased call's at most every REPORT_EVERY s."""
        if not is_leased(decision):
            return True
        now = time.monotonic()
        if now - self._headers_at < REPORT_EVERY:
            return False
        self._headers_at = now
        return True

    @staticmethod
    def _usage(
        ticket: Ticket,
        headers: Iterable[tuple[str, str]],
        path: str,
        status_code: int,
        extra: Mapping[str, Any] | None,
    ) -> UsageReport:
        """The report of one response; ``extra`` adds ``model`` and ``costs`` (real usage)."""
        decision, fields = ticket.decision, ticket.fields
        return UsageReport(
            agent_id=fields["agent_id"],
            identity_id=ticket.identity_id,
            workload_id=fields["workload_id"],
            scope_id=fields["scope_id"],
            intent_id=None if is_local(decision) or is_leased(decision) else decision.intent_id,
            headers=rate_limit_headers(headers),
            path=path[:2000],
            status_code=status_code if 100 <= status_code <= 599 else None,
            **(extra or {}),
        )


def _too_many_deferrals(decision: Decision) -> RatelordDenied:
    if not is_deferral(decision):  # the last approval no longer held after its wait
        return RatelordDenied(
            f"told to wait {MAX_DEFERRALS + 1} times in a row on an approval that no longer "
            "held; giving up",
            decision,
        )
    return RatelordDenied(
        f"deferred {MAX_DEFERRALS + 1} times in a row by ratelord-d; giving up", decision
    )


class Gate(_GateBase[RequestT]):
    def __init__(self, client: Client, **options: Unpack[GateArgs[RequestT]]) -> None:
        super().__init__(**options)
        self.client = client

    def before(self, request: RequestT, extra: Mapping[str, Any] | None = None) -> Ticket:
        """Ask, then sleep as told; raises :class:`RatelordDenied` on a denial.

        A deferral is slept out and asked again, so the request is charged to the
        window it will actually run in.
        """
        fields = self._intent_fields(request, extra)
        if "costs" not in fields:  # a lease holds one resource: multi-cost calls ask
            local = self.client._leases.spend(
                Keeper.key_of(fields), fields.get("cost") or 1.0, self._lease, lambda: fields
            )
            if local is not None:
                return Ticket(local.decision, fields)
        for _ in range(MAX_DEFERRALS + 1):
            decision = self.client.ask(**fields)
            ticket = Ticket(decision, fields)
            wait = self._admit(decision)
            if wait > 0:
                self.client.sleep(wait)
                if not self.client.approval_holds(decision, ticket.identity_id):
                    continue
            if not is_deferral(decision):
                return ticket
        raise _too_many_deferrals(decision)

    def after(
        self,
        ticket: Ticket,
        headers: Iterable[tuple[str, str]],
        path: str,
        status_code: int,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        if not extra and not self._headers_due(ticket.decision):
            return
        try:
            self.client.report_usage(self._usage(ticket, headers, path, status_code, extra))
        except RatelordError as error:
            report_failed(error)


class AsyncGate(_GateBase[RequestT]):
    def __init__(self, client: AsyncClient, **options: Unpack[GateArgs[RequestT]]) -> None:
        super().__init__(**options)
        self.client = client

    async def before(self, request: RequestT, extra: Mapping[str, Any] | None = None) -> Ticket:
        fields = self._intent_fields(request, extra)
        if "costs" not in fields:
            local = await self.client._leases.spend(
                Keeper.key_of(fields), fields.get("cost") or 1.0, self._lease, lambda: fields
            )
            if local is not None:
                return Ticket(local.decision, fields)
        for _ in range(MAX_DEFERRALS + 1):
            decision = await self.client.ask(**fields)
            ticket = Ticket(decision, fields)
            wait = self._admit(decision)
            if wait > 0:
                await self.client.sleep(wait)
                if not await self.client.approval_holds(decision, ticket.identity_id):
                    continue
            if not is_deferral(decision):
                return ticket
        raise _too_many_deferrals(decision)

    async def after(
        self,
        ticket: Ticket,
        headers: Iterable[tuple[str, str]],
        path: str,
        status_code: int,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        if not extra and not self._headers_due(ticket.decision):
            return
        try:
            await self.client.report_usage(self._usage(ticket, headers, path, status_code, extra))
        except RatelordError as error:
            report_failed(error)
