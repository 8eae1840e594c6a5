"""ratelord: a local daemon that governs shared API budgets for fleets of agents."""

__version__ = "0.1.0"
