"""The ``ratelord`` command: global options, command registration, one-line errors.

Every :class:`~ratelord.cli._errors.CliError` is turned into ``error: <message>`` and
its exit code by :class:`_RootGroup`; anything unexpected is caught in :func:`main`,
so a user never sees a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Annotated, Any

import typer
from rich.text import Text
from typer.core import TyperGroup

from ratelord.cli import _output as out
from ratelord.cli import admin, events, identity, intent, leases, policy, pools, replay, status
from ratelord.cli._errors import CliError, as_cli_error
from ratelord.cli._http import DEFAULT_URL, Session, api, cli_version
from ratelord.client import RatelordError

#: Commands whose module is imported only when used: ``sim`` loads the whole engine and
#: ``proxy`` a server, which would slow every other command down; ``sim`` also ships
#: separately, so it may be absent.
LAZY_COMMANDS = {
    "sim": "ratelord.cli.sim",
    "proxy": "ratelord.cli.proxy",
    "mcp": "ratelord.cli.mcp",
}


#: The options of the root command that are also accepted after a subcommand.
GLOBAL_OPTIONS = ("--url", "--token")


def hoist_global_options(args: list[str]) -> list[str]:
    """``ratelord status --url U`` as ``ratelord --url U status``: people put connection
    options at the end of a command line as often as at its start."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS:
            takes_next = "=" not in arg and i + 1 < len(args)
            front += args[i : i + 2] if takes_next else [arg]
            i += 2 if takes_next else 1
            continue
        rest.append(arg)
        i += 1
    return [*front, *rest]


class _RootGroup(TyperGroup):
    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        return super().parse_args(ctx, hoist_global_options(args))

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        lazy = [name for name, module in LAZY_COMMANDS.items() if _installed(module)]
        return [*super().list_commands(ctx), *lazy]

    def get_command(self, ctx: typer.Context, cmd_name: str) -> Any:  # type: ignore[override]
        module = LAZY_COMMANDS.get(cmd_name)
        if cmd_name not in self.commands and module is not None and _installed(module):
            self.commands[cmd_name] = _load_command(cmd_name, module)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (CliError, RatelordError) as exc:
            failure = exc if isinstance(exc, CliError) else as_cli_error(exc)
            out.error_line(failure.message)
            raise typer.Exit(failure.exit_code) from None


app = typer.Typer(
    name="ratelord",
    cls=_RootGroup,
    help="Command line of ratelord-d, the local rate-limit control plane.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _connect(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Option(envvar="RATELORD_URL", help="Base URL of ratelord-d.")
    ] = DEFAULT_URL,
    token: Annotated[
        str | None,
        typer.Option(envvar="RATELORD_TOKEN", show_default=False, help="Bearer token, if set."),
    ] = None,
) -> None:
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter("must start with http:// or https://", param_hint="'--url'")
    session = ctx.ensure_object(Session)
    session.url, session.token = url, token


app.add_typer(identity.app, name="identity")
app.command()(events.events)
app.command()(status.status)
app.add_typer(pools.app, name="pools")
app.command()(leases.leases)
app.command()(intent.intent)
app.add_typer(policy.app, name="policy")
app.command()(admin.reload)
app.command()(admin.rebuild)
app.command()(admin.backup)
app.command()(admin.archive)
app.command()(replay.replay)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _load_command(name: str, module: str) -> Any:
    """The Typer command function ``module.<name>`` as a click command."""
    single = typer.Typer(add_completion=False)
    single.command(name)(getattr(importlib.import_module(module), name))
    return typer.main.get_command(single)


@app.command()
def tui(ctx: typer.Context) -> None:
    """Open the live dashboard (the same as ratelord-tui)."""
    from ratelord.tui.main import run_tui

    session = ctx.ensure_object(Session)
    run_tui(session.url, token=session.token)


@app.command()
def version(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print versions as JSON.")] = False,
) -> None:
    """Print the CLI's version, and the daemon's when it answers."""
    daemon = api(ctx, timeout=2.0)
    try:
        daemon_version: str | None = daemon.get("/v1/health").get("version")
    except RatelordError:
        daemon_version = None
    if json_out:
        out.print_json({"cli": cli_version(), "daemon": daemon_version, "url": daemon.url})
        return
    console = out.console()
    console.print(f"ratelord {cli_version()}")
    if daemon_version:
        console.print(f"ratelord-d {daemon_version} at {daemon.url}")
    else:
        console.print(Text(f"ratelord-d not reachable at {daemon.url}", style="dim"))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except Exception as exc:  # last line of defence: one line, never a traceback
        out.error_line(f"internal error: {type(exc).__name__}: {exc}")
        sys.exit(1)
