"""A minimal OpenAI-compatible streaming server for testing the load generator without an engine.

Raw asyncio on 127.0.0.1 (one request per connection, ``Connection: close``), in a background
thread. Streamed token texts contain U+2028, U+2029 and U+0085 *unescaped* inside JSON strings
(as the random tiny model's output does), and every event is written in two pieces, so a client
that splits on anything but "\\n" or assumes whole events per read fails visibly.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

# How the server treats the n-th completion request (1-based) and its body.
Behaviour = Callable[[int, dict[str, Any]], str]  # "ok" | "500" | "400" | "drop" | "garbage"

ODD_TEXTS = (" a\u2028b", " c\u2029d", " e\u0085f", ' "q"\n')


def _always_ok(_n: int, _req: dict[str, Any]) -> str:
    return "ok"


class FakeOpenAI:
    def __init__(
        self,
        *,
        token_delay_s: float = 0.001,
        behaviour: Behaviour = _always_ok,
        model: str = "fake",
        max_model_len: int = 512,
        list_models: bool = True,
    ) -> None:
        self.token_delay_s = token_delay_s
        self.behaviour = behaviour
        self.model = model
        self.max_model_len = max_model_len
        self.list_models = list_models
        self.completions = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        fut.result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def stop_listening(self) -> None:
        """Refuse new connections from now on (requests already streaming go on)."""
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        # Streams still being written (a client that gave up) end here, not with the loop.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {
                k.strip().lower(): v.strip()
                for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if path == "/v1/models" and self.list_models:
                card = {"id": self.model, "max_model_len": self.max_model_len, "root": "/fake"}
                await self._json(writer, 200, {"object": "list", "data": [card]})
            elif path == "/health":
                await self._json(writer, 200, {})
            elif path == "/v1/completions" and method == "POST":
                await self._completion(writer, json.loads(body))
            else:
                await self._json(writer, 404, {"error": {"message": f"no route {path}"}})
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _json(self, writer: asyncio.StreamWriter, code: int, doc: Any) -> None:
        data = json.dumps(doc).encode()
        writer.write(
            f"HTTP/1.1 {code} X\r\ncontent-type: application/json\r\n"
            f"content-length: {len(data)}\r\nconnection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()

    async def _completion(self, writer: asyncio.StreamWriter, req: dict[str, Any]) -> None:
        self.completions += 1
        if req.get("model") != self.model:
            await self._json(writer, 404, {"error": {"message": f"model {req.get('model')}"}})
            return
        mode = self.behaviour(self.completions, req)
        if mode in ("500", "400"):
            await self._json(writer, int(mode), {"error": {"message": f"injected {mode}"}})
            return
        if mode == "drop":
            writer.transport.abort()
            return
        prompt_tokens = len(str(req["prompt"]).split()) + 1  # one BOS
        n = int(req["max_tokens"])
        if not req.get("stream"):
            doc = {
                "choices": [{"index": 0, "text": " x" * n, "finish_reason": "length"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": n},
            }
            await self._json(writer, 200, doc)
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
        )
        if mode == "garbage":
            writer.write(b"data: {not json\n\n")
            await writer.drain()
            return
        for i in range(n):
            await asyncio.sleep(self.token_delay_s)
            choice = {
                "index": 0,
                "text": ODD_TEXTS[i % len(ODD_TEXTS)],
                "finish_reason": "length" if i == n - 1 else None,
            }
            event = json.dumps({"choices": [choice], "usage": None}, ensure_ascii=False)
            raw = f"data: {event}\n\n".encode()
            half = len(raw) // 2
            writer.write(raw[:half])
            await writer.drain()
            writer.write(raw[half:])
            await writer.drain()
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": n}
        writer.write(f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode())
        writer.write(b"data: [DONE]\n\n")
        await writer.drain()
