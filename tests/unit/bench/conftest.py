"""A fake fleet for the sweep: a backend that runs ``slots`` streams at once and queues the
rest, so TTFT climbs past the slots while throughput stays flat; ``ttft_growth`` adds TTFT
per stream (a backend that slows down while its throughput still grows)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vllmfleet.client import Result
from vllmfleet.client.load import LoadRun

RunStep = Callable[[int, int], "object"]


def fake_run(concurrency: int, count: int, *, slots: int, ttft_s: float = 0.1,
             itl_s: float = 0.02, tokens: int = 10, status: int = 200,
             rate_limited: int = 0, ttft_growth: float = 0.0) -> LoadRun:
    """``count`` results of a backend with ``slots`` slots driven at ``concurrency``."""
    queue = max(concurrency / slots, 1.0)
    ttft = ttft_s * queue + ttft_growth * concurrency
    latency = ttft + itl_s * (tokens - 1)
    results = [Result(status=status, latency_s=latency, ttft_s=ttft, completion_tokens=tokens,
                      inter_token_s=[itl_s] * (tokens - 1)) for _ in range(count)]
    for i in range(min(rate_limited, count)):
        results[i] = Result(status=429, latency_s=0.01, retry_after=1.0)
    wall = latency * count / min(concurrency, slots)
    return LoadRun(results=results, wall_s=wall, loop_lag_s=[0.001] * 5)


@pytest.fixture
def backend() -> Callable[..., Callable[[int, int], object]]:
    """``backend(slots=4)`` → an async ``run_step`` recording the concurrencies asked."""
    def make(**kw: object) -> Callable[[int, int], object]:
        async def run_step(concurrency: int, count: int) -> LoadRun:
            run_step.calls.append((concurrency, count))  # type: ignore[attr-defined]
            return fake_run(concurrency, count, **kw)  # type: ignore[arg-type]
        run_step.calls = []  # type: ignore[attr-defined]
        return run_step
    return make
