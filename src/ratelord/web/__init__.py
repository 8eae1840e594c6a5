"""The web UI: static files served by ratelord-d under /ui."""
