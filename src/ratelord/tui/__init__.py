"""``ratelord tui``: a live terminal dashboard, a read-only client of the HTTP API and SSE stream.

Textual is imported only when the dashboard starts (:func:`ratelord.tui.main.run_tui`), so
importing this package stays cheap.
"""
