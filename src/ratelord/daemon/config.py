"""Daemon settings (SPEC §14): command-line flag > environment > config file > default.

The config file is YAML, decoded strictly into msgspec structs: an unknown key,
a wrong type or an impossible value stops start-up with the file, the key and
the reason.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

from ratelord.engine.budgets import Budget
from ratelord.history.instants import BadInstant, parse_duration
from ratelord.llm import PriceError, PriceTable, default_price_table, load_price_table
from ratelord.providers.mock import MockPoolConfig, MockPrincipalConfig, MockProviderConfig
from ratelord.service.assembly import EngineSettings

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Positive = Annotated[float, msgspec.Meta(gt=0)]
Cost = Annotated[float, msgspec.Meta(ge=0)]


class ConfigError(Exception):
    """A setting that cannot be used; the message names where it came from."""


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class GitHubSettings(_Strict):
    base_url: str = "https://api.github.com"
    poll_interval_seconds: Positive = 60.0
    timeout_seconds: Positive = 10.0


class ProvidersSettings(_Strict):
    mock: MockProviderConfig | None = None
    github: GitHubSettings | None = None


class StoreSettings(_Strict):
    #: where the log lives: ``sqlite:///path`` (default: the ``db`` file) or
    #: ``postgresql://user@host/db`` (a cluster: several daemons, one log)
    url: str | None = None
    synchronous: Literal["normal", "full"] = "normal"
    snapshot_every_events: Annotated[int, msgspec.Meta(ge=100)] = 100_000


class RetentionSettings(_Strict):
    """Old events move from the live log into compressed segment files (``ratelord archive``)."""

    #: archive events logged longer ago than this (``12h``, ``7d``, ``2w``)
    archive_after: str
    #: where segments go (default: ``DB.archive`` beside a SQLite log; required for PostgreSQL)
    dir: str | None = None
    #: how often the daemon archives by itself (None: only on ``ratelord archive``)
    every: str | None = "1h"
    #: events per segment file
    segment_events: Annotated[int, msgspec.Meta(ge=100, le=1_000_000)] = 50_000

    @property
    def archive_after_seconds(self) -> float:
        return parse_duration(self.archive_after)

    @property
    def every_seconds(self) -> float | None:
        return None if self.every is None else parse_duration(self.every)


class ServerSettings(_Strict):
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024, le=64 * 1024 * 1024)] = 256 * 1024
    access_log: bool = False
    #: PEM certificate and key files: serve HTTPS (both or neither)
    tls_cert: str | None = None
    tls_key: str | None = None


class ClusterSettings(_Strict):
    #: the URL other members forward writes to (default ``http(s)://bind:port``)
    advertise: str | None = None


class ClientToken(_Strict):
    """One client's bearer token (a reference, never the token) and what it may do."""

    name: str
    token_ref: str
    scopes: list[Literal["read", "ask", "admin"]] = msgspec.field(
        default_factory=lambda: ["read", "ask"]
    )


class AuthSettings(_Strict):
    #: where the bearer token lives (``env:NAME`` or ``file:PATH``); every scope
    token_ref: str | None = None
    #: one token per client, each with its scopes (read, ask, admin)
    tokens: list[ClientToken] = []


class Settings(_Strict):
    db: str = "./ratelord.db"
    bind: str = "127.0.0.1"
    port: Port = 8090
    policy: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] | None = None
    demo: bool = False
    providers: ProvidersSettings = msgspec.field(default_factory=ProvidersSettings)
    workloads: dict[str, dict[str, Cost]] = {}
    #: money budgets (per agent, workload, identity or labels, per day or month)
    budgets: list[Budget] = []
    #: the LLM price table they are priced with (YAML); None: the built-in table
    prices: str | None = None
    engine: EngineSettings = msgspec.field(default_factory=EngineSettings)
    store: StoreSettings = msgspec.field(default_factory=StoreSettings)
    #: archive old events (None: the log keeps everything in its table)
    retention: RetentionSettings | None = None
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    cluster: ClusterSettings = msgspec.field(default_factory=ClusterSettings)
    config_path: str | None = None


#: flag/env name → settings key, for the settings SPEC §14 names.
_SCALARS = {
    "db": "RATELORD_DB",
    "bind": "RATELORD_BIND",
    "port": "RATELORD_PORT",
    "policy": "RATELORD_POLICY",
    "log_level": "RATELORD_LOG_LEVEL",
    "log_format": "RATELORD_LOG_FORMAT",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ratelord-d",
        description="ratelord daemon: forecasts API budgets and arbitrates agents' intents.",
        epilog="Precedence: flag > environment (RATELORD_*) > config file > default.",
    )
    p.add_argument("--config", help="YAML config file (env RATELORD_CONFIG)")
    p.add_argument("--db", help="SQLite event log (default ./ratelord.db)")
    p.add_argument(
        "--store",
        help="event log URL: sqlite:///path or postgresql://user@host/db (env RATELORD_STORE)",
    )
    p.add_argument("--bind", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", help="port to listen on (default 8090)")
    p.add_argument("--policy", help="policy YAML file (default: built-in policy)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-format", choices=["json", "text"])
    p.add_argument(
        "--demo",
        action="store_true",
        default=None,
        help="add a demo mock provider, identities and a little traffic",
    )
    p.add_argument("--version", action="store_true", help="print the version and exit")
    return p


def load_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[Settings, argparse.Namespace]:
    """Resolve settings from ``argv`` and ``environ`` (both injectable for tests)."""
    args = parser().parse_args(argv)
    env = os.environ if environ is None else environ
    config_path = args.config or env.get("RATELORD_CONFIG")
    raw: dict[str, Any] = _read_file(config_path) if config_path else {}
    origin: dict[str, str] = {key: str(config_path) for key in raw}
    for key, env_name in _SCALARS.items():
        if env.get(env_name):
            raw[key], origin[key] = env[env_name], f"environment variable {env_name}"
        flag = getattr(args, key)
        if flag is not None:
            raw[key], origin[key] = flag, f"--{key.replace('_', '-')}"
    if args.demo:
        raw["demo"] = True
    store_url = args.store or env.get("RATELORD_STORE")
    if store_url:
        raw["store"] = {**(raw.get("store") or {}), "url": store_url}
        origin["store"] = "--store" if args.store else "environment variable RATELORD_STORE"
    if "port" in raw and isinstance(raw["port"], str):
        raw["port"] = _int(raw["port"], origin["port"])
    if isinstance(raw.get("log_level"), str):
        raw["log_level"] = raw["log_level"].lower()
    try:
        settings = msgspec.convert(raw, Settings)
    except msgspec.ValidationError as exc:
        raise ConfigError(_where(exc, origin, config_path)) from None
    settings = msgspec.structs.replace(settings, config_path=config_path)
    if settings.demo:
        settings = with_demo(settings)
    _check(settings, config_path)
    _check_auth_secrets(settings, origin.get("auth") or "settings", env)
    return settings, args


def _read_file(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}:{where}: invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config file must be a mapping of settings")
    return data


#: Settings that are not written in a config file.
_INTERNAL_KEYS = frozenset({"config_path"})
_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `([^`]*)`$")


def _where(exc: msgspec.ValidationError, origin: dict[str, str], config_path: str | None) -> str:
    """``FILE: key 'engine.drift_treshold': unknown setting; did you mean 'drift_threshold'?``"""
    message, _, path = str(exc).partition(" - at `$")
    path = path.rstrip("`").lstrip(".")
    unknown = _UNKNOWN_FIELD.match(message)
    if unknown:
        name = unknown.group(1)
        known = _field_names(Settings, path)
        message = "unknown setting"
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean '{close[0]}'?"
        elif known:
            message += f" (known here: {', '.join(sorted(known))})"
        path = f"{path}.{name}" if path else name
    top = re.split(r"[.\[]", path, maxsplit=1)[0]
    source = origin.get(top) or config_path or "settings"
    return f"{source}: key '{path}': {message}" if path else f"{source}: {message}"


def _field_names(root: type, path: str) -> list[str]:
    """The keys a config mapping at ``path`` (``engine``, ``providers.mock``…) may hold."""
    hint: Any = root
    for part in re.findall(r"[^.\[\]]+", path):
        hint = _struct_in(hint)
        if hint is None:
            return []
        if part.strip("'\"").isdigit() or part.startswith(("'", '"')):
            continue  # a list index or a mapping key: same element type
        field = next((f for f in msgspec.structs.fields(hint) if f.name == part), None)
        if field is None:
            return []
        hint = field.type
    struct = _struct_in(hint)
    if struct is None:
        return []
    return [f.name for f in msgspec.structs.fields(struct) if f.name not in _INTERNAL_KEYS]


def _struct_in(hint: Any) -> type[msgspec.Struct] | None:
    """The Struct inside ``X | None``, ``list[X]`` or ``dict[str, X]``, if any."""
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return hint
    args = typing.get_args(hint)
    for arg in reversed(args):  # dict[str, X]: the value type
        found = _struct_in(arg)
        if found is not None:
            return found
    return None


def _int(value: str, source: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{source}: port {value!r} is not a number") from None


def _check(settings: Settings, config_path: str | None) -> None:
    source = config_path or "settings"
    for name, resources in settings.workloads.items():
        if not resources:
            raise ConfigError(f"{source}: key 'workloads.{name}': a workload needs resources")
    ids = [b.id for b in settings.budgets]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ConfigError(f"{source}: key 'budgets': budget id {twice[0]!r} is used twice")
    price_table(settings)
    url = settings.store.url
    if url is not None and not url.startswith(("sqlite://", "postgresql://", "postgres://")):
        raise ConfigError(
            f"{source}: key 'store.url': use sqlite:///path or postgresql://user@host/db"
        )
    if settings.retention is not None:
        _check_retention(settings, settings.retention, source)
    if (settings.server.tls_cert is None) != (settings.server.tls_key is None):
        raise ConfigError(f"{source}: key 'server': TLS needs both tls_cert and tls_key")


def _check_retention(settings: Settings, retention: RetentionSettings, source: str) -> None:
    for key, text, least in (
        ("archive_after", retention.archive_after, 1.0),
        ("every", retention.every, 60.0),
    ):
        if text is None:
            continue
        try:
            seconds = parse_duration(text)
        except BadInstant as exc:
            raise ConfigError(f"{source}: key 'retention.{key}': {exc}") from None
        if seconds < least:
            raise ConfigError(
                f"{source}: key 'retention.{key}': {text!r} is too short; at least {least:g}s"
            )
    url = settings.store.url or ""
    if retention.dir is None and url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            f"{source}: key 'retention.dir': a PostgreSQL log needs an archive directory "
            "(shared storage the cluster's daemons all read)"
        )


def price_table(settings: Settings) -> PriceTable:
    """The price table money budgets use: ``prices:`` (a YAML file) or the built-in one."""
    if settings.prices is None:
        return default_price_table()
    try:
        return load_price_table(settings.prices)
    except PriceError as exc:
        source = settings.config_path or "settings"
        raise ConfigError(f"{source}: key 'prices': {exc}") from None


def _check_auth_secrets(settings: Settings, source: str, env: Mapping[str, str]) -> None:
    """Every bearer token the daemon will require must be readable before it starts:
    a missing one names the file, the key and the reference to fix."""
    from ratelord.providers.secrets import SecretError, resolve

    for key, ref in _auth_refs(settings):
        try:
            resolve(ref, env)
        except SecretError as exc:
            raise ConfigError(f"{source}: key '{key}': {exc} (the clients' bearer token)") from None


def _auth_refs(settings: Settings) -> list[tuple[str, str]]:
    tokens = settings.auth.tokens
    refs = [(f"auth.tokens[{i}].token_ref", t.token_ref) for i, t in enumerate(tokens)]
    if settings.auth.token_ref is not None:
        refs.insert(0, ("auth.token_ref", settings.auth.token_ref))
    return refs


def with_demo(settings: Settings) -> Settings:
    """A demo mock provider so that a fresh daemon has something to show."""
    demo = MockProviderConfig(
        poll_interval_seconds=2.0,
        principals={
            "demo-team": MockPrincipalConfig(
                pools={
                    "core": MockPoolConfig(limit=5000, window_seconds=3600, burn_per_second=0.4),
                    "search": MockPoolConfig(limit=30, window_seconds=60),
                }
            ),
            "demo-bot": MockPrincipalConfig(
                pools={
                    "core": MockPoolConfig(
                        limit=5000, window_seconds=3600, remaining=1400, burn_per_second=0.2
                    ),
                }
            ),
        },
    )
    mock = settings.providers.mock
    if mock is not None:
        demo = msgspec.structs.replace(mock, principals={**demo.principals, **mock.principals})
    workloads = {"search_and_hydrate": {"search": 1.0, "core": 3.0}, **settings.workloads}
    return msgspec.structs.replace(
        settings,
        providers=msgspec.structs.replace(settings.providers, mock=demo),
        workloads=workloads,
    )
