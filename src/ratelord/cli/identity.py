"""``ratelord identity …``: register and manage the identities the daemon charges."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ratelord.cli import _output as out
from ratelord.cli._http import api, decode, path_id
from ratelord.schema import Identity, display_id

app = typer.Typer(help="Register and manage identities (tokens, app installations).")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the daemon's JSON answer.")]
Reason = Annotated[str | None, typer.Option(help="Why; recorded in the event log.")]
SECRET_SCHEMES = ("env:", "file:")


def _secret_ref(value: str | None) -> str | None:
    # The value is never echoed back: a mistyped ref may be the raw token itself.
    if value is not None and not value.startswith(SECRET_SCHEMES):
        raise typer.BadParameter("must be env:NAME or file:PATH (never the secret itself)")
    return value


def _labels(values: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="'--label'")
        labels[key] = value
    return labels


SecretRef = Annotated[
    str | None,
    typer.Option(
        "--secret-ref",
        callback=_secret_ref,
        help="Where the daemon reads the secret: env:NAME or file:PATH.",
    ),
]


@app.command("add")
def add(
    ctx: typer.Context,
    identity_id: Annotated[str, typer.Argument(metavar="ID", help="e.g. pat:alice")],
    provider: Annotated[str, typer.Option(help="Provider id: github, mock, …")],
    principal: Annotated[
        str | None, typer.Option(help="Account charged; same principal = shared pools.")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="token, app_installation, …")] = None,
    scope: Annotated[str | None, typer.Option(help="Scope id, e.g. org:acme.")] = None,
    secret_ref: SecretRef = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="KEY=VALUE; repeatable.")
    ] = None,
    json_out: JsonFlag = False,
) -> None:
    """Register an identity (POST /v1/identities)."""
    body: dict[str, Any] = {"identity_id": identity_id, "provider_id": provider}
    optional = {"principal": principal, "kind": kind, "scope_id": scope, "secret_ref": secret_ref}
    body.update({k: v for k, v in optional.items() if v is not None})
    if label:
        body["labels"] = _labels(label)
    _show_result(api(ctx).post("/v1/identities", body), "registered", json_out)


@app.command("list")
def list_(ctx: typer.Context, json_out: JsonFlag = False) -> None:
    """List identities (GET /v1/identities)."""
    answer = api(ctx).get("/v1/identities")
    if json_out:
        out.print_json(answer)
        return
    identities = decode(answer["identities"], list[Identity])
    if not identities:
        out.console().print("no identities registered (add one with 'ratelord identity add')")
        return
    # Kind, labels and the secret reference are in 'identity show ID': the rest fits 80 columns.
    grid = out.table(
        "ID", "STATUS", "PROVIDER", "PRINCIPAL", "SCOPE", "POOLS", wrap=("ID", "PRINCIPAL", "SCOPE")
    )
    for ident in identities:
        grid.add_row(
            ident.identity_id,
            out.styled(ident.status, out.IDENTITY_STYLE),
            ident.provider_id,
            ident.principal or "-",
            display_id(ident.scope_id),
            str(len(ident.pools)),
        )
    out.console().print(grid)


@app.command("show")
def show(
    ctx: typer.Context,
    identity_id: Annotated[str, typer.Argument(metavar="ID")],
    json_out: JsonFlag = False,
) -> None:
    """Show one identity (GET /v1/identities/ID)."""
    answer = api(ctx).get(f"/v1/identities/{path_id(identity_id)}")
    if json_out:
        out.print_json(answer)
        return
    out.console().print(_details(decode(answer, Identity)))


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    identity_id: Annotated[str, typer.Argument(metavar="ID")],
    reason: Reason = None,
    json_out: JsonFlag = False,
) -> None:
    """Revoke an identity: intents on it are denied from now on."""
    _transition(ctx, identity_id, "revoke", {"reason": reason}, "revoked", json_out)


@app.command("quarantine")
def quarantine(
    ctx: typer.Context,
    identity_id: Annotated[str, typer.Argument(metavar="ID")],
    reason: Reason = None,
    json_out: JsonFlag = False,
) -> None:
    """Quarantine an identity (suspected leak or misuse): intents on it are denied."""
    _transition(ctx, identity_id, "quarantine", {"reason": reason}, "quarantined", json_out)


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    identity_id: Annotated[str, typer.Argument(metavar="ID")],
    secret_ref: SecretRef = None,
    reason: Reason = None,
    json_out: JsonFlag = False,
) -> None:
    """Record a rotated secret (optionally at a new reference); the identity stays active."""
    body = {"secret_ref": secret_ref, "reason": reason}
    _transition(ctx, identity_id, "rotate", body, "rotated", json_out)


def _transition(
    ctx: typer.Context,
    identity_id: str,
    action: str,
    body: dict[str, str | None],
    done: str,
    json_out: bool,
) -> None:
    answer = api(ctx).post(
        f"/v1/identities/{path_id(identity_id)}/{action}",
        {k: v for k, v in body.items() if v is not None},
    )
    _show_result(answer, done, json_out)


def _show_result(answer: Any, done: str, json_out: bool) -> None:
    if json_out:
        out.print_json(answer)
        return
    ident = decode(answer, Identity)
    console = out.console()
    console.print(Text.assemble(f"{done} identity ", (ident.identity_id, "bold")))
    console.print(_details(ident))


def _details(ident: Identity) -> Table:
    return out.details(
        [
            ("identity", Text(ident.identity_id, style="bold")),
            ("status", out.styled(ident.status, out.IDENTITY_STYLE)),
            ("status reason", ident.status_reason),
            ("provider", ident.provider_id),
            ("principal", ident.principal or "- (discovered by the provider)"),
            ("kind", ident.kind),
            ("scope", display_id(ident.scope_id)),
            ("labels", _fmt_labels(ident.labels) or None),
            ("secret ref", ident.secret_ref),
            ("fingerprint", ident.token_fingerprint),
            ("pools", ", ".join(ident.pools) or "-"),
            ("registered", out.fmt_instant(ident.registered_at)),
        ]
    )


def _fmt_labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
