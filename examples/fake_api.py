"""A tiny local stand-in for the GitHub REST API, for trying the SDK's transport.

Every GET answers JSON with GitHub's rate-limit headers and spends one unit of
the bucket the path draws from (``/search/*`` → ``search``, 30 per minute;
anything else → ``core``, 5000 per hour).  An exhausted bucket answers 403
with ``x-ratelimit-remaining: 0`` like GitHub does.  Standard library only::

    python examples/fake_api.py --port 8099
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Bucket:
    limit: int
    window_seconds: int
    remaining: int = -1
    reset: int = 0

    def spend(self, now: float) -> bool:
        """Spend one unit; False when the bucket is empty until its reset."""
        if now >= self.reset:
            self.remaining, self.reset = self.limit, int(now) + self.window_seconds
        if self.remaining == 0:
            return False
        self.remaining -= 1
        return True


class FakeGitHub:
    def __init__(self) -> None:
        self.buckets = {"core": Bucket(5000, 3600), "search": Bucket(30, 60)}
        self.lock = threading.Lock()

    def answer(self, path: str) -> tuple[int, dict[str, str], dict[str, object]]:
        name = "search" if path.startswith("/search/") else "core"
        with self.lock:
            bucket = self.buckets[name]
            ok = bucket.spend(time.time())
            headers = {
                "x-ratelimit-limit": str(bucket.limit),
                "x-ratelimit-remaining": str(bucket.remaining),
                "x-ratelimit-used": str(bucket.limit - bucket.remaining),
                "x-ratelimit-reset": str(bucket.reset),
                "x-ratelimit-resource": name,
            }
        if not ok:
            return 403, headers, {"message": "API rate limit exceeded (fake)"}
        return 200, headers, {"path": path, "bucket": name}


def serve(host: str, port: int) -> None:
    api = FakeGitHub()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, headers, body = api.answer(self.path.split("?", 1)[0])
            payload = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {**headers, "content-type": "application/json"}.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer((host, port), Handler)
    print(f"fake GitHub API on http://{host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args()
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
