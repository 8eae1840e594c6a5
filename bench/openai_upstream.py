"""A fast OpenAI-shaped upstream for the proxy benchmark: every POST answers a fixed chat
completion with its usage and (generous) rate-limit headers, on the daemon's own stack
(uvicorn + uvloop + httptools), so the upstream is never what is measured."""

from __future__ import annotations

import json
import sys

import uvicorn

BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
    }
).encode()
HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
    (b"x-ratelimit-limit-requests", b"100000000"),
    (b"x-ratelimit-remaining-requests", b"99999999"),
    (b"x-ratelimit-reset-requests", b"1ms"),
    (b"x-ratelimit-limit-tokens", b"10000000000"),
    (b"x-ratelimit-remaining-tokens", b"9999999990"),
    (b"x-ratelimit-reset-tokens", b"1ms"),
]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
