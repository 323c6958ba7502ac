"""A zero-latency OpenAI-style endpoint on 127.0.0.1: the floor a client measures against.

:class:`InstantServer` answers ``POST /v1/chat/completions`` at once, on the running event
loop, with a streamed (SSE, chunked) or plain JSON answer of ``tokens`` one-word tokens, and
keeps connections alive. Against it every millisecond a client reports is the client's own
(and the loop's); it counts the TCP connections it accepted, which is how the tests check
that a client pools connections. ``sse`` replaces the streamed body with given events (the
client's stream-validation tests); ``status`` answers every request with that status and an
OpenAI error body (``Retry-After: 1`` on a 429); ``end_delay_s`` ends each streamed body
that long after its ``[DONE]`` event, as real servers do (a client that stops reading at
``[DONE]`` then loses the connection). Plain asyncio protocol code, so that the
server costs far less CPU than any client it measures.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error"}


def sse_events(model: str, tokens: int) -> list[bytes]:
    """The events of a streamed answer of ``tokens`` words, with usage and ``[DONE]``."""
    def event(data: dict[str, Any]) -> bytes:
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    events = [event({"model": model, "choices": [{"index": 0, "delta": {"content": " w"}}]})
              for _ in range(tokens)]
    events.append(event({"model": model, "choices": [{"index": 0, "delta": {},
                                                      "finish_reason": "length"}]}))
    events.append(event({"model": model, "choices": [],
                         "usage": {"prompt_tokens": 8, "completion_tokens": tokens}}))
    events.append(b"data: [DONE]\n\n")
    return events


_LAST_CHUNK = b"0\r\n\r\n"


def _chunks(parts: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p)


class _Protocol(asyncio.Protocol):
    def __init__(self, server: InstantServer) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.server.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body, self.buffer = self.buffer[head_end + 4:end], self.buffer[end:]
            assert self.transport is not None
            answer, streamed = self.server.answer(head.split(" ", 2)[1], body)
            self.transport.write(answer)
            if streamed:
                delay = self.server.end_delay_s
                if delay > 0:  # like a real server: [DONE] first, the body's end a bit later
                    asyncio.get_running_loop().call_later(delay, self.transport.write,
                                                          _LAST_CHUNK)
                else:
                    self.transport.write(_LAST_CHUNK)


class InstantServer:
    """See the module docstring; ``async with InstantServer() as s: s.url``."""

    def __init__(self, *, tokens: int = 16, sse: bytes | None = None, status: int = 200,
                 end_delay_s: float = 0.0) -> None:
        self.tokens = tokens
        self.end_delay_s = end_delay_s
        self.sse = sse
        self.status = status
        self.connections = 0
        self.requests = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> InstantServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Protocol(self), "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def __aenter__(self) -> InstantServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def answer(self, path: str, body: bytes) -> tuple[bytes, bool]:
        """The HTTP response to one request; True when it is a chunked stream still to end
        (its last chunk is written ``end_delay_s`` later)."""
        self.requests += 1
        if path != "/v1/chat/completions":
            return _plain(404, b'{"error": {"message": "not found"}}'), False
        if self.status != 200:
            extra = "Retry-After: 1\r\n" if self.status == 429 else ""
            return _plain(self.status, json.dumps({"error": {
                "message": f"instant server answers {self.status}"}}).encode(), extra), False
        try:
            request = json.loads(body)
        except ValueError:
            return _plain(400, b'{"error": {"message": "body is not JSON"}}'), False
        model = str(request.get("model", "instant"))
        if not request.get("stream"):
            return _plain(200, json.dumps({
                "model": model, "choices": [{"message": {"content": " w" * self.tokens},
                                             "finish_reason": "length"}],
                "usage": {"prompt_tokens": 8, "completion_tokens": self.tokens}}).encode()), False
        events = [self.sse] if self.sse is not None else sse_events(model, self.tokens)
        return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + _chunks(events)), True


def _plain(status: int, body: bytes, extra: str = "") -> bytes:
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n")
    return head.encode() + body
