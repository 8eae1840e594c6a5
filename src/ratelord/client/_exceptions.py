"""The SDK's exceptions.  Nothing else escapes ``ratelord.client``::

    RatelordError
    ├── RatelordTransportError      ratelord-d could not be asked: unreachable, timed out
    │   ├── RatelordUnavailable     it answered 5xx (503/429 until the retries ran out)
    │   └── RatelordProtocolError   its answer is not what the API promises
    ├── RatelordRequestError        the request is invalid (4xx, or local validation); no retry
    └── RatelordDenied              an intent was denied (transports; guards with raise_on_deny)

``Client.ask`` turns a :class:`RatelordTransportError` into a synthetic
decision (deny by default, approve with ``fail_open=True``); the other calls
raise it.  httpx and msgspec errors are converted at the boundary and chained
as ``__cause__``.  No message ever contains the bearer token.
"""

from __future__ import annotations

from ratelord.schema import Decision


class RatelordError(Exception):
    """Base of every error the SDK raises."""


class RatelordTransportError(RatelordError):
    """ratelord-d could not be asked (connection refused, timeout, broken answer).

    ``url`` is the member last tried and ``reason`` the short why (``connection
    refused``, ``no answer within 5 s``), for callers that word their own message.
    """

    def __init__(self, message: str, *, url: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.url = url
        self.reason = reason or message


class RatelordUnavailable(RatelordTransportError):
    """ratelord-d answered but cannot serve now (5xx; 503/429 after all retries).

    ``code`` and ``message`` are the daemon's error code and message (also ``reason``).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str = "",
        detail: str = "",
        url: str = "",
    ) -> None:
        super().__init__(message, url=url, reason=detail)
        self.status_code = status_code
        self.code = code or f"http_{status_code}"
        self.message = detail or message


class RatelordProtocolError(RatelordTransportError):
    """ratelord-d's answer could not be decoded into the promised model."""


class RatelordRequestError(RatelordError):
    """The request was refused as invalid; sending it again would not help.

    ``status_code`` is ``None`` when the SDK refused it before sending.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status_code: int | None = None,
        request_id: str | None = None,
    ) -> None:
        where = f"ratelord-d answered {status_code}" if status_code else "invalid request"
        super().__init__(f"{where} ({code}): {message}")
        self.code = code
        self.message = message
        self.status_code = status_code
        self.request_id = request_id


class RatelordDenied(RatelordError):
    """An intent was denied; ``reason`` says why and ``decision`` is the full answer."""

    def __init__(self, reason: str, decision: Decision) -> None:
        super().__init__(f"ratelord denied the request: {reason} (intent {decision.intent_id})")
        self.reason = reason
        self.decision = decision
