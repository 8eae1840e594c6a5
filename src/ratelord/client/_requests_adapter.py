"""A ``requests`` transport adapter doing what :class:`RatelordTransport` does for httpx.

``requests`` is optional (``pip install ratelord[requests]``); this module is
imported only when ``ratelord.client.RatelordAdapter`` is first used::

    session = requests.Session()
    session.mount("https://api.github.com/", RatelordAdapter(
        client=ratelord, agent_id="crawler-01", identity_id="pat:alice"))
"""

from __future__ import annotations

from typing import Any, Unpack
from urllib.parse import urlsplit

import requests
from requests.adapters import DEFAULT_POOLBLOCK, DEFAULT_POOLSIZE, DEFAULT_RETRIES, HTTPAdapter

from ratelord.client._client import Client
from ratelord.client._gate import Gate, GateArgs


class RatelordAdapter(HTTPAdapter):
    """Ask before each request, wait as told, raise :class:`RatelordDenied`, report headers.

    ``pool_connections``, ``pool_maxsize``, ``max_retries`` and ``pool_block`` are
    :class:`requests.adapters.HTTPAdapter`'s; the others, the gate's (as for the transports).
    """

    def __init__(
        self,
        *,
        client: Client,
        pool_connections: int = DEFAULT_POOLSIZE,
        pool_maxsize: int = DEFAULT_POOLSIZE,
        max_retries: Any = DEFAULT_RETRIES,
        pool_block: bool = DEFAULT_POOLBLOCK,
        **gate: Unpack[GateArgs[requests.PreparedRequest]],
    ) -> None:
        super().__init__(pool_connections, pool_maxsize, max_retries, pool_block)
        self._gate: Gate[requests.PreparedRequest] = Gate(client, **gate)

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        ticket = self._gate.before(request)
        response = super().send(request, **kwargs)
        path = urlsplit(request.url or "").path
        self._gate.after(ticket, response.headers.items(), path, response.status_code)
        return response
