"""``ratelord proxy`` settings: a YAML file of its own, decoded strictly.

Precedence as for the daemon: command-line flag > environment > file > default.
With no ``upstreams:`` the proxy serves the three well-known APIs under
``/openai``, ``/anthropic`` and ``/github``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

from ratelord.providers.secrets import SecretError, resolve, validate_ref

Kind = Literal["openai", "anthropic", "github", "generic"]
Positive = Annotated[float, msgspec.Meta(gt=0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
#: an upstream's name is the first segment of the proxy's path: ``/openai/v1/...``
UpstreamName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]

DEFAULT_PORT = 8091


class ProxyConfigError(Exception):
    """A proxy setting that cannot be used; the message names where it came from."""


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class UpstreamSettings(_Strict):
    """One API behind the proxy.

    ``kind`` says how to read its requests (cost, model) and answers (usage,
    error shape); ``generic`` charges ``cost`` of ``resource`` per request.
    ``provider_id`` is the ratelord provider its identities are registered
    under (defaults to ``kind``).  ``ca_file`` adds a CA bundle to trust
    (certificates are always verified).  ``max_concurrent`` caps the requests in
    flight per identity (GitHub's secondary limit allows 100 per user); the rest
    wait for a slot instead of drawing a secondary-limit 403.
    """

    url: str
    kind: Kind = "generic"
    provider_id: str | None = None
    resource: str = "requests"
    cost: NonNegative = 1.0
    ca_file: str | None = None
    timeout_seconds: Positive = 600.0
    max_concurrent: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 100

    @property
    def provider(self) -> str:
        return self.provider_id or self.kind


DEFAULT_UPSTREAMS: dict[str, UpstreamSettings] = {
    "openai": UpstreamSettings(url="https://api.openai.com", kind="openai"),
    "anthropic": UpstreamSettings(url="https://api.anthropic.com", kind="anthropic"),
    "github": UpstreamSettings(url="https://api.github.com", kind="github"),
}


class ProxySettings(_Strict):
    bind: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = DEFAULT_PORT
    #: ratelord-d's URL; ``RATELORD_URL`` or the default when absent
    daemon_url: str | None = None
    #: the bearer token ratelord-d wants, if any (``env:NAME`` or ``file:PATH``)
    daemon_token_ref: str | None = None
    #: the token clients must send (``Proxy-Authorization: Bearer …``); required off loopback
    token_ref: str | None = None
    #: the longest wait ratelord may ask for that the proxy sits out; longer is a 429
    max_wait_seconds: NonNegative = 30.0
    #: the agent a request is asked for when it names none (``x-ratelord-agent``)
    agent_id: str = "proxy"
    #: approve without ratelord-d when it cannot be asked (default: refuse, fail safe)
    fail_open: bool = False
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024, le=256 * 1024 * 1024)] = 32 * 1024 * 1024
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    upstreams: dict[UpstreamName, UpstreamSettings] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_UPSTREAMS)
    )

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.bind).is_loopback
        except ValueError:
            return self.bind == "localhost"


def load_proxy_settings(
    path: str | None,
    overrides: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> ProxySettings:
    """The file at ``path`` (if any), then ``RATELORD_PROXY_*`` variables, then ``overrides``."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = _read(path) if path else {}
    for key in ("bind", "port", "max_wait_seconds"):
        value = env.get(f"RATELORD_PROXY_{key.upper()}")
        if value:
            raw[key] = float(value) if key == "max_wait_seconds" else value
    if "port" in raw and isinstance(raw["port"], str):
        raw["port"] = _port(raw["port"])
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = msgspec.convert(raw, ProxySettings)
    except msgspec.ValidationError as exc:
        raise ProxyConfigError(f"{path or 'proxy settings'}: {exc}") from None
    _check(settings, path or "proxy settings")
    return settings


def _read(path: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProxyConfigError(f"{path}: cannot read the proxy config: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ProxyConfigError(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ProxyConfigError(f"{path}: the proxy config must be a mapping of settings")
    return data


def _port(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ProxyConfigError(f"port {value!r} is not a number") from None


def _check(settings: ProxySettings, source: str) -> None:
    for key in ("daemon_token_ref", "token_ref"):
        ref = getattr(settings, key)
        if ref is not None:
            try:
                validate_ref(ref)
            except SecretError as exc:
                raise ProxyConfigError(f"{source}: key '{key}': {exc}") from None
    for name, upstream in settings.upstreams.items():
        if not upstream.url.startswith(("http://", "https://")):
            raise ProxyConfigError(
                f"{source}: key 'upstreams.{name}.url': {upstream.url!r} must start with "
                "https:// (or http:// for a local server)"
            )
        if upstream.ca_file is not None and not Path(upstream.ca_file).is_file():
            raise ProxyConfigError(
                f"{source}: key 'upstreams.{name}.ca_file': no such file {upstream.ca_file}"
            )
    if not settings.loopback and settings.token_ref is None:
        raise ProxyConfigError(
            f"refusing to listen on {settings.bind}: a non-loopback address needs a bearer "
            "token (set token_ref: env:NAME in the proxy config), or use --bind 127.0.0.1"
        )


def secret(ref: str | None) -> str | None:
    """The secret behind ``ref`` (read once at start-up), or None."""
    if ref is None:
        return None
    try:
        return resolve(ref)
    except SecretError as exc:
        raise ProxyConfigError(str(exc)) from None
