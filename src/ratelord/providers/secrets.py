"""Secret references: ``env:NAME`` or ``file:PATH``.  Identities carry the
reference, never the secret; the secret is read at poll time and dropped.

Also the shapes of raw credentials, that the daemon's guard (``daemon/guard.py``) refuses.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path

from ratelord.schema import SECRET_REF_PATTERN

_REF = re.compile(SECRET_REF_PATTERN)  # the pattern /openapi.json publishes

#: Shapes of real provider keys: GitHub classic/fine-grained/app tokens, OpenAI, Anthropic,
#: GitLab, Slack, AWS access key ids, Google API keys.
CREDENTIAL_SHAPES = re.compile(
    r"(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
    r"|sk-ant-[A-Za-z0-9_\-]{16,}|sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"
    r"|glpat-[A-Za-z0-9_\-]{20,}|xox[abposr]-[A-Za-z0-9\-]{10,}|AKIA[0-9A-Z]{16}"
    r"|AIza[0-9A-Za-z_\-]{35})"
)
CREDENTIAL_FIELD = re.compile(r"(token|secret|passw(or)?d|api[_-]?key|credential)", re.I)


class SecretError(Exception):
    """A secret reference that cannot be used.  The message never holds the secret."""


def validate_ref(ref: str) -> str:
    """Return ``ref`` if it is a well-formed reference, else raise :class:`SecretError`."""
    if not _REF.match(ref):
        raise SecretError(
            f"secret_ref {ref!r} is not a reference: use 'env:NAME' or 'file:/absolute/path'"
        )
    return ref


def resolve(ref: str, environ: Mapping[str, str] | None = None) -> str:
    """Read the secret behind ``ref``.

    A ``file:`` secret must not be readable by group or others (like ssh keys).
    """
    validate_ref(ref)
    kind, _, target = ref.partition(":")
    if kind == "env":
        value = (environ if environ is not None else os.environ).get(target)
        if not value:
            raise SecretError(f"environment variable {target} named by {ref!r} is not set")
        return value.strip()
    path = Path(target)
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise SecretError(f"cannot read secret file {target}: {exc.strerror}") from None
    _check_private(target, mode)
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise SecretError(f"secret file {target} is empty")
    return value


def check_private(ref: str) -> None:
    """Refuse a ``file:`` reference to a file others may read; a missing file passes
    (it may be written later; polling says so until it is)."""
    kind, _, target = validate_ref(ref).partition(":")
    if kind == "file":
        try:
            mode = Path(target).stat().st_mode
        except OSError:
            return
        _check_private(target, mode)


def _check_private(target: str, mode: int) -> None:
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(
            f"secret file {target} is readable by group or others (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {target}"
        )


def fingerprint(secret: str) -> str:
    """A short, non-reversible fingerprint to tell rotations apart."""
    return "sha256:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()[:16]
