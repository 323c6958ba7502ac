"""The HTTP/1.1 layer under the API: keep-alive, pipelining, chunked bodies, bad requests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any


async def _raw(port: int, data: bytes, *, until_closed: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        if until_closed:
            return await asyncio.wait_for(reader.read(), 10)
        return await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()


def test_pipelined_requests_get_answers_in_order(emulator: Any) -> None:
    request = (b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n"
               b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n"
               b'{"prompt": "hi"}\n'
               b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")

    async def go() -> bytes:
        async with emulator() as (emu, _):
            return await _raw(emu.port, request)
    answer = asyncio.run(go())
    assert answer.count(b"HTTP/1.1 200 OK") == 3
    assert answer.index(b'"version"') < answer.index(b'"count"')
    assert answer.rstrip().endswith(b"content-length: 0\r\nconnection: close")


def test_chunked_request_body_and_keep_alive(emulator: Any) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'{"model": "m", '
        yield b'"prompt": "one two three", "add_special_tokens": false}'

    async def go() -> tuple[Any, Any]:
        async with emulator() as (_, client):
            first = await client.post("/tokenize", content=body())
            second = await client.post("/tokenize", json={"prompt": "four"})
            return first, second
    first, second = asyncio.run(go())
    assert first.json()["count"] == 3
    assert second.json()["count"] == 2  # with the begin-of-text token


def test_expect_100_continue_is_answered(emulator: Any) -> None:
    payload = json.dumps({"prompt": "x"}).encode()

    async def go() -> bytes:
        async with emulator() as (emu, _):
            reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
            writer.write(b"POST /tokenize HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                         b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(payload))
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            writer.write(payload)
            rest = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return interim + rest
    answer = asyncio.run(go())
    assert answer.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK")


def test_malformed_http_is_400_and_closed(emulator: Any) -> None:
    async def go() -> list[bytes]:
        async with emulator() as (emu, client):
            answers = [await _raw(emu.port, b"GARBAGE\r\n\r\n"),
                       await _raw(emu.port, b"POST /tokenize HTTP/1.1\r\n"
                                            b"Content-Length: lots\r\n\r\n")]
            assert (await client.get("/health")).status_code == 200  # still serving
            return answers
    for answer in asyncio.run(go()):
        assert answer.startswith(b"HTTP/1.1 400 Bad Request")


def test_oversized_headers_are_431(emulator: Any) -> None:
    async def go() -> bytes:
        async with emulator() as (emu, _):
            return await _raw(emu.port, b"GET /health HTTP/1.1\r\nX: " + b"a" * 70000)
    assert asyncio.run(go()).startswith(b"HTTP/1.1 431")

