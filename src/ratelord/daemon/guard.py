"""The credential guard: no write carries a raw credential into the append-only log.

Every write's body is scanned, as raw bytes, for a credential shape (``ghp_…``,
``sk-…``), a field named like a secret holding a string, list or object, or a
JSON escape (``\\u…``) that could hide either.  Only a body that matches is
decoded and walked, to name the field or refuse nothing.  One pass over the
lowered body for the words every one of these starts with comes first: a body
without any of them (nearly every intent) skips the two exact patterns, which
cost several times more on a large body (a batch of 100 intents).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import msgspec

from ratelord.asgi.http import HTTPError
from ratelord.providers.secrets import CREDENTIAL_FIELD, CREDENTIAL_SHAPES

#: Fields named like credentials that hold references, hashes or counts, not secrets
#: (their values are still checked for credential shapes).
ALLOWED_FIELDS = frozenset({"secret_ref", "token_fingerprint", "tokens"})
#: Fields whose keys are a provider's names, not ours (``anthropic-ratelimit-tokens-…``):
#: their keys and values are checked for credential shapes only.
FOREIGN_KEYS = frozenset({"headers"})

#: A credential shape, or an escape that could hide one (case matters: ``ghp_`` not ``GHP_``).
_SHAPE = re.compile(rb"\\u|" + CREDENTIAL_SHAPES.pattern.encode())
#: A field named like a secret holding a string, list or object (run on the lowered body:
#: a case-insensitive pattern costs several times more).
_NAMED = re.compile(CREDENTIAL_FIELD.pattern.encode() + rb'[^"]*"\s*:\s*[\["{]')
#: What each of the two patterns above starts with, lowered (``AKIA`` is ``akia``): a body
#: without any of these matches neither.  A shape added to CREDENTIAL_SHAPES adds its start here
#: (tests/unit/test_credential_guard.py holds a sample of every shape).
_STARTS = re.compile(
    rb"\\u|gh[pousr]_|github_pat_|sk-|glpat-|xox|akia|aiza|token|secret|passw|api|credential"
)
_decode = msgspec.json.Decoder().decode


def refuse_credentials(body: bytes) -> None:
    """Raise a 400 naming the first field of ``body`` that holds a raw credential."""
    lowered = body.lower()
    if not _STARTS.search(lowered):
        return
    if not _SHAPE.search(body) and not _NAMED.search(lowered):
        return
    try:
        payload = _decode(body)
    except msgspec.DecodeError:
        return  # not JSON: the handler answers malformed_json
    found = next(find_credentials(payload), None)
    if found is not None:
        raise HTTPError(
            400,
            "raw_credential",
            f"refused: {found} looks like a raw credential. Never send secrets; "
            "register a reference instead (secret_ref: env:NAME or file:/path)",
        )


def find_credentials(payload: Any, path: str = "$", *, foreign: bool = False) -> Iterator[str]:
    """The JSON paths of ``payload`` that hold (or are named for) a raw credential.

    A number is never a credential: ``costs: {"tokens": 130}`` names a resource.
    """
    if isinstance(payload, dict):
        for key, value in payload.items():
            sub = f"{path}.{key}"
            if CREDENTIAL_SHAPES.search(key):
                yield sub
            elif foreign:
                yield from find_credentials(value, sub, foreign=True)
            elif (
                key not in ALLOWED_FIELDS
                and CREDENTIAL_FIELD.search(key)
                and value not in (None, "", [], {})
                and not isinstance(value, int | float)
            ):
                yield sub
            else:
                yield from find_credentials(value, sub, foreign=key in FOREIGN_KEYS)
    elif isinstance(payload, list):
        for index, value in enumerate(payload):
            yield from find_credentials(value, f"{path}[{index}]", foreign=foreign)
    elif isinstance(payload, str) and CREDENTIAL_SHAPES.search(payload):
        yield path
