"""The pure core of ratelord: events in, projections and new events out.

Nothing in this package reads the wall clock, touches the network or the
disk.  Time arrives as an argument (epoch seconds, from the events or an
injected :class:`~ratelord.engine.clock.Clock`), which is what makes replay
exact and lets the simulator run the same engine on a virtual clock.
"""
