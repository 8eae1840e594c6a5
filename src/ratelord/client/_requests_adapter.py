"""A ``requests`` transport adapter doing what :class:`RatelordTransport` does for httpx.

``requests`` is optional (``pip install ratelord[requests]``); this module is
imported only when ``ratelord.client.RatelordAdapter`` is first used::

    session = requests.Session()
    session.mount("https://api.github.com/", RatelordAdapter(
        client=ratelord, agent_id="crawler-01", identity_id="pat:alice"))
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from ratelord.client._client import Client
from ratelord.client._gate import Gate, Route
from ratelord.schema import SENTINEL_GLOBAL, SENTINEL_UNKNOWN, Urgency


class RatelordAdapter(HTTPAdapter):
    """Ask before each request, wait as told, raise :class:`RatelordDenied`, report headers.

    Extra keyword arguments (``max_retries``, ``pool_connections`` …) go to
    :class:`requests.adapters.HTTPAdapter`.
    """

    def __init__(
        self,
        *,
        client: Client,
        agent_id: str,
        identity_id: str,
        workload_id: str = SENTINEL_UNKNOWN,
        scope_id: str = SENTINEL_GLOBAL,
        urgency: Urgency = "normal",
        route: Route[requests.PreparedRequest] | None = None,
        max_wait: float | None = None,
        lease: bool | None = None,
        **adapter_options: Any,
    ) -> None:
        super().__init__(**adapter_options)
        self._gate: Gate[requests.PreparedRequest] = Gate(
            client,
            agent_id=agent_id,
            identity_id=identity_id,
            workload_id=workload_id,
            scope_id=scope_id,
            urgency=urgency,
            route=route,
            max_wait=max_wait,
            lease=lease,
        )

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        ticket = self._gate.before(request)
        response = super().send(request, **kwargs)
        path = urlsplit(request.url or "").path
        self._gate.after(ticket, response.headers.items(), path, response.status_code)
        return response
