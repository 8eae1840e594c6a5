"""The rate-limit header parsers, fed the formats documented in PROVIDERS.md."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratelord.headers import RateLimitObservation, bucket_for_path, parse_rate_limit_headers

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def parse(headers: dict[str, str], **kwargs: str) -> list[RateLimitObservation]:
    return parse_rate_limit_headers(headers, now=NOW, **kwargs)


def only(headers: dict[str, str], **kwargs: str) -> RateLimitObservation:
    (observation,) = parse(headers, **kwargs)
    return observation


# --------------------------------------------------------------------------- GitHub

GITHUB = {
    "x-ratelimit-limit": "5000",
    "x-ratelimit-remaining": "4321",
    "x-ratelimit-used": "679",
    "x-ratelimit-reset": "1767229200",
    "x-ratelimit-resource": "core",
}


def test_github_headers_give_the_named_bucket() -> None:
    assert only(GITHUB) == RateLimitObservation(
        family="github",
        bucket="core",
        limit=5000,
        remaining=4321,
        used=679,
        reset_at=1_767_229_200,
        window_seconds=3600,
        unit="requests",
    )


def test_header_names_are_case_insensitive() -> None:
    assert only({name.title(): value for name, value in GITHUB.items()}) == only(GITHUB)


@pytest.mark.parametrize(
    ("path", "bucket"),
    [
        ("/search/code", "code_search"),
        ("/search/code?q=x", "code_search"),
        ("/search/issues", "search"),
        ("/graphql", "graphql"),
        ("/repos/acme/api", "core"),
        (None, "core"),
    ],
)
def test_github_bucket_falls_back_to_the_path(path: str | None, bucket: str) -> None:
    assert bucket_for_path(path) == bucket
    headers = {"x-ratelimit-remaining": "3"}
    assert parse_rate_limit_headers(headers, now=NOW, path=path)[0].bucket == bucket


def test_github_graphql_counts_points_and_unknown_buckets_are_kept() -> None:
    assert only({"x-ratelimit-remaining": "9", "x-ratelimit-resource": "graphql"}).unit == "points"
    odd = only({"x-ratelimit-remaining": "9", "x-ratelimit-resource": "dependency_sbom"})
    assert (odd.bucket, odd.window_seconds) == ("dependency_sbom", None)


def test_github_used_may_exceed_limit_and_remaining_is_clamped() -> None:
    observation = only({**GITHUB, "x-ratelimit-used": "5002", "x-ratelimit-remaining": "-2"})
    assert (observation.used, observation.remaining) == (5002, 0)


def test_small_reset_is_a_delay_from_now() -> None:
    assert only({**GITHUB, "x-ratelimit-reset": "30"}).reset_at == NOW + 30


def test_github_malformed_values_are_skipped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="ratelord.headers"):
        assert parse({"x-ratelimit-remaining": "lots"}) == []
        observation = only({**GITHUB, "x-ratelimit-limit": "5k", "x-ratelimit-reset": "soon"})
    assert (observation.limit, observation.reset_at, observation.remaining) == (None, None, 4321)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3
    assert all(record.name == "ratelord.headers" for record in caplog.records)
    assert "x-ratelimit-limit='5k'" in messages[1]


# --------------------------------------------------------------------------- OpenAI

OPENAI = {
    "x-ratelimit-limit-requests": "60",
    "x-ratelimit-limit-tokens": "150000",
    "x-ratelimit-remaining-requests": "59",
    "x-ratelimit-remaining-tokens": "149984",
    "x-ratelimit-reset-requests": "1s",
    "x-ratelimit-reset-tokens": "6m0s",
}


def test_openai_gives_requests_and_tokens_with_absolute_resets() -> None:
    by_bucket = {o.bucket: o for o in parse(OPENAI)}
    assert by_bucket == {
        "requests": RateLimitObservation(
            family="openai", bucket="requests", limit=60, remaining=59, reset_at=NOW + 1
        ),
        "tokens": RateLimitObservation(
            family="openai",
            bucket="tokens",
            limit=150000,
            remaining=149984,
            reset_at=NOW + 360,
            unit="tokens",
        ),
    }


def test_openai_negative_means_unknown_without_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    headers = {**OPENAI, "x-ratelimit-limit-tokens": "-1", "x-ratelimit-remaining-requests": "-1"}
    with caplog.at_level(logging.WARNING, logger="ratelord.headers"):
        (tokens,) = parse(headers)
    assert (tokens.bucket, tokens.limit) == ("tokens", None)
    assert caplog.records == []


def test_openai_usage_based_variant_is_kept_and_bad_duration_warned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    headers = {
        "x-ratelimit-remaining-tokens_usage_based": "10",
        "x-ratelimit-reset-tokens_usage_based": "in a while",
    }
    with caplog.at_level(logging.WARNING, logger="ratelord.headers"):
        observation = only(headers)
    assert (observation.bucket, observation.unit, observation.reset_at) == (
        "tokens_usage_based",
        "tokens",
        None,
    )
    assert "Go duration" in caplog.text


# --------------------------------------------------------------------------- Anthropic

ANTHROPIC = {
    "anthropic-ratelimit-requests-limit": "50",
    "anthropic-ratelimit-requests-remaining": "49",
    "anthropic-ratelimit-requests-reset": "2026-01-01T00:00:01Z",
    "anthropic-ratelimit-input-tokens-limit": "40000",
    "anthropic-ratelimit-input-tokens-remaining": "39000",
    "anthropic-ratelimit-input-tokens-reset": "2026-01-01T00:00:30+00:00",
    "anthropic-ratelimit-output-tokens-remaining": "8000",
    "anthropic-priority-input-tokens-remaining": "1000",
}


def test_anthropic_buckets_with_rfc3339_resets() -> None:
    by_bucket = {o.bucket: o for o in parse(ANTHROPIC)}
    assert set(by_bucket) == {
        "requests",
        "input-tokens",
        "output-tokens",
        "priority-input-tokens",
    }
    assert by_bucket["requests"] == RateLimitObservation(
        family="anthropic", bucket="requests", limit=50, remaining=49, reset_at=NOW + 1
    )
    assert by_bucket["input-tokens"].reset_at == NOW + 30
    assert by_bucket["input-tokens"].unit == "tokens"


def test_anthropic_bad_reset_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    headers = {
        "anthropic-ratelimit-tokens-remaining": "5",
        "anthropic-ratelimit-tokens-reset": "tomorrow",
    }
    with caplog.at_level(logging.WARNING, logger="ratelord.headers"):
        assert only(headers).reset_at is None
    assert "RFC 3339" in caplog.text


# --------------------------------------------------------------------------- IETF


def test_ietf_current_form_joins_policy_and_limit_by_name() -> None:
    headers = {
        "RateLimit-Policy": '"burst";q=100;w=60, "daily";q=5000;w=86400;qu="content-bytes"',
        "RateLimit": '"burst";r=37;t=22, "daily";r=4000;pk=:cHJvamVjdA==:',
    }
    burst, daily = parse(headers)
    assert burst == RateLimitObservation(
        family="ietf", bucket="burst", limit=100, remaining=37, reset_at=NOW + 22, window_seconds=60
    )
    assert (daily.limit, daily.window_seconds, daily.unit, daily.reset_at) == (
        5000,
        86400,
        "content-bytes",
        None,
    )


def test_ietf_retry_after_wins_over_t() -> None:
    headers = {"RateLimit": '"burst";r=0;t=22, "daily";r=10', "Retry-After": "5"}
    burst, daily = parse(headers)
    assert (burst.reset_at, daily.reset_at) == (NOW + 5, None)


def test_ietf_policy_without_limit_field_has_unknown_limit() -> None:
    assert only({"RateLimit": "burst;r=3"}).limit is None


def test_ietf_draft07_dictionary() -> None:
    assert only({"RateLimit": "limit=100, remaining=50, reset=5"}) == RateLimitObservation(
        family="ietf", bucket="default", limit=100, remaining=50, reset_at=NOW + 5
    )


def test_ietf_separate_fields_with_unnamed_policy() -> None:
    headers = {
        "RateLimit-Limit": "10",
        "RateLimit-Remaining": "3",
        "RateLimit-Reset": "7",
        "RateLimit-Policy": "10;w=1",
    }
    assert only(headers) == RateLimitObservation(
        family="ietf", bucket="default", limit=10, remaining=3, reset_at=NOW + 7, window_seconds=1
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"RateLimit": '"burst";r=-1'},
        {"RateLimit": '"burst";t=5'},
        {"RateLimit": '"burst";r="many"'},
        {"RateLimit": "(inner list);r=1"},
        {"RateLimit": '"unterminated;r=1'},
        {"RateLimit": '"a";r=1,'},
        {"RateLimit-Remaining": "many"},
    ],
)
def test_ietf_malformed_fields_are_ignored_with_a_warning(
    headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="ratelord.headers"):
        assert parse(headers) == []
    assert caplog.records, "a malformed field must be reported"


def test_ietf_malformed_policy_still_reports_remaining(caplog: pytest.LogCaptureFixture) -> None:
    headers = {"RateLimit": '"burst";r=4', "RateLimit-Policy": '"burst";q=?x'}
    with caplog.at_level(logging.WARNING, logger="ratelord.headers"):
        observation = only(headers)
    assert (observation.remaining, observation.limit) == (4, None)
    assert "ratelimit-policy" in caplog.text


# --------------------------------------------------------------------------- mixed


def test_unrelated_headers_give_nothing() -> None:
    assert (
        parse({"content-type": "application/json", "date": "Thu, 01 Jan 2026 00:00:00 GMT"}) == []
    )


def test_families_coexist_in_one_response() -> None:
    families = {o.family for o in parse({**GITHUB, **OPENAI, **ANTHROPIC, "RateLimit": "a;r=1"})}
    assert families == {"github", "openai", "anthropic", "ietf"}


# --------------------------------------------------------------------------- robustness

HEADER_NAMES = [
    *GITHUB,
    *OPENAI,
    *ANTHROPIC,
    "ratelimit",
    "ratelimit-policy",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "retry-after",
    "date",
]


NUMBERS = st.one_of(st.integers(-(10**20), 10**20), st.floats(allow_nan=True)).map(str)
SF_ITEMS = st.builds(
    '"{}";r={};t={}'.format, st.text("abc", min_size=1, max_size=3), NUMBERS, NUMBERS
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    headers=st.dictionaries(
        st.sampled_from(HEADER_NAMES), st.one_of(st.text(max_size=40), NUMBERS, SF_ITEMS)
    ),
    path=st.one_of(st.none(), st.text(max_size=20)),
)
def test_any_header_values_parse_without_raising(
    headers: dict[str, str], path: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.CRITICAL, logger="ratelord.headers"):
        observations = parse_rate_limit_headers(headers, now=NOW, path=path)
    for observation in observations:
        assert observation.remaining >= 0
        assert observation.limit is None or observation.limit >= 0
