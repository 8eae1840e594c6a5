"""``ratelord``: the command line of ratelord-d (Typer + Rich).

It talks HTTP to the daemon and never imports daemon internals; only
``ratelord policy check`` works offline, through the policy engine.
"""
