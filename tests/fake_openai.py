"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions API, with scripted replies.

Each scripted step is one of:
  ("text", "reply")          a normal completion (streamed as SSE chunks when the request asks)
  ("status", 429|500|401|404) an error status with an OpenAI-style error body
  ("sleep", seconds)          answer only after a delay (to trigger client timeouts)
  ("garbage", "body")         a 200 with a body that is not valid JSON
  ("cut", "reply")           a completion that stopped at max_tokens (finish_reason "length")
The last step repeats when the script runs out.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAI:
    def __init__(self, script: list[tuple[str, Any]] | None = None) -> None:
        self.script = list(script or [("text", "Hello.")])
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(
                        200, json.dumps({"object": "list", "data": [{"id": "fake-model", "object": "model"}]}).encode()
                    )
                else:
                    self._send(404, b'{"error": {"message": "not found"}}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length) or b"{}")
                with outer._lock:
                    outer.requests.append(payload)
                    step = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                kind, value = step
                if kind == "sleep":
                    time.sleep(value)
                    kind, value = "text", "Late reply."
                if kind == "status":
                    body = json.dumps({"error": {"message": f"scripted {value}", "type": "scripted", "code": value}})
                    self._send(int(value), body.encode())
                    return
                if kind == "garbage":
                    self._send(200, str(value).encode())
                    return
                if "/embeddings" in self.path:
                    inputs = payload["input"] if isinstance(payload["input"], list) else [payload["input"]]
                    data = [
                        {"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.5]}
                        for i, t in enumerate(inputs)
                    ]
                    self._send(
                        200,
                        json.dumps(
                            {
                                "object": "list",
                                "data": data,
                                "model": payload.get("model"),
                                "usage": {"prompt_tokens": 1, "total_tokens": 1},
                            }
                        ).encode(),
                    )
                    return
                finish = "length" if kind == "cut" else "stop"
                if payload.get("stream"):
                    self._stream(str(value), payload, finish)
                else:
                    body = {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": payload.get("model", "fake-model"),
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": value}, "finish_reason": finish}
                        ],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
                    }
                    self._send(200, json.dumps(body).encode())

            def _stream(self, text: str, payload: dict[str, Any], finish: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                pieces = [text[i : i + 5] for i in range(0, len(text), 5)]
                for piece in pieces:
                    chunk = {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion.chunk",
                        "created": 0,
                        "model": payload.get("model", "fake-model"),
                        "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                    }
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                stop = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": payload.get("model", "fake-model"),
                    "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
                }
                self.wfile.write(f"data: {json.dumps(stop)}\n\n".encode())
                final = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": payload.get("model", "fake-model"),
                    "choices": [],
                    "usage": {"prompt_tokens": 11, "completion_tokens": len(pieces), "total_tokens": 11 + len(pieces)},
                }
                self.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
