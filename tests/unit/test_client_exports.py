"""The public surface of ratelord.client is curated and light to import."""

from __future__ import annotations

import subprocess
import sys

import ratelord.client


def test_all_is_sorted_and_complete() -> None:
    exported = ratelord.client.__all__
    assert exported == sorted(exported)
    for name in exported:
        assert getattr(ratelord.client, name) is not None


def test_importing_the_client_loads_neither_textual_nor_requests() -> None:
    code = (
        "import sys, ratelord.client; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'textual', 'requests'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_exceptions_form_one_hierarchy() -> None:
    from ratelord.client import (
        RatelordDenied,
        RatelordError,
        RatelordProtocolError,
        RatelordRequestError,
        RatelordTransportError,
        RatelordUnavailable,
    )

    for error in (RatelordDenied, RatelordRequestError, RatelordTransportError):
        assert issubclass(error, RatelordError)
    for error in (RatelordUnavailable, RatelordProtocolError):
        assert issubclass(error, RatelordTransportError)
