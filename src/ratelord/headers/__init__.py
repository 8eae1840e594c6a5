"""Pure parsers of providers' rate-limit response headers.

Used by the daemon's ``POST /v1/usage`` and by the SDK.  No clock reads, no
I/O: the caller passes ``now``.  Malformed values are logged on the
``ratelord.headers`` logger and skipped; these functions never raise on input.
"""

from ratelord.headers._durations import parse_go_duration
from ratelord.headers._github import bucket_for_path
from ratelord.headers._model import RateLimitObservation
from ratelord.headers._parse import parse_rate_limit_headers
from ratelord.headers._pools import pool_observations
from ratelord.headers._retry_after import parse_retry_after

__all__ = [
    "RateLimitObservation",
    "bucket_for_path",
    "parse_go_duration",
    "parse_rate_limit_headers",
    "parse_retry_after",
    "pool_observations",
]
