"""ratelord-d: the HTTP shell around the engine and the store."""
