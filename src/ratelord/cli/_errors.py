"""The failures the CLI reports as one line on stderr and an exit code.

``CliError`` is caught once, by the root command group in :mod:`ratelord.cli.main`,
which prints ``error: <message>`` and exits with ``exit_code``::

    CliError                 exit 1: a command could not do what was asked
    ├── ApiError             exit 1: the daemon answered 4xx/5xx ("<message> [<code>]")
    └── DaemonUnreachable    exit 3: no connection to the daemon at all
"""

from __future__ import annotations

EXIT_ERROR = 1
EXIT_DENIED = 2
EXIT_UNREACHABLE = 3


class CliError(Exception):
    """A failure shown to the user as ``error: <message>``."""

    def __init__(self, message: str, *, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class ApiError(CliError):
    """The daemon refused a request; ``code`` is its machine-readable error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        hint = _NEXT_STEP.get(status)
        super().__init__(f"{message} [{code}]" + (f". {hint}" if hint else ""))
        self.status = status
        self.code = code
        self.detail = message


#: What to do next, for the statuses whose fix is on the client's side.
_NEXT_STEP = {
    401: "Pass the daemon's token with --token TOKEN or RATELORD_TOKEN=TOKEN "
    "(the token its auth.token_ref or auth.tokens names)",
}


class DaemonUnreachable(CliError):
    """No answer from the daemon: not running, wrong URL, or the connection dropped."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"cannot reach ratelord-d at {url} ({reason}). "
            "Start it with 'ratelord-d' or point --url/RATELORD_URL at it.",
            exit_code=EXIT_UNREACHABLE,
        )
        self.url = url
        self.reason = reason
