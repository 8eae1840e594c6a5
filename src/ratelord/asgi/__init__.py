"""The small ASGI layer shared by every server of ratelord (the daemon and the proxy).

``http``: requests, responses, routing and bounded body reading; ``logging``: structured
logs that carry the request id.  Nothing here knows the daemon's state, so the proxy and
the CLI use it without reaching into the daemon.
"""
