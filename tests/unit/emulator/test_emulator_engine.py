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


def test_a_small_request_never_jumps_the_head_waiting_for_kv_room() -> None:
    """FIFO: the head of the queue waits for KV room; a later request that would fit now
    waits behind it (vLLM's scheduler does not skip the head of its waiting queue)."""
    from vllmfleet.emulator.engine import Engine, EngineSequence, EngineSettings
    from vllmfleet.emulator.metrics import Metrics

    async def go() -> list[str]:
        engine = Engine(EngineSettings(max_num_seqs=8, kv_capacity_tokens=100, time_scale=0),
                        Metrics(model_name="m"))
        started: list[str] = []
        gate = asyncio.Event()

        def emit_for(name: str) -> Callable[[list[str]], Any]:
            async def emit(chunk: list[str]) -> None:
                started.append(name)
                if name == "big-running":
                    await gate.wait()  # holds 60 of the 100 KV tokens until released
            return emit

        def run(name: str, prompt: int) -> asyncio.Task[str]:
            seq = EngineSequence(request_id=name, prompt_tokens=prompt, max_tokens=1)
            return asyncio.create_task(engine.run(seq, emit_for(name)))

        tasks = [run("big-running", 60)]
        await _until(lambda: started == ["big-running"])
        tasks.append(run("big-waiting", 60))  # 60 + 60 > 100: waits for KV room
        await _until(lambda: engine.num_waiting == 1)
        tasks.append(run("small", 10))  # 60 + 10 fits, but the head is waiting
        for _ in range(20):
            await asyncio.sleep(0)
        assert started == ["big-running"], "a later request jumped the waiting head"
        assert (engine.num_running, engine.num_waiting) == (1, 2)
        gate.set()
        await asyncio.gather(*tasks)
        return started
    assert asyncio.run(go()) == ["big-running", "big-waiting", "small"]


def test_max_num_queued_reqs_refuses_beyond_the_bound_with_503(emulator: Any) -> None:
    async def go() -> list[tuple[int, Any]]:
        async with emulator("--emulator-vllm-version", "0.32.0", "--max-num-seqs", "1",
                            "--max-num-queued-reqs", "2", *SLOW) as (emu, client):
            body = {"model": "m", "messages": MESSAGES}
            first = [asyncio.create_task(client.post("/v1/chat/completions", json=body))
                     for _ in range(2)]
            await _until(lambda: emu.engine.num_running + emu.engine.num_waiting == 2)
            over = await client.post("/v1/chat/completions", json=body)
            n2 = await client.post("/v1/chat/completions", json={**body, "n": 2})
            done = await asyncio.gather(*first)
            after = await client.post("/v1/chat/completions", json={**body, "n": 2})
            return [(r.status_code, r.json()) for r in (*done, over, n2, after)]
    (ok1, _), (ok2, _), (over, body), (n2, _), (after, _) = asyncio.run(go())
    assert (ok1, ok2, over, n2, after) == (200, 200, 503, 503, 200)  # n counts as n
    assert body["error"]["type"] == "Service Unavailable"
    assert body["error"]["message"].startswith("The engine is currently busy")


def test_max_num_queued_reqs_does_not_exist_in_0_11() -> None:
    import pytest

    from vllmfleet.emulator import parse
    with pytest.raises(SystemExit):
        parse(["--model", "m", "--max-model-len", "256", "--emulator-vllm-version", "0.11.0",
               "--max-num-queued-reqs", "4"])
