"""The failures the CLI reports as one line on stderr and an exit code.

The daemon's answers fail as the SDK's errors (:mod:`ratelord.client`, one tree for
every client); the CLI's own failures are :class:`CliError`.  Both are caught once,
by the root command group in :mod:`ratelord.cli.main`, which prints ``error: <message>``
and exits with the code :func:`as_cli_error` gives::

    CliError                      exit 1: a command could not do what was asked
    RatelordRequestError          exit 1: the daemon refused ("<message> [<code>]")
    RatelordUnavailable           exit 1: the daemon answered 5xx ("<message> [<code>]")
    RatelordProtocolError         exit 1: an answer off the API's schema
    RatelordTransportError        exit 3: no connection to the daemon at all
"""

from __future__ import annotations

from ratelord.client import (
    RatelordError,
    RatelordProtocolError,
    RatelordRequestError,
    RatelordTransportError,
    RatelordUnavailable,
)

EXIT_ERROR = 1
EXIT_DENIED = 2
EXIT_UNREACHABLE = 3


class CliError(Exception):
    """A failure shown to the user as ``error: <message>``."""

    def __init__(self, message: str, *, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


#: What to do next, for the statuses whose fix is on the client's side.
_NEXT_STEP = {
    401: "Pass the daemon's token with --token TOKEN or RATELORD_TOKEN=TOKEN "
    "(the token its auth.token_ref or auth.tokens names)",
}


def as_cli_error(exc: RatelordError) -> CliError:
    """The one line (and exit code) a person reads for an error of the daemon client."""
    if isinstance(exc, RatelordRequestError):
        hint = _NEXT_STEP.get(exc.status_code or 0)
        return CliError(f"{exc.message} [{exc.code}]" + (f". {hint}" if hint else ""))
    if isinstance(exc, RatelordUnavailable):
        return CliError(f"{exc.message} [{exc.code}]")
    if isinstance(exc, RatelordProtocolError):
        return CliError(str(exc))
    if isinstance(exc, RatelordTransportError):
        return CliError(
            f"cannot reach ratelord-d at {exc.url} ({exc.reason}). "
            "Start it with 'ratelord-d' or point --url/RATELORD_URL at it.",
            exit_code=EXIT_UNREACHABLE,
        )
    return CliError(str(exc))
