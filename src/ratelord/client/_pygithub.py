"""PyGithub through ratelord, on its public extension point: the ``auth`` object.

PyGithub opens its HTTP connections itself (no session or transport to plug
in), but it hands every request's headers to its ``auth`` first.
:class:`RatelordGithubAuth` wraps the real auth (a token, an app installation…):
it adds the credential, then asks ratelord-d for the call and sleeps as told,
or raises :class:`~ratelord.client.RatelordDenied` (PyGithub lets it through
unchanged, and does not retry it)::

    from github import Auth, Github
    auth = RatelordGithubAuth(Auth.Token(token), client=ratelord,
                              agent_id="crawler-01", identity_id="pat:alice")
    gh = Github(auth=auth, retry=None)

The auth does not see the request's path, so every call is charged to one
``resource`` (``core`` by default; a client that only searches passes
``resource="search"``), and it cannot read the response: the daemon learns
the budget from its GitHub poller (``providers: {github: …}``).  ``retry=None``
keeps PyGithub from waiting out a rate limit on its own behind ratelord's back.
"""

from __future__ import annotations

from typing import Any

from github.Auth import Auth
from github.Requester import Requester, WithRequester

from ratelord.client._client import Client
from ratelord.client._gate import Gate
from ratelord.schema import SENTINEL_GLOBAL, SENTINEL_UNKNOWN, Urgency


class RatelordGithubAuth(Auth, WithRequester["RatelordGithubAuth"]):
    """A PyGithub ``Auth`` that asks ratelord-d before every request it authenticates."""

    def __init__(
        self,
        auth: Auth,
        *,
        client: Client,
        agent_id: str,
        identity_id: str,
        resource: str = "core",
        workload_id: str = SENTINEL_UNKNOWN,
        scope_id: str = SENTINEL_GLOBAL,
        urgency: Urgency = "normal",
        max_wait: float | None = None,
    ) -> None:
        WithRequester.__init__(self)
        self._auth = auth
        self._gate: Gate[dict[str, str]] = Gate(
            client,
            agent_id=agent_id,
            identity_id=identity_id,
            workload_id=workload_id,
            scope_id=scope_id,
            urgency=urgency,
            route=lambda headers: {"resource": resource, "cost": 1},
            max_wait=max_wait,
        )

    def withRequester(self, requester: Requester) -> RatelordGithubAuth:
        """PyGithub hands its requester over; an app installation's auth needs it too."""
        super().withRequester(requester)
        if isinstance(self._auth, WithRequester):
            self._auth.withRequester(requester)
        return self

    @property
    def token_type(self) -> str:
        return self._auth.token_type

    @property
    def token(self) -> str:
        return self._auth.token

    def authentication(self, headers: dict[str, Any]) -> None:
        self._auth.authentication(headers)
        self._gate.before(headers)

    def mask_authentication(self, headers: dict[str, Any]) -> None:
        self._auth.mask_authentication(headers)
