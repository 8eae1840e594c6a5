"""Posture (OK/WARN/CRIT) as the dashboard uses it: ordering, colours, the global gauge, and
which pool limits an identity."""

from __future__ import annotations

from collections.abc import Iterable

from ratelord.schema import Identity, Pool, Posture

SEVERITY: dict[Posture, int] = {"OK": 0, "WARN": 1, "CRIT": 2}

POSTURE_COLOR: dict[Posture, str] = {"OK": "green", "WARN": "yellow", "CRIT": "red"}

#: Rich styles of the status badges; the TCSS classes ``-ok/-warn/-crit`` use the same hues.
BADGE_STYLE: dict[Posture, str] = {
    "OK": "bold black on green",
    "WARN": "bold black on yellow",
    "CRIT": "bold white on red",
}


def worst(postures: Iterable[Posture]) -> Posture:
    """The most severe posture, ``OK`` for none at all."""
    return max(postures, key=SEVERITY.__getitem__, default="OK")


def max_risk(pools: Iterable[Pool]) -> float:
    """The highest probability of exhaustion before reset over all pools (0 without forecasts)."""
    return max((p.forecast.p_exhaustion for p in pools if p.forecast is not None), default=0.0)


def fraction_left(pool: Pool) -> float:
    """Remaining over limit; pools without a known limit or remaining sort as full."""
    if pool.limit is None or pool.remaining is None or pool.limit <= 0:
        return 1.0
    return pool.remaining / pool.limit


def tightest_pool(identity: Identity, pools_by_id: dict[str, Pool]) -> Pool | None:
    """The identity's pool that limits it most: worst posture first, then least left."""
    candidates = [pools_by_id[p] for p in identity.pools if p in pools_by_id]
    return min(
        candidates, key=lambda p: (-SEVERITY[p.status], fraction_left(p), p.pool_id), default=None
    )
