"""The providers an identity may name, and what each can do without being told."""

from __future__ import annotations

#: provider id → whether it discovers an identity's principal from the credential
#: (the others need ``principal`` at registration).  Providers not configured under
#: ``providers:`` can still be named: their pools are fed by usage reports.
DISCOVERS_PRINCIPAL: dict[str, bool] = {
    "github": True,
    "mock": False,
    "openai": False,
    "anthropic": False,
}
