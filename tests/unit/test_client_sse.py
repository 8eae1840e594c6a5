from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ratelord.client._sse import SseDecoder, SseMessage


def decode(lines: list[str]) -> list[SseMessage]:
    decoder = SseDecoder()
    return [m for m in (decoder.feed(line) for line in lines) if m is not None]


def test_a_block_becomes_one_message_and_comments_are_skipped() -> None:
    lines = [": ping", "", "id: 7", "event: intent_decided", 'data: {"seq": 7}', ""]
    assert decode(lines) == [SseMessage("intent_decided", '{"seq": 7}', "7")]


def test_multiline_data_is_joined_and_event_type_resets_between_messages() -> None:
    lines = ["event: a", "data: one", "data: two", "", "data: three", ""]
    assert decode(lines) == [
        SseMessage("a", "one\ntwo", None),
        SseMessage("message", "three", None),
    ]


def test_a_block_without_data_dispatches_nothing() -> None:
    assert decode(["id: 3", "event: x", "", ""]) == []


texts = st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=30)


@given(
    st.lists(
        st.tuples(st.integers(1, 10**9), st.from_regex(r"[a-z_]{1,20}", fullmatch=True), texts)
    )
)
def test_what_a_server_frames_decodes_back_unchanged(messages: list[tuple[int, str, str]]) -> None:
    lines: list[str] = []
    for seq, event, data in messages:
        lines += [f"id: {seq}", f"event: {event}", f"data: {data}", ": ping", ""]
    assert decode(lines) == [SseMessage(e, d, str(s)) for s, e, d in messages]
