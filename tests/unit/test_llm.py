"""ratelord.llm: token estimates, usage from bodies and streams, pool names, prices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratelord import llm
from ratelord.llm._estimate import IMAGE_TOKENS, MESSAGE_OVERHEAD, REPLY_OVERHEAD

PROMPT = "Summarise the incident report in three sentences."  # 50 ASCII bytes


def chat(**extra: object) -> bytes:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]}
    return json.dumps(body | extra).encode()


# ---------------------------------------------------------------------- estimates


def test_chat_estimate_counts_prompt_overheads_and_max_tokens() -> None:
    estimate = llm.estimate_request(chat(max_tokens=100), path="/v1/chat/completions")
    assert estimate is not None
    assert estimate.api == "openai-chat"
    assert estimate.model == "gpt-4o-mini"
    assert estimate.method == "heuristic"
    assert estimate.input_tokens == REPLY_OVERHEAD + MESSAGE_OVERHEAD + 17  # ceil(50 / 3)
    assert estimate.output_tokens == 100
    assert estimate.total == estimate.input_tokens + 100


def test_max_completion_tokens_wins_and_n_multiplies_the_output() -> None:
    estimate = llm.estimate_request(
        chat(max_tokens=100, max_completion_tokens=40, n=3), api="openai-chat"
    )
    assert estimate is not None and estimate.output_tokens == 120


def test_an_unbounded_answer_is_assumed_long() -> None:
    estimate = llm.estimate_request(chat(), api="openai-chat")
    assert estimate is not None
    assert estimate.output_tokens == llm.DEFAULT_MAX_OUTPUT_TOKENS
    shorter = llm.estimate_request(chat(), api="openai-chat", default_max_output_tokens=256)
    assert shorter is not None and shorter.output_tokens == 256


def test_anthropic_counts_system_blocks_and_images_at_a_flat_rate() -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 300,
        "system": [{"type": "text", "text": "x" * 30, "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "data": "A" * 90_000}},
                    {"type": "text", "text": "y" * 9},
                ],
            }
        ],
    }
    estimate = llm.estimate_request(body, path="/v1/messages")
    assert estimate is not None and estimate.api == "anthropic-messages"
    assert estimate.input_tokens == 10 + MESSAGE_OVERHEAD + IMAGE_TOKENS + 3
    assert estimate.output_tokens == 300


def test_responses_completions_and_embeddings() -> None:
    responses = llm.estimate_request(
        {"model": "gpt-4.1", "instructions": "abc", "input": "defghi", "max_output_tokens": 7},
        path="/v1/responses",
    )
    assert responses is not None
    assert (responses.input_tokens, responses.output_tokens) == (
        REPLY_OVERHEAD + 1 + MESSAGE_OVERHEAD + 2,
        7,
    )
    legacy = llm.estimate_request({"model": "m", "prompt": ["abc", "def"]}, path="/v1/completions")
    assert legacy is not None and (legacy.input_tokens, legacy.output_tokens) == (2, 32)
    embeddings = llm.estimate_request({"input": ["abcdef"]}, path="/v1/embeddings")
    assert embeddings is not None and embeddings.model is None
    assert (embeddings.input_tokens, embeddings.output_tokens) == (2, 0)


def test_tool_schemas_count_as_prompt() -> None:
    plain = llm.estimate_request(chat(max_tokens=1), api="openai-chat")
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    with_tools = llm.estimate_request(chat(max_tokens=1, tools=tools), api="openai-chat")
    assert plain is not None and with_tools is not None
    assert with_tools.input_tokens > plain.input_tokens + 10


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (b"not json", "/v1/chat/completions"),
        (b"[1, 2]", "/v1/chat/completions"),
        (chat(), "/v1/models"),
        (chat(), "/repos/acme/api"),
    ],
)
def test_what_is_not_an_llm_call_gives_none(body: bytes, path: str) -> None:
    assert llm.estimate_request(body, path=path) is None


def test_odd_field_types_are_ignored_not_raised() -> None:
    estimate = llm.estimate_request(
        {"model": 5, "messages": "oops", "max_tokens": "lots", "n": -2}, api="openai-chat"
    )
    assert estimate is not None and estimate.model is None
    assert estimate.output_tokens == llm.DEFAULT_MAX_OUTPUT_TOKENS


@given(st.text(max_size=400))
def test_the_heuristic_never_counts_fewer_tokens_than_a_quarter_of_the_characters(
    text: str,
) -> None:
    assert llm.heuristic_tokens(text) * 4 >= len(text)


# ---------------------------------------------------------------------- usage


def test_usage_from_openai_chat_responses_and_anthropic_bodies() -> None:
    chat_usage = llm.usage_from_body(
        json.dumps(
            {
                "model": "gpt-4o-mini-2024-07-18",
                "usage": {
                    "prompt_tokens": 30,
                    "completion_tokens": 100,
                    "total_tokens": 130,
                    "prompt_tokens_details": {"cached_tokens": 10},
                },
            }
        ).encode()
    )
    assert chat_usage == llm.Usage(
        model="gpt-4o-mini-2024-07-18", input_tokens=30, output_tokens=100, cached_input_tokens=10
    )
    responses = llm.usage_from_body(
        {
            "object": "response",
            "model": "gpt-4.1",
            "usage": {
                "input_tokens": 5,
                "output_tokens": 6,
                "total_tokens": 11,
                "input_tokens_details": {"cached_tokens": 2},
            },
        }
    )
    assert responses == llm.Usage(
        model="gpt-4.1", input_tokens=5, output_tokens=6, cached_input_tokens=2
    )
    anthropic = llm.usage_from_body(
        {
            "type": "message",
            "model": "claude-sonnet-4-5",
            "usage": {
                "input_tokens": 10,
                "output_tokens": 20,
                "cache_read_input_tokens": 100,
                "cache_creation_input_tokens": 5,
            },
        }
    )
    assert anthropic == llm.Usage(
        model="claude-sonnet-4-5", input_tokens=115, output_tokens=20, cached_input_tokens=100
    )
    assert anthropic.total == 135


@pytest.mark.parametrize("body", [b"", b"{}", b'{"usage": null}', b'{"usage": {"x": 1}}', b"[]"])
def test_bodies_without_usage_give_none(body: bytes) -> None:
    assert llm.usage_from_body(body) is None


OPENAI_STREAM = (
    b'data: {"id":"c","model":"gpt-4o-mini","choices":[{"delta":{"content":"Hi"}}],'
    b'"usage":null}\n\n'
    b'data: {"id":"c","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":30,'
    b'"completion_tokens":99,"total_tokens":129}}\n\n'
    b"data: [DONE]\n\n"
)
ANTHROPIC_STREAM = (
    b"event: message_start\r\n"
    b'data: {"type":"message_start","message":{"model":"claude-haiku-4-5","usage":'
    b'{"input_tokens":25,"output_tokens":1,"cache_read_input_tokens":0}}}\r\n\r\n'
    b"event: content_block_delta\r\n"
    b'data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"usage"}}\r\n\r\n'
    b"event: message_delta\r\n"
    b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
    b'"usage":{"output_tokens":57}}\r\n\r\n'
    b'event: message_stop\r\ndata: {"type":"message_stop"}\r\n\r\n'
)
RESPONSES_STREAM = (
    b"event: response.output_text.delta\n"
    b'data: {"type":"response.output_text.delta","delta":"hi"}\n\n'
    b"event: response.completed\n"
    b'data: {"type":"response.completed","response":{"model":"gpt-4.1","usage":'
    b'{"input_tokens":8,"output_tokens":3,"total_tokens":11}}}\n\n'
)


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        (OPENAI_STREAM, llm.Usage(model="gpt-4o-mini", input_tokens=30, output_tokens=99)),
        (
            ANTHROPIC_STREAM,
            llm.Usage(model="claude-haiku-4-5", input_tokens=25, output_tokens=57),
        ),
        (RESPONSES_STREAM, llm.Usage(model="gpt-4.1", input_tokens=8, output_tokens=3)),
    ],
)
@given(cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8))
def test_stream_usage_is_the_same_however_the_bytes_are_split(
    stream: bytes, expected: llm.Usage, cuts: list[int]
) -> None:
    reader = llm.StreamUsage()
    points = sorted({c % (len(stream) + 1) for c in cuts})
    for start, end in zip([0, *points], [*points, len(stream)], strict=True):
        reader.feed(stream[start:end])
    reader.close()
    assert reader.usage == expected


def test_a_stream_without_usage_reports_none_and_a_final_line_without_newline_counts() -> None:
    reader = llm.StreamUsage()
    reader.feed(b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\ndata: [DONE]\n\n')
    assert reader.usage is None
    reader.feed(b'data: {"usage":{"prompt_tokens":1,"completion_tokens":2}}')
    assert reader.usage is None
    reader.close()
    assert reader.usage == llm.Usage(input_tokens=1, output_tokens=2)


# ---------------------------------------------------------------------- pools


def test_model_resources_are_safe_in_pool_ids_and_split_back() -> None:
    assert llm.model_resource("tokens", "gpt-4o-mini") == "tokens@gpt-4o-mini"
    assert llm.model_resource("tokens", None) == "tokens"
    odd = llm.model_resource("requests", "ft:gpt-4o-mini:acme::abc 1")
    assert ":" not in odd and " " not in odd
    assert llm.split_model_resource(odd) == ("requests", "ft_gpt-4o-mini_acme__abc_1")
    assert llm.split_model_resource("core") == ("core", None)
    assert len(llm.model_resource("tokens", "m" * 500)) == 200


def test_charges_per_family() -> None:
    openai = llm.estimate_request(chat(max_tokens=100), api="openai-chat")
    assert openai is not None
    assert llm.charges_for(openai) == {
        "requests@gpt-4o-mini": 1.0,
        "tokens@gpt-4o-mini": float(openai.total),
    }
    anthropic = llm.estimate_request(
        {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": []}, api="anthropic-messages"
    )
    assert anthropic is not None
    assert llm.charges_for(anthropic) == {
        "requests@claude-haiku-4-5": 1.0,
        "input-tokens@claude-haiku-4-5": 0.0,
        "output-tokens@claude-haiku-4-5": 50.0,
    }


# ---------------------------------------------------------------------- prices


def test_prices_match_exact_names_then_the_longest_pattern() -> None:
    table = llm.PriceTable(
        models={
            "gpt-4o*": llm.Price(input=2.5, output=10),
            "gpt-4o-mini*": llm.Price(input=0.15, output=0.6, cached_input=0.075),
            "gpt-4o-mini-special": llm.Price(input=1, output=1),
        }
    )
    assert table.price("gpt-4o-mini-2024-07-18") == table.models["gpt-4o-mini*"]
    assert table.price("gpt-4o-2024-08-06") == table.models["gpt-4o*"]
    assert table.price("gpt-4o-mini-special") == table.models["gpt-4o-mini-special"]
    assert table.price("claude-x") is None and table.price(None) is None


def test_cost_charges_cached_input_at_its_own_price() -> None:
    price = llm.Price(input=2.0, output=8.0, cached_input=0.5)
    usage = llm.Usage(input_tokens=1_000_000, cached_input_tokens=400_000, output_tokens=500_000)
    assert price.cost(usage) == pytest.approx(0.6 * 2.0 + 0.4 * 0.5 + 0.5 * 8.0)
    assert llm.Price(input=2.0, output=8.0).cost(usage) == pytest.approx(2.0 + 4.0)
    estimate = llm.TokenEstimate(
        api="openai-chat", model="m", input_tokens=1000, output_tokens=2000, method="heuristic"
    )
    assert price.estimate(estimate) == pytest.approx((1000 * 2.0 + 2000 * 8.0) / 1e6)


def test_the_shipped_table_loads_and_prices_known_families() -> None:
    table = llm.default_price_table()
    assert table.currency == "USD"
    for model in ("gpt-4o-mini-2024-07-18", "claude-sonnet-4-5-20250929", "gpt-4.1-nano"):
        assert table.price(model) is not None, model


def test_a_price_table_file_loads_and_its_errors_name_the_file(tmp_path: Path) -> None:
    good = tmp_path / "prices.yaml"
    good.write_text("currency: EUR\nmodels:\n  my-model: {input: 1, output: 2}\n")
    table = llm.load_price_table(good)
    assert table.currency == "EUR" and table.price("my-model") == llm.Price(input=1, output=2)
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  my-model: {input: -1, output: 2}\n")
    with pytest.raises(llm.PriceError, match=r"bad\.yaml.*input"):
        llm.load_price_table(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("models:\n  my-model: {input: 1, outptu: 2}\n")
    with pytest.raises(llm.PriceError, match=r"typo\.yaml"):
        llm.load_price_table(typo)
    with pytest.raises(llm.PriceError, match="cannot read"):
        llm.load_price_table(tmp_path / "missing.yaml")


def test_usage_costs_name_the_pools_the_estimate_charged() -> None:
    openai = llm.estimate_request(chat(max_tokens=100), api="openai-chat")
    assert openai is not None
    usage = llm.Usage(model="gpt-4o-mini-2024-07-18", input_tokens=30, output_tokens=70)
    assert llm.usage_costs(openai, usage) == {"tokens@gpt-4o-mini": 100.0}
    anthropic = llm.estimate_request(
        {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": []}, api="anthropic-messages"
    )
    assert anthropic is not None
    assert llm.usage_costs(anthropic, usage) == {
        "input-tokens@claude-haiku-4-5": 30.0,
        "output-tokens@claude-haiku-4-5": 70.0,
    }
