from __future__ import annotations

import pytest

from ratelord.tui.commands import (
    Clear,
    CommandError,
    FilterDecision,
    FilterDimension,
    Quit,
    SubmitIntent,
    parse,
)


@pytest.mark.parametrize(
    ("text", "command"),
    [
        (":q", Quit()),
        ("quit", Quit()),
        (":clear", Clear()),
        (":filter agent crawler-01", FilterDimension("agent", "crawler-01")),
        (":filter identity pat:alice", FilterDimension("identity", "pat:alice")),
        ("  :filter workload build ", FilterDimension("workload", "build")),
        (":filter decision deny", FilterDecision("deny_with_reason")),
        (":filter decision Modified", FilterDecision("approve_with_modifications")),
        (":filter decision approve", FilterDecision("approve")),
        (
            ':test {"agent_id": "a1", "identity_id": "id-a", "cost": 2}',
            SubmitIntent({"agent_id": "a1", "identity_id": "id-a", "cost": 2}),
        ),
    ],
)
def test_parse(text: str, command: object) -> None:
    assert parse(text) == command


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        (":frobnicate", "unknown command"),
        (":filter agent", "one key and one value"),
        (":filter agent a b", "one key and one value"),
        (":filter colour red", "cannot filter by 'colour'"),
        (":filter decision maybe", "unknown decision 'maybe'"),
        (":test {not json", ":test needs a JSON intent object"),
        (":test [1, 2]", "needs a JSON object"),
        (":clear now", "unknown command"),
    ],
)
def test_bad_commands_say_what_to_type(text: str, hint: str) -> None:
    with pytest.raises(CommandError, match=hint.replace("[", r"\[")):
        parse(text)
