"""Scheduling and faults, in-process: FIFO beyond max_num_seqs, KV usage, aborts, crashes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from vllmfleet.client import parse_metrics

MESSAGES = [{"role": "user", "content": "Tell me something."}]
# 30 tokens at 100 tokens/s: each request runs ~0.3 s, long enough to line up a queue.
SLOW = ("--emulator-time-scale", "1", "--emulator-decode-tps", "100",
        "--emulator-output-tokens", "30")


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async def wait() -> None:
        while not condition():
            await asyncio.sleep(0.001)
    await asyncio.wait_for(wait(), timeout)


def test_fifo_beyond_max_num_seqs_with_waiting_in_metrics(emulator: Any) -> None:
    async def go() -> None:
        async with emulator("--max-num-seqs", "1", *SLOW) as (emu, client):
            finished: list[str] = []

            async def ask(name: str) -> int:
                r = await client.post("/v1/chat/completions",
                                      json={"model": "m", "messages": MESSAGES})
                finished.append(name)
                return r.status_code

            engine = emu.engine
            tasks = [asyncio.create_task(ask("first"))]
            await _until(lambda: engine.num_running == 1)
            tasks.append(asyncio.create_task(ask("second")))
            await _until(lambda: engine.num_waiting == 1)
            tasks.append(asyncio.create_task(ask("third")))
            await _until(lambda: engine.num_waiting == 2)
            metrics = parse_metrics((await client.get("/metrics")).text)
            statuses = await asyncio.gather(*tasks)
            after = parse_metrics((await client.get("/metrics")).text)
        assert metrics["vllm:num_requests_running"] == 1
        assert metrics["vllm:num_requests_waiting"] == 2
        assert metrics["vllm:kv_cache_usage_perc"] > 0
        assert statuses == [200, 200, 200]  # queued, never 429
        assert finished == ["first", "second", "third"]
        assert (after["vllm:num_requests_waiting"], after["vllm:kv_cache_usage_perc"]) == (0, 0)
    asyncio.run(go())


def test_max_num_seqs_requests_run_together(emulator: Any) -> None:
    async def go() -> None:
        async with emulator("--max-num-seqs", "2", *SLOW) as (emu, client):
            body = {"model": "m", "messages": MESSAGES}
            tasks = [asyncio.create_task(client.post("/v1/chat/completions", json=body))
                     for _ in range(3)]
            await _until(lambda: emu.engine.num_running == 2 and emu.engine.num_waiting == 1)
            responses = await asyncio.gather(*tasks)
        assert [r.status_code for r in responses] == [200, 200, 200], [r.text for r in responses]
        assert [r.json()["usage"]["completion_tokens"] for r in responses] == [30, 30, 30]
        assert all(r.json()["choices"][0]["message"]["content"] for r in responses)
    asyncio.run(go())


def test_a_client_that_goes_away_frees_its_slot(emulator: Any) -> None:
    async def go() -> None:
        async with emulator("--max-num-seqs", "1", "--emulator-time-scale", "1",
                            "--emulator-decode-tps", "10") as (emu, client):
            async with httpx.AsyncClient(base_url=emu.url) as impatient:
                request = asyncio.create_task(impatient.post(
                    "/v1/chat/completions", json={"model": "m", "messages": MESSAGES}))
                await _until(lambda: emu.engine.num_running == 1)
                request.cancel()  # closes the connection mid-request
                await asyncio.gather(request, return_exceptions=True)
            await _until(lambda: emu.engine.num_running == 0)
            metrics = (await client.get("/metrics")).text
        assert 'finished_reason="abort"} 1.0' in metrics
    asyncio.run(go())


def test_crash_after_n_requests_turns_health_503_and_fails_requests(emulator: Any) -> None:
    async def go() -> None:
        async with emulator("--emulator-crash-after", "2",
                            "--emulator-crash-linger", "60") as (emu, client):
            body = {"model": "m", "messages": MESSAGES, "max_tokens": 3}
            ok = [(await client.post("/v1/chat/completions", json=body)).status_code
                  for _ in range(2)]
            health = await client.get("/health")
            failed = await client.post("/v1/chat/completions", json=body)
        assert ok == [200, 200]
        assert health.status_code == 503
        assert failed.status_code == 500
        assert failed.json()["error"]["type"] == "InternalServerError"
        assert emu.engine.dead and not emu.crashed.is_set()  # exits after the linger
    asyncio.run(go())


def test_prompts_wait_for_kv_room_even_below_max_num_seqs(emulator: Any) -> None:
    async def go() -> None:
        # KV room for one 100-token prompt at a time, 4 sequences allowed
        async with emulator("--max-num-seqs", "4", *SLOW, kv_capacity_tokens=150) as (emu, c):
            text = " ".join(["word"] * 90)
            body = {"model": "m", "messages": [{"role": "user", "content": text}]}
            tasks = [asyncio.create_task(c.post("/v1/chat/completions", json=body))
                     for _ in range(2)]
            await _until(lambda: emu.engine.num_running == 1 and emu.engine.num_waiting == 1)
            assert [r.status_code for r in await asyncio.gather(*tasks)] == [200, 200]
    asyncio.run(go())


def test_streamed_tokens_arrive_over_time_at_decode_speed(emulator: Any) -> None:
    async def go() -> list[float]:
        async with emulator(*SLOW) as (_, client):
            arrivals: list[float] = []
            loop = asyncio.get_running_loop()
            async with client.stream("POST", "/v1/chat/completions", json={
                    "model": "m", "messages": MESSAGES, "stream": True}) as r:
                async for line in r.aiter_lines():
                    if line.startswith("data: {"):
                        arrivals.append(loop.time())
            return arrivals
    arrivals = asyncio.run(go())
    assert len(arrivals) == 31  # the role chunk and 30 tokens
    assert len({round(t, 3) for t in arrivals}) > 2  # spread out, not one burst
