"""Config errors name the file and the key, suggest the key meant, and never say ``::``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ratelord.daemon.config import ConfigError, load_settings


def error_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    path = tmp_path / "ratelord.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(["--config", str(path)], environ or {})
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert "::" not in message
    return message


@pytest.mark.parametrize(
    ("text", "key", "meant"),
    [
        ("engine: {drift_treshold: 0.1}\n", "engine.drift_treshold", "drift_threshold"),
        ("providers: {githb: {}}\n", "providers.githb", "github"),
        ("auth: {tokens: [{name: a, token_ref: 'env:A', scope: [read]}]}\n", "scope", "scopes"),
        ("stor: {synchronous: full}\n", "stor", "store"),
    ],
)
def test_a_misspelt_key_names_the_key_meant(tmp_path: Path, text: str, key: str, meant: str):
    message = error_of(tmp_path, text)
    assert f"{key}'" in message
    assert f"did you mean '{meant}'?" in message


def test_an_unknown_key_with_no_close_match_lists_the_known_ones(tmp_path: Path):
    message = error_of(tmp_path, "engine: {zzz: 1}\n")
    assert "key 'engine.zzz': unknown setting (known here: " in message
    assert "drift_threshold" in message


def test_an_unset_auth_token_names_the_file_the_key_and_the_variable(tmp_path: Path):
    message = error_of(tmp_path, "auth: {token_ref: 'env:RATELORD_AUTH_TOKEN'}\n")
    assert "key 'auth.token_ref'" in message
    assert "RATELORD_AUTH_TOKEN" in message and "not set" in message
    tokens = "auth: {tokens: [{name: ops, token_ref: 'env:OPS_TOKEN'}]}\n"
    assert "key 'auth.tokens[0].token_ref'" in error_of(tmp_path, tokens)


def test_a_set_auth_token_starts(tmp_path: Path):
    path = tmp_path / "ratelord.yaml"
    path.write_text("auth: {token_ref: 'env:RATELORD_AUTH_TOKEN'}\n")
    settings, _ = load_settings(["--config", str(path)], {"RATELORD_AUTH_TOKEN": "t0k3n"})
    assert settings.auth.token_ref == "env:RATELORD_AUTH_TOKEN"
