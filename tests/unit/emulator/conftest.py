"""Helpers for the emulator tests: an in-process emulator on 127.0.0.1:0 and its client.

``emulator(*flags)`` (the fixture's value) is an async context manager: it parses the flags
as the command line would (``--model m --served-model-name m --max-model-len 256`` unless
given), starts :class:`vllmfleet.emulator.Emulator` on a free port and yields it with an
``httpx.AsyncClient`` pointed at it. Tests run their coroutine with ``asyncio.run``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from vllmfleet.emulator import Emulator, parse

DEFAULTS = {"--model": "org/model", "--served-model-name": "m", "--max-model-len": "256",
            "--emulator-time-scale": "0"}
Running = tuple[Emulator, httpx.AsyncClient]
Start = Callable[..., contextlib.AbstractAsyncContextManager[Running]]


@contextlib.asynccontextmanager
async def _emulator(*flags: str, kv_capacity_tokens: int | None = None) -> AsyncIterator[Running]:
    argv = [*flags, "--host", "127.0.0.1", "--port", "0"]
    for flag, value in DEFAULTS.items():
        if flag not in flags:
            argv += [flag, value]
    emu = Emulator(parse(argv), kv_capacity_tokens=kv_capacity_tokens)
    await emu.start()
    try:
        async with httpx.AsyncClient(base_url=emu.url, timeout=10) as client:
            yield emu, client
    finally:
        await emu.close()


@pytest.fixture
def emulator() -> Start:
    return _emulator


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def sse_events(body: str) -> list[Any]:
    """The ``data:`` payloads of an SSE body, JSON-decoded except the final ``[DONE]``."""
    events: list[Any] = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        payload = block[len("data: "):]
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


@pytest.fixture
def helpers() -> Any:
    class H:
        user = staticmethod(user)
        sse_events = staticmethod(sse_events)
    return H
