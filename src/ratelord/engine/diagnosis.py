"""Failing identities, in words: what is wrong with each one and what fixes it.

A failed poll belongs to the identity that was polled (and to the pools of its
principal), not to its whole provider: one bad token must not put every other
identity of the provider in fail-safe mode.  Health, the arbiter and the CLI
describe a failure with the same words from here, and only say "retry" when
waiting can help.
"""

from __future__ import annotations

from ratelord.engine.state import IdentityRecord, PoolState, State, principal_key

#: Failures that pass by themselves: ratelord keeps polling with backoff.
PASSING = frozenset({"rate_limited", "server", "timeout", "network"})

_FIX = {
    "auth": "the provider refused its credential: rotate it "
    "(ratelord identity rotate {id} --secret-ref env:NAME)",
    "forbidden": "its credential may not read rate limits: grant that permission, "
    "or rotate to a credential that has it",
    "config": "fix its secret reference or principal as the message says, then "
    "ratelord identity rotate {id} (or revoke it)",
    "not_found": "the provider has no such endpoint or principal: check the provider's "
    "settings (base_url, principals) or revoke the identity",
    "parse": "the provider's answer was unreadable: check providers.<id>.base_url",
}


def fix_for(record: IdentityRecord) -> str:
    """What a person should do about ``record``'s failing polls."""
    kind = record.poll_error_kind or "unknown"
    if kind in PASSING:
        return "nothing: it passes by itself; ratelord keeps polling with backoff"
    return _FIX.get(kind, "see the daemon log, then rotate or revoke it").format(
        id=record.identity_id
    )


def describe(record: IdentityRecord) -> str:
    """One line: the identity, its failure and the fix."""
    return (
        f"identity {record.identity_id} ({record.provider_id}) cannot be polled: "
        f"{record.poll_error_kind}: {record.poll_error or 'no detail'} — fix: {fix_for(record)}"
    )


def failing(state: State) -> list[IdentityRecord]:
    """Identities whose last poll failed (revoked ones are never listed)."""
    return [
        record
        for record in state.identities.values()
        if record.poll_error_kind is not None and record.status != "revoked"
    ]


def failing_members(state: State, pool: PoolState) -> list[str]:
    """Identities of ``pool``'s principal whose polls fail: the pool is not being observed."""
    status = state.providers.get(pool.provider_id)
    if status is None or not status.failing_identities:
        return []
    members = []
    for identity_id in status.failing_identities:
        record = state.identities.get(identity_id)
        if (
            record is not None
            and record.principal is not None
            and principal_key(record.provider_id, record.principal) == pool.principal
        ):
            members.append(identity_id)
    return sorted(members)
