"""The application layer between the engine and its hosts (daemon, simulator, tests).

:mod:`~ratelord.service.commands` is the one way to change ratelord's state,
:mod:`~ratelord.service.assembly` builds the engine, :mod:`~ratelord.service.cadence`
and :mod:`~ratelord.service.poller` decide when and how providers are polled.
Nothing here imports the daemon, the store or an HTTP framework.
"""

from ratelord.service.assembly import EngineSettings, build_engine, engine_over
from ratelord.service.cadence import PollCadence, backoff, next_interval
from ratelord.service.commands import CommandService, PolicyRejected, Unavailable, run_sync

__all__ = [
    "CommandService",
    "EngineSettings",
    "PolicyRejected",
    "PollCadence",
    "Unavailable",
    "backoff",
    "build_engine",
    "engine_over",
    "next_interval",
    "run_sync",
]
