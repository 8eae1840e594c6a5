"""History and what-if: rollups of the log, state at any instant, sandboxed replay.

A read model beside the live engine, used by the web UI and its endpoints
(``daemon/webapi.py``); it never writes to the log.
"""
