"""Emulator behaviour that less-travelled paths depend on (issue 12's planted bugs): the FIFO
head that waits for KV room is not overtaken by a smaller request behind it, and
``max_completion_tokens`` bounds the answer like ``max_tokens`` does."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from vllmfleet.emulator.engine import Engine, EngineSequence, EngineSettings
from vllmfleet.emulator.metrics import Metrics


def _engine(*, max_num_seqs: int, kv: int) -> Engine:
    return Engine(EngineSettings(max_num_seqs=max_num_seqs, kv_capacity_tokens=kv,
                                 time_scale=0, output_tokens=4), Metrics(model_name="m"))


async def _wait_for(condition: Any) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0)
    await asyncio.wait_for(poll(), 5)


def test_the_head_waiting_for_kv_room_is_not_overtaken() -> None:
    """A holds 60 of 100 KV tokens; B (50) waits for room; C (10) would fit now, but arrives
    after B: vLLM's FCFS scheduler keeps C behind B, so C starts only after B."""
    async def go() -> list[str]:
        engine = _engine(max_num_seqs=4, kv=100)
        release_a = asyncio.Event()
        started: list[str] = []

        def seq(name: str, prompt: int) -> EngineSequence:
            return EngineSequence(request_id=name, prompt_tokens=prompt, max_tokens=4)

        async def emit_a(_pieces: list[str]) -> None:
            if "a" not in started:
                started.append("a")
            await release_a.wait()

        def emitter(name: str) -> Any:
            async def emit(_pieces: list[str]) -> None:
                if name not in started:
                    started.append(name)
            return emit

        a = asyncio.create_task(engine.run(seq("a", 60), emit_a))
        await _wait_for(lambda: "a" in started)
        b = asyncio.create_task(engine.run(seq("b", 50), emitter("b")))
        await _wait_for(lambda: engine.num_waiting == 1)
        c = asyncio.create_task(engine.run(seq("c", 10), emitter("c")))
        for _ in range(50):  # give C every chance to jump the queue
            await asyncio.sleep(0)
        assert (engine.num_running, engine.num_waiting) == (1, 2), started
        assert started == ["a"]
        release_a.set()
        await asyncio.gather(a, b, c)
        return started

    assert asyncio.run(go()) == ["a", "b", "c"]


@pytest.mark.parametrize("limit", [1, 3, 7])
def test_max_completion_tokens_bounds_the_answer(emulator: Any, limit: int) -> None:
    async def go() -> dict[str, Any]:
        async with emulator("--emulator-output-tokens", "50") as (_emu, client):
            r = await client.post("/v1/chat/completions", json={
                "model": "m", "messages": [{"role": "user", "content": "Tell me a story."}],
                "max_completion_tokens": limit})
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            return body

    body = asyncio.run(go())
    assert body["usage"]["completion_tokens"] == limit
    assert body["choices"][0]["finish_reason"] == "length"


def test_without_a_limit_the_natural_length_is_used(emulator: Any) -> None:
    """The negative: the bound above comes from the field, not from the emulator's default."""
    async def go() -> dict[str, Any]:
        async with emulator("--emulator-output-tokens", "9") as (_emu, client):
            r = await client.post("/v1/chat/completions", json={
                "model": "m", "messages": [{"role": "user", "content": "Tell me a story."}]})
            body: dict[str, Any] = r.json()
            return body

    body = asyncio.run(go())
    assert body["usage"]["completion_tokens"] == 9
    assert body["choices"][0]["finish_reason"] == "stop"
