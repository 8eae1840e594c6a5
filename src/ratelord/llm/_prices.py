"""Money per model, from a price table people keep up to date themselves.

The table is YAML; prices are in the table's currency per **million** tokens::

    currency: USD
    models:
      gpt-4o-mini:  {input: 0.15, output: 0.60, cached_input: 0.075}
      "claude-sonnet-4*": {input: 3.00, output: 15.00, cached_input: 0.30}

A model name is matched exactly first, then against the patterns (``*``,
``?``, ``[…]`` as in shell globs), the longest pattern first, so dated
snapshots (``gpt-4o-mini-2024-07-18``) find their family's price.  A missing
``cached_input`` costs as ``input``.  :func:`default_price_table` is the table
shipped with ratelord (``prices.yaml`` beside this module, with the date its
prices were copied): copy it, edit it, and point the daemon at the copy.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from importlib import resources
from pathlib import Path
from typing import Annotated

import msgspec
import yaml

from ratelord.llm._estimate import TokenEstimate
from ratelord.llm._usage import Usage

__all__ = ["Price", "PriceError", "PriceTable", "default_price_table", "load_price_table"]

PerMillion = Annotated[float, msgspec.Meta(ge=0, le=1e6)]
_PER = 1_000_000.0


class PriceError(ValueError):
    """The price table cannot be read; the message names the file and the entry."""


class Price(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    input: PerMillion
    output: PerMillion
    cached_input: PerMillion | None = None

    def cost(self, usage: Usage) -> float:
        """Money one call cost, from what it really spent."""
        cached = min(usage.cached_input_tokens, usage.input_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        return (
            (usage.input_tokens - cached) * self.input
            + cached * cached_price
            + usage.output_tokens * self.output
        ) / _PER

    def estimate(self, estimate: TokenEstimate) -> float:
        """The most one call can cost: its whole prompt uncached, ``max_tokens`` written."""
        return (estimate.input_tokens * self.input + estimate.output_tokens * self.output) / _PER


class PriceTable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    currency: Annotated[str, msgspec.Meta(min_length=1, max_length=10)] = "USD"
    models: dict[str, Price] = {}
    source: str = ""

    def price(self, model: str | None) -> Price | None:
        """The price of ``model``: exact name first, then the longest matching pattern."""
        if not model:
            return None
        exact = self.models.get(model)
        if exact is not None:
            return exact
        for pattern in sorted(self.models, key=len, reverse=True):
            if fnmatchcase(model, pattern):
                return self.models[pattern]
        return None


def load_price_table(path: str | Path) -> PriceTable:
    """Read a price table file; :class:`PriceError` says which file and entry is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PriceError(f"{path}: cannot read the price table ({exc.strerror})") from exc
    return _parse(text, str(path))


def default_price_table() -> PriceTable:
    """The table shipped with ratelord (see ``prices.yaml`` for its date)."""
    text = resources.files("ratelord.llm").joinpath("prices.yaml").read_text(encoding="utf-8")
    return _parse(text, "built-in prices.yaml")


def _parse(text: str, source: str) -> PriceTable:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PriceError(f"{source}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise PriceError(f"{source}: expected a mapping with 'currency' and 'models'")
    try:
        table = msgspec.convert(raw, PriceTable)
    except msgspec.ValidationError as exc:
        raise PriceError(f"{source}: {exc} (prices are per million tokens, >= 0)") from exc
    return msgspec.structs.replace(table, source=source)
