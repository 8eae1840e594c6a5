"""Pure helpers for governing LLM calls: estimate before, read usage after, price both.

No I/O and no clock (the price table loader reads the one file it is given).
Used by the SDK's transports, the proxy and the daemon alike::

    from ratelord import llm

    estimate = llm.estimate_request(body, path="/v1/chat/completions")
    # TokenEstimate(api='openai-chat', model='gpt-4o-mini', input_tokens=31,
    #               output_tokens=100, method='heuristic');  estimate.total == 131
    llm.charges_for(estimate)
    # {'requests@gpt-4o-mini': 1.0, 'tokens@gpt-4o-mini': 131.0}

    usage = llm.usage_from_body(response_body)          # or, for a stream:
    reader = llm.StreamUsage()
    for chunk in stream: reader.feed(chunk)
    reader.close(); usage = reader.usage                # Usage(model, input_tokens, ...)

    table = llm.load_price_table("prices.yaml")         # or llm.default_price_table()
    table.price("gpt-4o-mini-2024-07-18").cost(usage)   # money, in table.currency

The API:

* :func:`estimate_request` (``body``, ``api=`` or ``path=``) → :class:`TokenEstimate`
  or ``None``: prompt tokens (tiktoken for OpenAI models where available, else
  one token per 3 UTF-8 bytes plus per-message overhead) and the output the
  call may write (``max_tokens``/``max_completion_tokens``/``max_output_tokens``,
  :data:`DEFAULT_MAX_OUTPUT_TOKENS` when unset).  :func:`api_for_path` names
  the API of a path; :func:`heuristic_tokens` is the fallback counter.
* :func:`usage_from_body` and :class:`StreamUsage` → :class:`Usage` (all input
  tokens, the cached part, output tokens, model) from OpenAI chat/completions,
  OpenAI responses and Anthropic messages bodies and SSE streams;
  :func:`tap_for` gives a :class:`UsageTap` that reads either kind of answer
  (gzip or not) from a copy of its bytes as they go by.
* :func:`model_resource` (``"tokens", "gpt-4o-mini"`` → ``tokens@gpt-4o-mini``),
  :func:`split_model_resource`, :func:`charges_for` (resource → cost of one
  call, from its estimate), :func:`usage_costs` (the same resources, from what
  the call really spent: the report that corrects the reservation),
  :func:`family_of` (``openai`` or ``anthropic``).
* :func:`load_price_table`, :func:`default_price_table` → :class:`PriceTable`;
  :meth:`PriceTable.price` finds a model's :class:`Price`, whose
  :meth:`~Price.cost` prices a :class:`Usage` and :meth:`~Price.estimate` the
  most a :class:`TokenEstimate` can cost.  Prices are per million tokens.
"""

from ratelord.llm._estimate import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    Api,
    TokenEstimate,
    api_for_path,
    estimate_request,
    heuristic_tokens,
)
from ratelord.llm._pools import (
    Family,
    charges_for,
    family_of,
    model_resource,
    split_model_resource,
    usage_costs,
)
from ratelord.llm._prices import (
    Price,
    PriceError,
    PriceTable,
    default_price_table,
    load_price_table,
)
from ratelord.llm._tap import UsageTap, tap_for
from ratelord.llm._usage import StreamUsage, Usage, usage_from_body

__all__ = [
    "DEFAULT_MAX_OUTPUT_TOKENS",
    "Api",
    "Family",
    "Price",
    "PriceError",
    "PriceTable",
    "StreamUsage",
    "TokenEstimate",
    "Usage",
    "UsageTap",
    "api_for_path",
    "charges_for",
    "default_price_table",
    "estimate_request",
    "family_of",
    "heuristic_tokens",
    "load_price_table",
    "model_resource",
    "split_model_resource",
    "tap_for",
    "usage_costs",
    "usage_from_body",
]
